//! What a requester's body may say about its subject. A requester acts for
//! itself: who it is comes from its credential, never from the body. Its
//! roles and groups are replaced by the configured ones
//! ([`Principal::authorize_subject`]); its kind is `human`; a body that
//! claims a kind or a time of last MFA is refused, naming the field (a
//! self-declared `mfa-at` once satisfied a policy's MFA-freshness rule).

use serde_json::{Value, json};

use super::{Principal, Role, ServiceError};

/// Subject fields a requester may not send.
const REFUSED: &[&str] = &["kind", "mfa-at"];

/// Check and complete a requester's `subject` before the body is parsed.
/// Pipelines and admins act for others and pass their identity
/// provider's view: their bodies are left as they are.
pub(super) fn requester_subject(actor: &Principal, body: &mut Value) -> Result<(), ServiceError> {
    if actor.has(Role::Pipeline) || actor.has(Role::Admin) {
        return Ok(());
    }
    let Some(subject) = body.get_mut("subject").and_then(Value::as_object_mut) else {
        // Absent or not an object: the parser names it.
        return Ok(());
    };
    if subject.get("id").and_then(Value::as_str) != Some(actor.name.as_str()) {
        // Asking for someone else: refused as such (403) once parsed.
        return Ok(());
    }
    if let Some(field) = REFUSED.iter().find(|f| subject.contains_key(**f)) {
        return Err(ServiceError::BadRequest {
            field: format!("subject.{field}"),
            message: "is set by jitgate for a requester (from its credential); remove it".into(),
        });
    }
    subject.insert("kind".into(), json!("human"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn principal(role: Role) -> Principal {
        Principal {
            name: "alice".into(),
            roles: BTreeSet::from([role]),
            groups: Vec::new(),
            subject_roles: Vec::new(),
            ..Default::default()
        }
    }

    #[test]
    fn a_requester_claiming_fresh_mfa_or_a_kind_is_refused_naming_the_field() {
        for field in ["mfa-at", "kind"] {
            let mut body = json!({"subject": {"id": "alice", field: "2026-11-25T10:00:00Z"}});
            let e = requester_subject(&principal(Role::Requester), &mut body).unwrap_err();
            assert!(
                matches!(&e, ServiceError::BadRequest { field: f, .. } if *f == format!("subject.{field}")),
                "{e}"
            );
        }
        let mut body = json!({"subject": {"id": "alice"}});
        requester_subject(&principal(Role::Requester), &mut body).unwrap();
        assert_eq!(body["subject"]["kind"], "human");
        let mut body = json!({"subject": {"id": "svc", "kind": "service", "mfa-at": 1}});
        requester_subject(&principal(Role::Pipeline), &mut body).unwrap();
        assert_eq!(body["subject"]["kind"], "service");
    }
}
