//! People authenticated by their identity provider (issue 13): a bearer
//! JWT from an OpenID Connect IdP becomes an [`Identity`] — who (a
//! normalised subject), which jitgate roles, groups and subject roles the
//! configured claim map gives, and when they last passed MFA.
//!
//! One file past 500 lines: a token's whole validation (signature, claims,
//! mapping to a principal) in the order it happens, so a reviewer checks it
//! top to bottom.
//!
//! This module is pure: no HTTP. [`IdentityProviders::verify`] takes the
//! bearer string; keys come from a [`JwksSource`] (a file, or an injected
//! fetch function for `jwks-url`).
//!
//! Every claim is hostile until checked: the signature proves the IdP
//! issued the token, not that its strings are safe to print, store or
//! compare. Strings are bounded, and any character a terminal would act on
//! or hide (controls, bidi overrides, zero-width marks) is refused.
//!
//! Cost: one verification is a header and payload base64 decode, two JSON
//! parses of the payload (jsonwebtoken's own claim checks borrow from the
//! first; ours builds a map), one signature check, and a handful of small
//! allocations for the resulting strings: a few µs for a 2 KB token before
//! the signature, which dominates (release build, busy shared 2-core
//! machine: RS256-2048 180–240 µs, ES256 590–810 µs, EdDSA 90–150 µs). Issue 13's budget of
//! 20 µs per request with a cached JWKS is met by [`IdentityProviders`]
//! answering a token it has already verified from [`VerifiedTokens`]: one
//! sha256 of the token, a map lookup and the clone of the identity's few
//! strings (3–5 µs measured for a 2 KB token on the same machine).
//!
//! One file past 500 lines: token validation is one security boundary: key selection, algorithm pinning, claim checks and mapping must be reviewed together.

mod cache;
mod config;
mod jwks;
pub mod login;
mod ring_verify;

pub use cache::VerifiedTokens;
pub use login::{LoginConfigError, LoginError, LoginFlow, PendingLogin, PendingLogins};

pub use config::{ClaimMapping, IdentityProviderConfig, MAX_LEEWAY_S, check_providers};
pub use jwks::{
    JwksFetch, JwksSource, KeySet, MAX_JWKS_BYTES, MAX_KEYS, MAX_KID_BYTES, MIN_REFRESH, PublicKey,
};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use crate::grant::identity_key;

/// Make jsonwebtoken check signatures with ring (see `ring_verify.rs`):
/// done by [`IdentityProvider::new`]; call it first thing in a process
/// that signs or decodes tokens before building a provider, or the
/// crate's RustCrypto default is fixed for the process (still correct,
/// several times slower for RSA and ECDSA).
pub fn install_crypto_provider() {
    ring_verify::install();
}
use crate::request::{SubjectKind, Timestamp};
use crate::service::{Principal, Role};

/// Longest bearer token accepted, bytes. Entra caps its groups claim at 200
/// ids (then it sends an overage marker), which fits well within this.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest claim string used (subject, group, amr entry), bytes: the
/// request model's bound on a string.
pub const MAX_CLAIM_BYTES: usize = 1024;
/// Longest `jti` or `sid`, bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Most entries in a list claim (groups, amr, mapped claims).
pub const MAX_CLAIM_ITEMS: usize = 256;

/// Who an identity-provider token says is calling. Serialises (kebab-case)
/// for the places a grant shows who acted: provider, subject, jti, session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Identity {
    /// The configured provider's `name`.
    pub provider: String,
    /// Subject id, normalised with [`identity_key`] (trimmed, NFKC, lowercase).
    pub subject: String,
    /// API roles: union of every matching map entry's.
    pub roles: BTreeSet<Role>,
    /// jitgate groups: union of every matching map entry's, sorted.
    pub groups: Vec<String>,
    /// Job roles: union of every matching map entry's, sorted.
    pub subject_roles: Vec<String>,
    /// Sign-in time, seconds since the epoch (the unit of the request's
    /// `subject.mfa-at`), when the sign-in used MFA.
    pub mfa_at: Option<Timestamp>,
    /// Always [`SubjectKind::Human`]: IdP users are people.
    pub kind: SubjectKind,
    /// The token's `jti`.
    pub jti: Option<String>,
    /// The sign-in session (`sid`).
    pub session: Option<String>,
}

impl Identity {
    /// The principal the API layer authorises.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.subject.clone(),
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            subject_roles: self.subject_roles.clone(),
            kind: Some(self.kind),
            mfa_at: self.mfa_at,
            sign_in: Some(crate::grant::SignIn {
                identity_provider: self.provider.clone(),
                jti: self.jti.clone(),
                session: self.session.clone(),
            }),
        }
    }
}

/// Why a bearer token was refused. Messages are meant for the 401 body:
/// they name the claim, never echo a secret, and quote token strings only
/// escaped and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("bearer token is {len} bytes; at most {max} are accepted")]
    TooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a JWS compact token with a supported algorithm (this is where
    /// `alg: none` ends).
    #[error("bearer token is not a signed JWT with a supported algorithm")]
    Malformed,
    /// `iss` names no configured provider.
    #[error("the token's issuer (`iss`) is not a configured identity provider")]
    UnknownIssuer,
    /// The JWKS has no key with this `kid`, even after a refresh.
    #[error("no key `{kid}` in the identity provider's JWKS")]
    UnknownKey {
        /// The token's `kid`, escaped and truncated.
        kid: String,
    },
    /// No `kid`, and the JWKS does not hold exactly one key.
    #[error("the token names no key (`kid`) and the JWKS holds {keys} keys")]
    NoKid {
        /// Keys in the set.
        keys: usize,
    },
    /// The header's `alg` is not one the key may verify.
    #[error("algorithm {alg} is not accepted for this key")]
    Algorithm {
        /// The header's algorithm.
        alg: String,
    },
    /// Signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past `exp` (plus leeway).
    #[error("the token has expired (`exp`)")]
    Expired,
    /// Before `nbf` (minus leeway).
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// Wrong `iss`.
    #[error("the token's issuer (`iss`) is not the configured one")]
    Issuer,
    /// Wrong `aud`.
    #[error("the token's audience (`aud`) does not include this service")]
    Audience,
    /// A required registered claim is missing or of the wrong type (a
    /// string `exp` ends here: jsonwebtoken checks presence as "parses").
    #[error("the token has no valid `{0}` claim")]
    MissingClaim(String),
    /// The groups claim is absent. Failing closed matters: Entra ID replaces
    /// the claim with an overage marker for users in over 200 groups, and a
    /// token without groups must not pass for a user without groups.
    #[error(
        "the token has no `{claim}` claim{}; refused rather than treated as no groups",
        if *.overage { " (the identity provider sent a group overage marker instead: the user is in too many groups; use group filtering or app roles)" } else { "" }
    )]
    NoGroupsClaim {
        /// The configured groups claim.
        claim: String,
        /// Entra's `_claim_names` marker was present.
        overage: bool,
    },
    /// A claim is present but unusable.
    #[error("claim `{claim}`: {message}")]
    Claim {
        /// Claim name.
        claim: String,
        /// What is wrong.
        message: String,
    },
    /// The provider's configuration is unusable (normally caught earlier by
    /// [`check_providers`]).
    #[error("identity provider configuration: {0}")]
    Config(String),
    /// The JWKS could not be fetched or parsed.
    #[error("identity provider keys: {0}")]
    Jwks(String),
}

impl IdentityError {
    fn claim(claim: &str, message: impl Into<String>) -> IdentityError {
        IdentityError::Claim {
            claim: claim.to_string(),
            message: message.into(),
        }
    }
}

impl From<jsonwebtoken::errors::Error> for IdentityError {
    fn from(e: jsonwebtoken::errors::Error) -> IdentityError {
        match e.into_kind() {
            ErrorKind::InvalidSignature => IdentityError::Signature,
            ErrorKind::ExpiredSignature => IdentityError::Expired,
            ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
            ErrorKind::InvalidIssuer => IdentityError::Issuer,
            ErrorKind::InvalidAudience => IdentityError::Audience,
            ErrorKind::MissingRequiredClaim(c) => IdentityError::MissingClaim(c),
            ErrorKind::InvalidClaimFormat(c) => {
                IdentityError::claim(&c, "has the wrong type (a NumericDate must be a number)")
            }
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => IdentityError::Algorithm {
                alg: "in the header".into(),
            },
            // Key-format errors come from a key that passed our JWKS checks
            // and still failed in the backend; to the caller that is a
            // signature that does not verify.
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => IdentityError::Signature,
            _ => IdentityError::Malformed,
        }
    }
}

/// One configured provider, ready to verify.
#[derive(Debug)]
pub struct IdentityProvider {
    config: IdentityProviderConfig,
    /// Shared with the provider that checks this one's console ID tokens
    /// ([`IdentityProvider::for_audience`]): one cache, one refresh limit.
    keys: Arc<JwksSource>,
    /// One validation per accepted algorithm, built once: per request only
    /// the header picks among them (and only among what the key allows).
    validations: Vec<(Algorithm, Validation)>,
}

impl IdentityProvider {
    /// `config` must have passed [`IdentityProviderConfig::check`]; `keys`
    /// is its JWKS ([`JwksSource::from_file`] for `jwks-file`, or
    /// [`JwksSource::new`] with an HTTP fetch for `jwks-url`).
    pub fn new(
        config: IdentityProviderConfig,
        keys: JwksSource,
    ) -> Result<IdentityProvider, IdentityError> {
        Self::with_shared_keys(config, Arc::new(keys))
    }

    /// The same provider checking tokens issued to `audience` instead of its
    /// configured one, sharing its keys: how console sign-in checks an ID
    /// token (issued to the `client-id`) with exactly the bearer-token
    /// validation.
    pub fn for_audience(&self, audience: &str) -> Result<IdentityProvider, IdentityError> {
        let mut config = self.config.clone();
        config.audience = audience.to_string();
        Self::with_shared_keys(config, Arc::clone(&self.keys))
    }

    fn with_shared_keys(
        config: IdentityProviderConfig,
        keys: Arc<JwksSource>,
    ) -> Result<IdentityProvider, IdentityError> {
        install_crypto_provider();
        let algorithms = config
            .parsed_algorithms("identity-providers[]")
            .map_err(IdentityError::Config)?;
        let validations = algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.leeway = config.leeway_s.min(MAX_LEEWAY_S);
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                // `nbf` is checked when present but not required: Okta,
                // Keycloak and Google tokens do not carry it.
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.set_issuer(&[config.issuer.as_str()]);
                v.set_audience(&[config.audience.as_str()]);
                (alg, v)
            })
            .collect();
        Ok(IdentityProvider {
            config,
            keys,
            validations,
        })
    }

    /// A provider whose keys come from its `jwks-file`.
    pub fn from_file_config(
        config: IdentityProviderConfig,
    ) -> Result<IdentityProvider, IdentityError> {
        let path = config
            .jwks_file
            .clone()
            .ok_or_else(|| IdentityError::Config("no jwks-file configured".into()))?;
        let algorithms = config
            .parsed_algorithms("identity-providers[]")
            .map_err(IdentityError::Config)?;
        let keys = JwksSource::from_file(path, algorithms)?;
        IdentityProvider::new(config, keys)
    }

    /// Its configuration.
    pub fn config(&self) -> &IdentityProviderConfig {
        &self.config
    }

    /// Its keys.
    pub fn keys(&self) -> &JwksSource {
        &self.keys
    }

    /// Verify `token` and build the identity it proves.
    pub fn verify(&self, token: &str) -> Result<Identity, IdentityError> {
        self.verify_at(token, Instant::now())
    }

    /// [`IdentityProvider::verify`], with `now` for the JWKS refresh rate
    /// limit (token times are checked against the system clock).
    pub fn verify_at(&self, token: &str, now: Instant) -> Result<Identity, IdentityError> {
        self.verify_exp(token, now).map(|(id, _)| id)
    }

    /// The identity and the token's `exp` (when a whole number).
    fn verify_exp(
        &self,
        token: &str,
        now: Instant,
    ) -> Result<(Identity, Option<u64>), IdentityError> {
        let (id, claims) = self.verify_claims(token, now)?;
        let exp = claims.get("exp").and_then(Value::as_u64);
        Ok((id, exp))
    }

    /// [`IdentityProvider::verify_at`], also handing back the verified
    /// claims (console sign-in reads `nonce` and `azp` from them).
    pub(crate) fn verify_claims(
        &self,
        token: &str,
        now: Instant,
    ) -> Result<(Identity, Map<String, Value>), IdentityError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(IdentityError::TooLong {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdentityError::Malformed)?;
        let keys = self.keys.resolve(header.kid.as_deref(), now)?;
        let key = keys
            .find(header.kid.as_deref())
            .ok_or(IdentityError::Malformed)?;
        // The key decides which algorithms are possible; the header only
        // picks among them. HS256 "signed" with an RSA key's public bytes
        // stops here: no key ever allows an HMAC algorithm.
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg && key.algorithms.contains(a))
            .map(|(_, v)| v)
            .ok_or_else(|| IdentityError::Algorithm {
                alg: format!("{:?}", header.alg),
            })?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)?;
        let id = self.identity(&data.claims)?;
        Ok((id, data.claims))
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, IdentityError> {
        let c = &self.config;
        let subject = self.subject(claims)?;
        let groups = match claims.get(&c.groups_claim) {
            Some(v) => string_list(&c.groups_claim, v)?,
            None => {
                return Err(IdentityError::NoGroupsClaim {
                    claim: c.groups_claim.clone(),
                    overage: claims
                        .get("_claim_names")
                        .and_then(|n| n.get(&c.groups_claim))
                        .is_some(),
                });
            }
        };
        let mut roles = BTreeSet::new();
        let mut out_groups = BTreeSet::new();
        let mut subject_roles = BTreeSet::new();
        for m in &c.map {
            let matched = if m.claim == c.groups_claim {
                groups.iter().any(|g| *g == m.value)
            } else {
                match lookup(claims, &m.claim) {
                    None => false,
                    Some(v) => string_list(&m.claim, v)?.iter().any(|g| *g == m.value),
                }
            };
            if matched {
                roles.extend(m.roles.iter().copied());
                out_groups.extend(m.groups.iter().cloned());
                subject_roles.extend(m.subject_roles.iter().cloned());
            }
        }
        Ok(Identity {
            provider: c.name.clone(),
            subject,
            roles,
            groups: out_groups.into_iter().collect(),
            subject_roles: subject_roles.into_iter().collect(),
            mfa_at: self.mfa_at(claims)?,
            kind: SubjectKind::Human,
            jti: optional_id(claims, "jti")?,
            session: optional_id(claims, "sid")?,
        })
    }

    fn subject(&self, claims: &Map<String, Value>) -> Result<String, IdentityError> {
        let wanted = self.config.subject_claim.as_str();
        let (name, v) = match claims.get(wanted) {
            Some(v) => (wanted, v),
            None => (
                "sub",
                claims
                    .get("sub")
                    .ok_or_else(|| IdentityError::MissingClaim(format!("{wanted}` or `sub")))?,
            ),
        };
        // An address the IdP has not verified is whatever the user typed
        // into their profile: as an identity it would let anyone be anyone.
        // Absent is accepted (Entra ID never sends the flag); some IdPs,
        // Cognito among them, send it as a string.
        let unverified = match claims.get("email_verified") {
            None => false,
            Some(Value::Bool(b)) => !b,
            Some(Value::String(s)) => s != "true",
            Some(_) => true,
        };
        if name == "email" && unverified {
            return Err(IdentityError::claim(
                "email",
                "is not verified by the identity provider (email_verified is false)",
            ));
        }
        let s = v
            .as_str()
            .ok_or_else(|| IdentityError::claim(name, "must be a string"))?;
        let s = clean(name, s, MAX_CLAIM_BYTES)?;
        let key = identity_key(s);
        if key.is_empty() {
            return Err(IdentityError::claim(name, "is empty once normalised"));
        }
        Ok(key)
    }

    /// The sign-in time when the sign-in used MFA; `None` when `amr` lacks
    /// `mfa` or there is no sign-in time (no proof of fresh MFA, so none).
    fn mfa_at(&self, claims: &Map<String, Value>) -> Result<Option<Timestamp>, IdentityError> {
        let c = &self.config;
        let Some(amr) = claims.get(&c.mfa_claim) else {
            return Ok(None);
        };
        if !string_list(&c.mfa_claim, amr)?.contains(&"mfa") {
            return Ok(None);
        }
        let Some(t) = claims.get(&c.auth_time_claim) else {
            return Ok(None);
        };
        let t = t.as_u64().ok_or_else(|| {
            IdentityError::claim(
                &c.auth_time_claim,
                "must be a whole number of seconds since the epoch",
            )
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        if t > now.saturating_add(c.leeway_s) {
            return Err(IdentityError::claim(
                &c.auth_time_claim,
                "is in the future: a sign-in cannot have happened yet",
            ));
        }
        crate::request::check_timestamp(t)
            .map(Some)
            .map_err(|m| IdentityError::claim(&c.auth_time_claim, m))
    }
}

/// Every configured provider; a token goes to the one its `iss` names.
/// Tokens already verified are answered from a [`VerifiedTokens`] cache.
#[derive(Debug, Default)]
pub struct IdentityProviders {
    providers: Vec<IdentityProvider>,
    verified: VerifiedTokens,
}

impl IdentityProviders {
    /// From providers built with [`IdentityProvider::new`].
    pub fn new(providers: Vec<IdentityProvider>) -> IdentityProviders {
        IdentityProviders {
            providers,
            verified: VerifiedTokens::default(),
        }
    }

    /// The providers, in configuration order (index `i` is
    /// `identity-providers[i]`).
    pub fn providers(&self) -> &[IdentityProvider] {
        &self.providers
    }

    /// The verified-token cache.
    pub fn cache(&self) -> &VerifiedTokens {
        &self.verified
    }

    /// None configured: every bearer token is a static one.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Whether `token` looks like a JWT (three base64url parts), so the API
    /// layer can try IdP verification before the static-token table. Cheap:
    /// no decoding.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    /// Verify `token` with the provider its `iss` names.
    pub fn verify(&self, token: &str) -> Result<Identity, IdentityError> {
        self.verify_at(token, Instant::now())
    }

    /// [`IdentityProviders::verify`] with `now` for the JWKS rate limit.
    pub fn verify_at(&self, token: &str, now: Instant) -> Result<Identity, IdentityError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(IdentityError::TooLong {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let key = VerifiedTokens::key(token);
        let unix = jsonwebtoken::get_current_timestamp();
        if let Some(id) = self.verified.get(&key, unix) {
            return Ok(id);
        }
        #[derive(serde::Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        // Unverified, only to route: the chosen provider then checks the
        // signature and that `iss` is exactly its own.
        let peek: Iss = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| IdentityError::Malformed)?;
        let iss = peek
            .iss
            .ok_or_else(|| IdentityError::MissingClaim("iss".into()))?;
        let (id, exp) = self
            .providers
            .iter()
            .find(|p| p.config.issuer == iss)
            .ok_or(IdentityError::UnknownIssuer)?
            .verify_exp(token, now)?;
        if let Some(exp) = exp {
            self.verified.put(key, id.clone(), exp, unix);
        }
        Ok(id)
    }
}

/// A claim by name: top-level first (namespaced claims such as
/// `https://example.com/groups` contain dots), else a dotted path.
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// A string or an array of strings, each checked with [`clean`], at most
/// [`MAX_CLAIM_ITEMS`].
fn string_list<'a>(claim: &str, v: &'a Value) -> Result<Vec<&'a str>, IdentityError> {
    match v {
        Value::String(s) => Ok(vec![clean(claim, s, MAX_CLAIM_BYTES)?]),
        Value::Array(items) => {
            if items.len() > MAX_CLAIM_ITEMS {
                return Err(IdentityError::claim(
                    claim,
                    format!(
                        "has {} entries; at most {MAX_CLAIM_ITEMS} are accepted",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| IdentityError::claim(claim, "must hold only strings"))
                        .and_then(|s| clean(claim, s, MAX_CLAIM_BYTES))
                })
                .collect()
        }
        _ => Err(IdentityError::claim(
            claim,
            "must be a string or an array of strings",
        )),
    }
}

fn optional_id(claims: &Map<String, Value>, claim: &str) -> Result<Option<String>, IdentityError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(clean(claim, s, MAX_ID_BYTES)?.to_string())),
        Some(_) => Err(IdentityError::claim(claim, "must be a string")),
    }
}

/// Bounded, non-empty, and nothing a terminal would act on or hide: these
/// strings reach audit records, approvers' screens and identity comparisons.
fn clean<'a>(claim: &str, s: &'a str, max: usize) -> Result<&'a str, IdentityError> {
    if s.trim().is_empty() {
        return Err(IdentityError::claim(claim, "must not be empty"));
    }
    if s.len() > max {
        return Err(IdentityError::claim(
            claim,
            format!("is {} bytes; at most {max} are accepted", s.len()),
        ));
    }
    if matches!(crate::text::terminal_safe(s), Cow::Owned(_)) {
        return Err(IdentityError::claim(
            claim,
            "contains control or invisible formatting characters",
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
