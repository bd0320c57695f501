//! `[[provisioners]]` and `[[entitlements]]` in `jitgate.toml`: what a
//! target is and what an entitlement is at it (docs/provisioning.md).

use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::targets::{Announcer, TargetSettings, Targets};

/// The kinds of `[[provisioners]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// LDAP / Active Directory group membership.
    Ldap,
    /// SCIM 2.0 group membership.
    Scim,
    /// PostgreSQL role membership (or a login per grant).
    Postgres,
    /// A signed HTTP POST, counted as applied once delivered.
    Webhook,
}

/// One `[[provisioners]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProvisionerSpec {
    /// Referenced by `[[entitlements]] provisioner`.
    pub name: String,
    /// `ldap`, `scim`, `postgres` or `webhook`.
    pub kind: TargetKind,
    /// `ldap`: `ldap://` or `ldaps://`; `webhook`: the receiver.
    pub url: Option<String>,
    /// `ldap`: the DN jitgate binds as.
    pub bind_dn: Option<String>,
    /// `ldap`: environment variable holding the bind password.
    pub password_env: Option<String>,
    /// `ldap`: the user's DN, `{subject}` replaced (escaped).
    pub user_dn: Option<String>,
    /// `ldap`: where to search for the user (with `user-filter`).
    pub user_search_base: Option<String>,
    /// `ldap`: the search filter, `{subject}` replaced (escaped).
    pub user_filter: Option<String>,
    /// `ldap`: the group attribute holding members. Default `member`.
    pub member_attribute: Option<String>,
    /// `ldap`: upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// `ldap`, `scim`, `webhook`: a PEM file of CA certificates trusted
    /// besides the system's roots (a directory or service signed by a
    /// private CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// `scim`: the service's base URL (`…/scim/v2`).
    pub base_url: Option<String>,
    /// `scim`: environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// `postgres`: environment variable holding the admin connection URL.
    pub url_env: Option<String>,
    /// `postgres`: make a login role per grant (`VALID UNTIL` its expiry,
    /// a password shown once), dropped at its end.
    #[serde(default)]
    pub dynamic: bool,
    /// `webhook`: environment variable holding the HMAC secret.
    pub secret_env: Option<String>,
    /// Seconds between reconciliations; 0 turns it off. Default 300.
    pub reconcile_interval: Option<u64>,
    /// Access that vanished from an active grant: `reapply` (default) or
    /// `flag` (only reported).
    pub on_missing: Option<String>,
    /// Attempts to apply before the grant is `failed`. Default 5.
    pub max_attempts: Option<u32>,
    /// First retry delay, ms (doubling, capped at 5 minutes). Default 1000.
    pub retry_ms: Option<u64>,
}

/// One `[[entitlements]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EntitlementSpec {
    /// The request's `entitlement`.
    pub name: String,
    /// A `[[provisioners]]` name.
    pub provisioner: String,
    /// `ldap`: a group DN; `scim`: a Group's displayName; `webhook`: a label.
    pub group: Option<String>,
    /// `postgres`: the role granted.
    pub role: Option<String>,
}

/// Check the blocks; the error names the key (`provisioners[1].url`).
pub fn check(
    provisioners: &[ProvisionerSpec],
    entitlements: &[EntitlementSpec],
) -> Result<(), String> {
    let mut names = BTreeSet::new();
    for (i, p) in provisioners.iter().enumerate() {
        let at = |k: &str| format!("provisioners[{i}].{k}");
        if p.name.trim().is_empty() {
            return Err(format!("{}: must not be empty", at("name")));
        }
        if !names.insert(p.name.as_str()) {
            return Err(format!("{}: `{}` is used twice", at("name"), p.name));
        }
        let need = |v: &Option<String>, k: &str| match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(format!(
                "{}: required for kind = \"{}\"",
                at(k),
                kind_name(p.kind)
            )),
        };
        match p.kind {
            TargetKind::Ldap => {
                need(&p.url, "url")?;
                let url = p.url.as_deref().unwrap_or_default();
                if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
                    return Err(format!("{}: must be an ldap:// or ldaps:// URL", at("url")));
                }
                if p.starttls && !url.starts_with("ldap://") {
                    return Err(format!(
                        "{}: only with an ldap:// url (ldaps:// is TLS from the start)",
                        at("starttls")
                    ));
                }
                need(&p.bind_dn, "bind-dn")?;
                need(&p.password_env, "password-env")?;
                match (&p.user_dn, &p.user_search_base, &p.user_filter) {
                    (Some(dn), None, None) if dn.contains("{subject}") => {}
                    (Some(_), None, None) => {
                        return Err(format!("{}: must contain {{subject}}", at("user-dn")));
                    }
                    (None, Some(_), Some(f)) if f.contains("{subject}") => {}
                    (None, Some(_), Some(_)) => {
                        return Err(format!("{}: must contain {{subject}}", at("user-filter")));
                    }
                    _ => {
                        return Err(format!(
                            "{}: give either user-dn or both user-search-base and user-filter",
                            at("user-dn")
                        ));
                    }
                }
            }
            TargetKind::Scim => {
                need(&p.base_url, "base-url")?;
                need(&p.token_env, "token-env")?;
            }
            TargetKind::Postgres => need(&p.url_env, "url-env")?,
            TargetKind::Webhook => {
                need(&p.url, "url")?;
                need(&p.secret_env, "secret-env")?;
            }
        }
        if p.starttls && p.kind != TargetKind::Ldap {
            return Err(format!("{}: only for kind = \"ldap\"", at("starttls")));
        }
        if p.ca_file.is_some() && p.kind == TargetKind::Postgres {
            return Err(format!(
                "{}: not for kind = \"postgres\" (its connection is set by url-env)",
                at("ca-file")
            ));
        }
        if p.dynamic && p.kind != TargetKind::Postgres {
            return Err(format!(
                "{}: only kind = \"postgres\" makes logins",
                at("dynamic")
            ));
        }
        if p.max_attempts == Some(0) {
            return Err(format!("{}: must be at least 1", at("max-attempts")));
        }
        if p.retry_ms == Some(0) {
            return Err(format!("{}: must be at least 1", at("retry-ms")));
        }
        if let Some(m) = &p.on_missing
            && m != "reapply"
            && m != "flag"
        {
            return Err(format!(
                "{}: `reapply` or `flag`, not `{m}`",
                at("on-missing")
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, e) in entitlements.iter().enumerate() {
        let at = |k: &str| format!("entitlements[{i}].{k}");
        if !seen.insert(e.name.as_str()) {
            return Err(format!("{}: `{}` is mapped twice", at("name"), e.name));
        }
        let Some(p) = provisioners.iter().find(|p| p.name == e.provisioner) else {
            return Err(format!(
                "{}: no [[provisioners]] is named `{}`",
                at("provisioner"),
                e.provisioner
            ));
        };
        match (p.kind, &e.group, &e.role) {
            (TargetKind::Postgres, None, Some(r)) if !r.is_empty() => {}
            (TargetKind::Postgres, _, _) => {
                return Err(format!(
                    "{}: required (and no `group`) for a postgres provisioner",
                    at("role")
                ));
            }
            (_, Some(g), None) if !g.is_empty() => {}
            _ => {
                return Err(format!(
                    "{}: required (and no `role`) for a {} provisioner",
                    at("group"),
                    kind_name(p.kind)
                ));
            }
        }
    }
    Ok(())
}

fn kind_name(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Ldap => "ldap",
        TargetKind::Scim => "scim",
        TargetKind::Postgres => "postgres",
        TargetKind::Webhook => "webhook",
    }
}

fn env(i: usize, key: &str, var: &Option<String>) -> Result<String, (String, String)> {
    let var = var.clone().unwrap_or_default();
    std::env::var(&var).map_err(|_| {
        (
            format!("provisioners[{i}].{key}"),
            format!("${var} is not set"),
        )
    })
}

/// The HTTP client of a `scim` or `webhook` provisioner: the system's CA
/// roots and its `ca-file`.
fn outbound(i: usize, p: &ProvisionerSpec) -> Result<crate::outbound::Outbound, (String, String)> {
    crate::outbound::Outbound::new(p.ca_file.as_deref())
        .map_err(|e| (format!("provisioners[{i}].ca-file"), e.to_string()))
}

/// Build the targets (secrets read from the environment). The error is
/// (key, message).
pub fn build(
    provisioners: &[ProvisionerSpec],
    entitlements: &[EntitlementSpec],
) -> Result<Targets, (String, String)> {
    let mut targets = Targets::new();
    for (i, p) in provisioners.iter().enumerate() {
        let target: Arc<dyn super::targets::Target> = match p.kind {
            TargetKind::Postgres => {
                let url = env(i, "url-env", &p.url_env)?;
                Arc::new(
                    super::postgres::PostgresTarget::new(&url, p.dynamic)
                        .map_err(|e| (format!("provisioners[{i}].url-env"), e))?,
                )
            }
            TargetKind::Webhook => {
                let secret = env(i, "secret-env", &p.secret_env)?;
                let hook = super::WebhookProvisioner::with_client(
                    p.url.as_deref().unwrap_or_default(),
                    secret.as_bytes(),
                    outbound(i, p)?,
                )
                .map_err(|e| (format!("provisioners[{i}].url"), e))?;
                Arc::new(Announcer(Arc::new(hook)))
            }
            TargetKind::Ldap => {
                let password = env(i, "password-env", &p.password_env)?;
                let user = match (&p.user_dn, &p.user_search_base, &p.user_filter) {
                    (Some(dn), _, _) => super::ldap::UserLookup::Template(dn.clone()),
                    (None, Some(base), Some(filter)) => super::ldap::UserLookup::Search {
                        base: base.clone(),
                        filter: filter.clone(),
                    },
                    _ => {
                        return Err((
                            format!("provisioners[{i}].user-dn"),
                            "give user-dn or user-search-base and user-filter".into(),
                        ));
                    }
                };
                Arc::new(
                    super::ldap::LdapTarget::new(
                        p.url.as_deref().unwrap_or_default(),
                        p.bind_dn.as_deref().unwrap_or_default(),
                        &password,
                        user,
                        p.member_attribute.as_deref(),
                        p.starttls,
                        p.ca_file.as_deref(),
                    )
                    .map_err(|e| (format!("provisioners[{i}].{}", e.0), e.1))?,
                )
            }
            TargetKind::Scim => {
                let token = env(i, "token-env", &p.token_env)?;
                Arc::new(
                    super::scim::ScimTarget::with_client(
                        p.base_url.as_deref().unwrap_or_default(),
                        &token,
                        outbound(i, p)?,
                    )
                    .map_err(|e| (format!("provisioners[{i}].base-url"), e))?,
                )
            }
        };
        let every = p.reconcile_interval.unwrap_or(300);
        targets = targets.with_provisioner(
            &p.name,
            TargetSettings {
                dynamic: p.dynamic,
                reconcile_interval: (every > 0).then(|| Duration::from_secs(every)),
                reapply_missing: p.on_missing.as_deref() != Some("flag"),
                max_apply_attempts: p.max_attempts.unwrap_or(5),
                retry_base: Duration::from_millis(p.retry_ms.unwrap_or(1000)),
                ..TargetSettings::new(target)
            },
        );
    }
    for e in entitlements {
        let target = e.group.as_deref().or(e.role.as_deref()).unwrap_or_default();
        targets = targets.with_entitlement(&e.name, &e.provisioner, target);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Doc {
        #[serde(default)]
        provisioners: Vec<ProvisionerSpec>,
        #[serde(default)]
        entitlements: Vec<EntitlementSpec>,
    }

    fn check_toml(s: &str) -> Result<(), String> {
        let d: Doc = toml::from_str(s).map_err(|e| e.to_string())?;
        check(&d.provisioners, &d.entitlements)
    }

    #[test]
    fn the_issue_example_is_accepted() {
        check_toml(
            r#"
            [[provisioners]]
            name = "ad"
            kind = "ldap"
            url = "ldap://127.0.0.1:3890"
            bind-dn = "cn=admin,dc=example,dc=org"
            password-env = "LDAP_PASSWORD"
            user-dn = "uid={subject},ou=people,dc=example,dc=org"
            [[provisioners]]
            name = "saas"
            kind = "scim"
            base-url = "http://127.0.0.1:8000/scim/v2"
            token-env = "SCIM_TOKEN"
            [[provisioners]]
            name = "db"
            kind = "postgres"
            url-env = "JITGATE_DB_ADMIN_URL"
            [[entitlements]]
            name = "backup-operator"
            provisioner = "ad"
            group = "cn=Backup Operators,ou=groups,dc=example,dc=org"
            [[entitlements]]
            name = "users:write"
            provisioner = "saas"
            group = "Helpdesk Admins"
            [[entitlements]]
            name = "db:read"
            provisioner = "db"
            role = "app_readonly"
            "#,
        )
        .expect("valid");
    }

    #[test]
    fn bad_provisioning_config_names_the_field() {
        for (toml, field) in [
            (
                "[[provisioners]]\nname='a'\nkind='postgres'\n",
                "provisioners[0].url-env",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='ldap'\nurl='http://x'\n",
                "provisioners[0].url",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='ldap'\nurl='ldap://x'\nbind-dn='cn=a'\npassword-env='P'\n",
                "provisioners[0].user-dn",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='ldap'\nurl='ldap://x'\nbind-dn='cn=a'\npassword-env='P'\nuser-dn='uid=x'\n",
                "provisioners[0].user-dn",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='scim'\nbase-url='http://x'\n",
                "provisioners[0].token-env",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='scim'\nbase-url='http://x'\ntoken-env='T'\ndynamic=true\n",
                "provisioners[0].dynamic",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='postgres'\nurl-env='U'\n[[provisioners]]\nname='a'\nkind='postgres'\nurl-env='U'\n",
                "provisioners[1].name",
            ),
            (
                "[[entitlements]]\nname='e'\nprovisioner='nope'\nrole='r'\n",
                "entitlements[0].provisioner",
            ),
            (
                "[[provisioners]]\nname='db'\nkind='postgres'\nurl-env='U'\n[[entitlements]]\nname='e'\nprovisioner='db'\ngroup='g'\n",
                "entitlements[0].role",
            ),
            (
                "[[provisioners]]\nname='db'\nkind='postgres'\nurl-env='U'\nreconcile-interval=5\non-missing='ignore'\n",
                "provisioners[0].on-missing",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='ldap'\nurl='ldaps://x'\nstarttls=true\nbind-dn='cn=a'\npassword-env='P'\nuser-dn='uid={subject}'\n",
                "provisioners[0].starttls",
            ),
            (
                "[[provisioners]]\nname='a'\nkind='scim'\nbase-url='http://x'\ntoken-env='T'\nstarttls=true\n",
                "provisioners[0].starttls",
            ),
            (
                "[[provisioners]]\nname='db'\nkind='postgres'\nurl-env='U'\nca-file='/etc/ca.pem'\n",
                "provisioners[0].ca-file",
            ),
        ] {
            let e = check_toml(toml).expect_err(toml);
            assert!(e.starts_with(field), "{toml}: {e}");
        }
        check_toml(
            "[[provisioners]]\nname='a'\nkind='ldap'\nurl='ldap://x'\nstarttls=true\nca-file='/etc/ca.pem'\nbind-dn='cn=a'\npassword-env='P'\nuser-dn='uid={subject}'\n",
        )
        .expect("StartTLS with a private CA");
        assert!(
            check_toml("[[provisioners]]\nname='a'\nkind='ftp'\n")
                .unwrap_err()
                .contains("kind")
        );
        assert!(
            check_toml("[[provisioners]]\nname='a'\nkind='postgres'\nurl-env='U'\nbogus=1\n")
                .unwrap_err()
                .contains("bogus")
        );
    }

    #[test]
    fn a_ca_file_without_certificates_stops_start_up_naming_the_key() {
        let empty = tempfile::NamedTempFile::new().expect("tempfile");
        let ca = empty.path().display();
        // PATH stands in for a secret: it is always set.
        for block in [
            format!(
                "kind='ldap'\nurl='ldaps://127.0.0.1:1'\nbind-dn='cn=a'\npassword-env='PATH'\nuser-dn='uid={{subject}}'\nca-file='{ca}'"
            ),
            format!(
                "kind='scim'\nbase-url='https://127.0.0.1:1/scim/v2'\ntoken-env='PATH'\nca-file='{ca}'"
            ),
            format!(
                "kind='webhook'\nurl='https://127.0.0.1:1/h'\nsecret-env='PATH'\nca-file='{ca}'"
            ),
        ] {
            let d: Doc =
                toml::from_str(&format!("[[provisioners]]\nname='a'\n{block}\n")).expect("toml");
            check(&d.provisioners, &d.entitlements).expect("valid");
            match build(&d.provisioners, &d.entitlements) {
                Ok(_) => panic!("accepted a CA file without certificates: {block}"),
                Err((key, why)) => {
                    assert_eq!(key, "provisioners[0].ca-file", "{why}");
                    assert!(why.contains("no PEM certificate"), "{why}");
                }
            }
        }
    }
}
