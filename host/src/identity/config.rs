//! `[[identity-providers]]` in `jitgate.toml` (issue 13; the key names are
//! part of the contract: tests outside the repository use them).
//!
//! ```toml
//! [[identity-providers]]
//! name = "entra"
//! issuer = "https://login.microsoftonline.com/<tenant>/v2.0"
//! audience = "api://jitgate"
//! jwks-file = "/etc/jitgate/entra-jwks.json"    # or jwks-url = "https://…/keys"
//! # algorithms = ["RS256", "ES256", "EdDSA"]     # HS* are refused
//! # leeway-s = 60
//! # subject-claim = "email"                      # `sub` when the token has none
//! # groups-claim = "groups"
//! # mfa-claim = "amr"
//! # auth-time-claim = "auth_time"
//! # Console sign-in (authorization code + PKCE, crate::identity::login):
//! # authorization-endpoint = "https://…/authorize"
//! # token-endpoint = "https://…/token"
//! # client-id = "jitgate-console"                # the ID token's `aud`
//! # client-secret-env = "JITGATE_OIDC_SECRET"    # confidential clients only; never in the file
//! # redirect-uri = "https://jitgate.example.com/console/callback"
//! # scopes = ["openid", "email", "groups"]       # default ["openid"]
//!
//! [[identity-providers.map]]
//! claim = "groups"
//! value = "helpdesk-tier2"
//! roles = ["requester"]
//! groups = ["helpdesk-tier2"]
//! subject-roles = ["helpdesk"]
//! ```

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;

use crate::service::Role;

/// Most clock skew tolerated on `exp`/`nbf`, seconds. Beyond a few minutes a
/// revoked sign-in lives on noticeably past its expiry.
pub const MAX_LEEWAY_S: u64 = 300;

/// One OpenID Connect identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IdentityProviderConfig {
    /// Shown with every identity it vouches for (audit, approvals).
    pub name: String,
    /// Expected `iss`, exactly.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences).
    pub audience: String,
    /// Offline JWKS (re-read when a token names an unknown `kid`).
    pub jwks_file: Option<PathBuf>,
    /// JWKS endpoint: cached, refreshed on an unknown `kid`, rate-limited.
    pub jwks_url: Option<String>,
    /// Accepted signature algorithms. Default RS256, ES256, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds. Default 60.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Claim holding the subject id. Default `email`; `sub` when absent.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Claim holding the user's groups (required in every token). Default `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim listing the authentication methods. Default `amr`.
    #[serde(default = "default_mfa_claim")]
    pub mfa_claim: String,
    /// Claim holding the sign-in time, seconds. Default `auth_time`.
    #[serde(default = "default_auth_time_claim")]
    pub auth_time_claim: String,
    /// Claims → jitgate roles, groups and subject roles; a token gets the
    /// union of every matching entry.
    #[serde(default)]
    pub map: Vec<ClaimMapping>,
    /// Console sign-in: the IdP's authorization endpoint (the browser is
    /// sent there). With `token-endpoint`, `client-id` and `redirect-uri`.
    pub authorization_endpoint: Option<String>,
    /// Console sign-in: the IdP's token endpoint (jitgate POSTs the code
    /// there).
    pub token_endpoint: Option<String>,
    /// Console sign-in: jitgate's client id at the IdP; an ID token must be
    /// issued to it (`aud`).
    pub client_id: Option<String>,
    /// Console sign-in: environment variable holding the client secret (a
    /// confidential client; sent as `client_secret` in the token request).
    /// Without it jitgate is a public client protected by PKCE alone.
    pub client_secret_env: Option<String>,
    /// Console sign-in: where the IdP sends the browser back, exactly as
    /// registered there (`https://host/console/callback`).
    pub redirect_uri: Option<String>,
    /// Console sign-in: scopes requested; must include `openid`. Default
    /// `["openid"]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

/// `[[identity-providers.map]]`: when the token's `claim` is `value` (or,
/// for a list, contains it), grant these.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClaimMapping {
    /// Claim name; a top-level name first, else a dotted path into objects
    /// (`realm_access.roles` for Keycloak).
    pub claim: String,
    /// Value compared exactly (IdP group names and ids are case-sensitive).
    pub value: String,
    /// API roles.
    #[serde(default)]
    pub roles: BTreeSet<Role>,
    /// jitgate directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Job roles of the subject.
    #[serde(default)]
    pub subject_roles: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into()]
}
fn default_leeway() -> u64 {
    60
}
fn default_subject_claim() -> String {
    "email".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_mfa_claim() -> String {
    "amr".into()
}
fn default_auth_time_claim() -> String {
    "auth_time".into()
}

impl IdentityProviderConfig {
    /// The configured algorithms, parsed. HMAC is refused outright: a shared
    /// secret in a config file is not an identity provider, and an HS* entry
    /// is the door for the classic "HS256 signed with the RSA public key"
    /// forgery.
    pub fn parsed_algorithms(&self, at: &str) -> Result<Vec<Algorithm>, String> {
        if self.algorithms.is_empty() {
            return Err(format!("{at}.algorithms: give at least one algorithm"));
        }
        let mut out = Vec::with_capacity(self.algorithms.len());
        for a in &self.algorithms {
            let alg = Algorithm::from_str(a).map_err(|_| {
                format!(
                    "{at}.algorithms: `{}` is not a supported algorithm (RS256/384/512, PS256/384/512, ES256/384, EdDSA)",
                    crate::text::terminal_safe(a)
                )
            })?;
            if alg.family() == AlgorithmFamily::Hmac {
                return Err(format!(
                    "{at}.algorithms: {a} is an HMAC algorithm; identity-provider tokens must be signed with a public-key algorithm"
                ));
            }
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        Ok(out)
    }

    /// Checks naming the key; `i` is this provider's index in the file.
    pub fn check(&self, i: usize) -> Result<(), String> {
        let at = format!("identity-providers[{i}]");
        for (key, v) in [
            ("name", &self.name),
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("subject-claim", &self.subject_claim),
            ("groups-claim", &self.groups_claim),
            ("mfa-claim", &self.mfa_claim),
            ("auth-time-claim", &self.auth_time_claim),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{at}.{key}: must not be empty"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!("{at}.{key}: must hold no control characters"));
            }
        }
        match (&self.jwks_file, &self.jwks_url) {
            (None, None) => {
                return Err(format!(
                    "{at}.jwks-file: give jwks-file (offline) or jwks-url"
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at}.jwks-url: give jwks-file or jwks-url, not both"
                ));
            }
            (None, Some(url)) => {
                // Keys fetched in clear text could be swapped by anyone on
                // the path; only a loopback endpoint (a local proxy or test
                // IdP) may skip TLS.
                if !https_or_loopback(url) {
                    return Err(format!(
                        "{at}.jwks-url: must be an https:// URL (http only on loopback)"
                    ));
                }
            }
            (Some(_), None) => {}
        }
        self.parsed_algorithms(&at)?;
        if self.leeway_s > MAX_LEEWAY_S {
            return Err(format!(
                "{at}.leeway-s: {} is more than {MAX_LEEWAY_S} seconds",
                self.leeway_s
            ));
        }
        self.check_login(&at)?;
        for (j, m) in self.map.iter().enumerate() {
            if m.claim.trim().is_empty() {
                return Err(format!("{at}.map[{j}].claim: must not be empty"));
            }
            if m.value.is_empty() {
                return Err(format!("{at}.map[{j}].value: must not be empty"));
            }
            if m.roles.is_empty() && m.groups.is_empty() && m.subject_roles.is_empty() {
                return Err(format!(
                    "{at}.map[{j}]: give roles, groups or subject-roles (an entry granting nothing is a typo)"
                ));
            }
        }
        Ok(())
    }
}

impl IdentityProviderConfig {
    /// Whether console sign-in is configured (any of its keys is set;
    /// [`IdentityProviderConfig::check`] then requires the rest).
    pub fn login_configured(&self) -> bool {
        self.authorization_endpoint.is_some()
            || self.token_endpoint.is_some()
            || self.client_id.is_some()
            || self.client_secret_env.is_some()
            || self.redirect_uri.is_some()
    }

    /// The console sign-in keys: all four or none, URLs that keep the code
    /// and tokens off clear-text networks, scopes including `openid`.
    fn check_login(&self, at: &str) -> Result<(), String> {
        if !self.login_configured() {
            return Ok(());
        }
        let needed = "required for console sign-in (with authorization-endpoint, token-endpoint, client-id and redirect-uri)";
        for (key, v) in [
            ("authorization-endpoint", &self.authorization_endpoint),
            ("token-endpoint", &self.token_endpoint),
            ("redirect-uri", &self.redirect_uri),
        ] {
            let Some(url) = v else {
                return Err(format!("{at}.{key}: {needed}"));
            };
            if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!(
                    "{at}.{key}: must hold no spaces or control characters"
                ));
            }
            // The code, the client secret and the tokens travel on these:
            // only a loopback endpoint (a local proxy or test IdP) may skip TLS.
            if !https_or_loopback(url) {
                return Err(format!(
                    "{at}.{key}: must be an https:// URL (http only on loopback)"
                ));
            }
            if url.contains('#') {
                return Err(format!("{at}.{key}: must not have a #fragment"));
            }
        }
        let Some(client_id) = &self.client_id else {
            return Err(format!("{at}.client-id: {needed}"));
        };
        if client_id.trim().is_empty() || client_id.len() > 1024 {
            return Err(format!(
                "{at}.client-id: must not be empty (at most 1024 bytes)"
            ));
        }
        if client_id.chars().any(char::is_control) {
            return Err(format!("{at}.client-id: must hold no control characters"));
        }
        if let Some(env) = &self.client_secret_env
            && (env.is_empty() || env.contains(['=', '\0']))
        {
            return Err(format!(
                "{at}.client-secret-env: must name an environment variable"
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(format!(
                "{at}.scopes: must include `openid` (the ID token is what signs the user in)"
            ));
        }
        for s in &self.scopes {
            // RFC 6749 §3.3 scope-token: visible ASCII but `"` and `\`.
            if s.is_empty()
                || s.len() > 256
                || !s
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
            {
                return Err(format!(
                    "{at}.scopes: `{}` is not a scope (visible ASCII, no spaces or quotes)",
                    crate::text::terminal_safe(s)
                ));
            }
        }
        Ok(())
    }
}

/// `https://…`, or `http://` to a loopback host.
fn https_or_loopback(url: &str) -> bool {
    let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
        });
    (url.starts_with("https://") && url.len() > "https://".len()) || loopback
}

/// Checks across providers: each one's own, then unique names and issuers
/// (a token is routed to its provider by `iss`).
pub fn check_providers(providers: &[IdentityProviderConfig]) -> Result<(), String> {
    let mut names = BTreeSet::new();
    let mut issuers = BTreeSet::new();
    for (i, p) in providers.iter().enumerate() {
        p.check(i)?;
        if !names.insert(p.name.as_str()) {
            return Err(format!(
                "identity-providers[{i}].name: `{}` is used twice",
                p.name
            ));
        }
        if !issuers.insert(p.issuer.as_str()) {
            return Err(format!(
                "identity-providers[{i}].issuer: `{}` is configured twice",
                p.issuer
            ));
        }
    }
    Ok(())
}
