//! Console sessions: who is signed in, behind an opaque cookie.
//!
//! The cookie holds 32 random bytes; the server keeps only their SHA-256,
//! so a leaked session table signs nobody in. Each session has its own
//! CSRF token, sent in every form and compared on every state-changing
//! POST (with `SameSite=Strict` this is defence in depth, and it also
//! covers browsers or proxies that drop the attribute). Before sign-in,
//! the sign-in form is protected the same way by a short-lived
//! double-submit cookie (login CSRF: a foreign site signing a victim into
//! the attacker's account).
//!
//! The table is bounded: past [`MAX_SESSIONS`] the oldest session is
//! dropped, so a flood of sign-ins costs memory once, not without end.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::grant::Millis;
use crate::service::Principal;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "jitgate_session";
/// The pre-sign-in CSRF cookie's name.
pub const SIGN_IN_COOKIE: &str = "jitgate_sign_in";
/// The cookie that binds a begun identity-provider sign-in to this
/// browser (`SameSite=Lax`: it must come back on the provider's redirect,
/// a top-level cross-site GET that `Strict` would strip).
pub const LOGIN_COOKIE: &str = "jitgate_login";
/// Sessions kept at most; the oldest goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// One signed-in person.
#[derive(Clone)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// The token every form of this session carries.
    pub csrf: String,
    /// How they signed in (`token`, or the identity provider's name).
    pub via: String,
    /// When the session ends, Unix ms.
    pub expires_at: Millis,
    created_at: Millis,
    /// A one-shot message for the next page ("Approved gr-…").
    pub flash: Option<Flash>,
}

/// A message shown once, on the page after an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: &'static str,
    /// The text (escaped when rendered).
    pub text: String,
}

/// Every console session of this process (sessions do not survive a
/// restart: signing in again is the price of keeping no secret at rest).
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    /// How long a session lasts.
    pub ttl_ms: i64,
}

/// 32 random bytes, hex.
pub fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal without a timing signal on the secret: the digests are compared.
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && digest(a) == digest(b)
}

impl Sessions {
    /// An empty table whose sessions last `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Sessions {
            by_hash: Mutex::new(HashMap::new()),
            ttl_ms,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock cannot leave a session half
        // written (inserts and removes are single calls): keep serving.
        self.by_hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sign `principal` in; the cookie value, or `None` without OS
    /// randomness.
    pub fn create(&self, principal: Principal, via: &str, now: Millis) -> Option<String> {
        let token = random_token()?;
        let csrf = random_token()?;
        let mut t = self.table();
        t.retain(|_, s| s.expires_at > now);
        if t.len() >= MAX_SESSIONS
            && let Some(oldest) = t.iter().min_by_key(|(_, s)| s.created_at).map(|(k, _)| *k)
        {
            t.remove(&oldest);
        }
        t.insert(
            digest(&token),
            Session {
                principal,
                csrf,
                via: via.to_string(),
                expires_at: now + self.ttl_ms,
                created_at: now,
                flash: None,
            },
        );
        Some(token)
    }

    /// The name of the live session's holder, leaving its flash in place
    /// (for the audit record of a refusal, read before the page is made).
    pub fn holder(&self, token: &str, now: Millis) -> Option<String> {
        let t = self.table();
        t.get(&digest(token))
            .filter(|s| s.expires_at > now)
            .map(|s| s.principal.name.clone())
    }

    /// The live session of a cookie value, taking its flash message.
    pub fn get(&self, token: &str, now: Millis) -> Option<Session> {
        let mut t = self.table();
        let key = digest(token);
        match t.get_mut(&key) {
            Some(s) if s.expires_at > now => {
                let out = s.clone();
                s.flash = None;
                Some(out)
            }
            Some(_) => {
                t.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Leave a message for the session's next page.
    pub fn flash(&self, token: &str, flash: Flash) {
        if let Some(s) = self.table().get_mut(&digest(token)) {
            s.flash = Some(flash);
        }
    }

    /// Sign out.
    pub fn remove(&self, token: &str) {
        self.table().remove(&digest(token));
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// No session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure behind
/// TLS; `max_age_s` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// [`set_cookie`] with `SameSite=Lax` (only for [`LOGIN_COOKIE`]).
pub fn set_lax_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    set_cookie(name, value, max_age_s, secure).replace("SameSite=Strict", "SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Role;

    fn alice() -> Principal {
        Principal::new("alice", [Role::Approver])
    }

    #[test]
    fn a_session_is_found_by_its_cookie_only_until_it_expires() {
        let s = Sessions::new(1_000);
        let token = s.create(alice(), "token", 10).unwrap();
        assert_eq!(s.get(&token, 500).unwrap().principal.name, "alice");
        assert!(s.get("not-the-token", 500).is_none());
        assert!(s.get(&token, 1_010).is_none());
        assert!(s.is_empty(), "an expired session is dropped when seen");
    }

    #[test]
    fn a_sign_in_flood_keeps_the_table_bounded_and_drops_the_oldest() {
        let s = Sessions::new(i64::MAX / 2);
        let first = s.create(alice(), "token", 0).unwrap();
        for i in 1..=MAX_SESSIONS as i64 {
            s.create(alice(), "token", i).unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get(&first, 1).is_none(), "the oldest session went first");
    }

    #[test]
    fn a_flash_is_shown_once() {
        let s = Sessions::new(1_000);
        let token = s.create(alice(), "token", 0).unwrap();
        s.flash(
            &token,
            Flash {
                kind: "ok",
                text: "done".into(),
            },
        );
        assert!(s.get(&token, 1).unwrap().flash.is_some());
        assert!(s.get(&token, 2).unwrap().flash.is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_tls() {
        let c = set_cookie(SESSION_COOKIE, "v", 60, true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "v", 60, false).contains("Secure"));
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; jitgate_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert!(!same_secret("", ""), "an empty token never matches");
    }
}
