//! Console sign-in with an identity provider: the OpenID Connect
//! authorization-code flow with PKCE (RFC 7636, method S256), for the
//! providers of `[[identity-providers]]` that set `authorization-endpoint`,
//! `token-endpoint`, `client-id` and `redirect-uri`.
//!
//! 1. [`LoginFlow::start`]: fresh `state`, `nonce` and PKCE `code_verifier`
//!    (32 bytes each from the OS CSPRNG, base64url); the browser is sent to
//!    the authorization URL, and the caller keeps the [`PendingLogin`]
//!    server-side ([`PendingLogins`]), bound to the browser by a cookie.
//! 2. The IdP sends the browser back to `redirect-uri` with `code` and
//!    `state`; [`LoginFlow::finish`] checks the pending login has not
//!    expired (10 minutes), compares `state` in constant time, POSTs the
//!    code with the verifier to the token endpoint (the crate's outbound
//!    client: one deadline, a bounded answer), and checks the returned
//!    `id_token` with exactly the provider's bearer-token validation
//!    (signature by its JWKS, algorithm pinned by the key, `iss`, `exp`,
//!    `nbf`, claim hygiene, the claim map) with the audience set to the
//!    `client-id`, then `nonce` equality (constant time) and `azp` when
//!    present. The result is the [`Principal`] a bearer token of the same
//!    person would give.
//!
//! Nothing here logs or returns in an error a code, a token, the verifier,
//! the nonce, the state or the client secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{IdentityError, IdentityProvider, IdentityProviders};
use crate::grant::Millis;
use crate::outbound::Outbound;
use crate::service::{Clock, Principal, SystemClock};

/// How long a begun sign-in may take (IdP page, password, MFA) before its
/// callback is refused.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// The token request's deadline, response body included.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token-endpoint answer read, bytes (an ID token is at most
/// [`super::MAX_TOKEN_BYTES`]; access and refresh tokens ride along).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest `code` or `state` accepted from a callback, bytes.
pub const MAX_CALLBACK_PARAM_BYTES: usize = 2048;
/// Most pending sign-ins a [`PendingLogins`] keeps; past it the oldest go.
pub const MAX_PENDING: usize = 10_000;

/// RFC 3986 unreserved characters stay; everything else is %-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A console sign-in setting is unusable; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct LoginConfigError {
    /// `identity-providers[i].…`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Why a sign-in failed. Messages are fit for the person signing in and the
/// log: they name what failed and never carry a code, token or secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The provider named does not offer console sign-in.
    #[error("`{0}` is not an identity provider with console sign-in")]
    UnknownProvider(String),
    /// The OS gave no randomness for state, nonce and verifier.
    #[error("no OS randomness to begin a sign-in: {0}")]
    Random(String),
    /// The pending sign-in is older than its lifetime.
    #[error("the sign-in began more than {minutes} minutes ago; sign in again")]
    Expired {
        /// The lifetime, minutes.
        minutes: u64,
    },
    /// The callback's `state` is not the pending sign-in's (a forged or
    /// crossed callback: login CSRF).
    #[error("the callback's state does not match the sign-in begun in this browser")]
    StateMismatch,
    /// The callback's `code` is missing, too long or not visible ASCII.
    #[error("the callback's code is missing or malformed")]
    BadCode,
    /// The token endpoint could not be reached or did not answer in time.
    #[error("the identity provider's token endpoint failed: {0}")]
    TokenEndpoint(String),
    /// The token endpoint refused the code (a used or unknown code, a wrong
    /// PKCE verifier, redirect URI or client): its status and OAuth `error`.
    #[error("the identity provider refused the code (HTTP {status}, error `{error}`)")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code (`invalid_grant`…), or `unknown`.
        error: String,
    },
    /// The token endpoint's answer is not JSON with an `id_token`.
    #[error("the identity provider's token answer is unusable: {0}")]
    TokenResponse(String),
    /// The ID token failed the provider's validation.
    #[error("the ID token was refused: {0}")]
    IdToken(#[source] IdentityError),
    /// The ID token's `nonce` is missing or not the pending sign-in's (a
    /// replayed or injected ID token).
    #[error("the ID token's nonce does not match the sign-in")]
    NonceMismatch,
    /// The ID token's `azp` names another client.
    #[error("the ID token was issued to another client (azp)")]
    WrongParty,
}

/// A begun sign-in, kept server-side until its callback (never sent to the
/// browser: the verifier is what makes a stolen code useless). Debug shows
/// only the provider and the start time.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingLogin {
    /// Echoed by the IdP in the callback; compared in constant time.
    pub state: String,
    /// Must come back in the ID token.
    pub nonce: String,
    /// PKCE verifier; its S256 challenge went to the IdP.
    pub code_verifier: String,
    /// The provider's `name`.
    pub provider: String,
    /// When the sign-in began, Unix ms (the flow's clock).
    pub created_at: Millis,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One provider's console client.
struct Client {
    name: String,
    authorization_endpoint: String,
    token_endpoint: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    scopes: String,
    /// The provider's validation with `aud` = `client-id`, sharing its keys.
    id_tokens: Arc<IdentityProvider>,
}

/// Console sign-in through the configured identity providers.
pub struct LoginFlow {
    clients: Vec<Client>,
    outbound: Option<Outbound>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
}

impl std::fmt::Debug for LoginFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlow")
            .field("providers", &self.providers())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for LoginFlow {
    fn default() -> Self {
        LoginFlow::disabled()
    }
}

impl LoginFlow {
    /// No provider offers sign-in.
    pub fn disabled() -> LoginFlow {
        LoginFlow {
            clients: Vec::new(),
            outbound: None,
            clock: Arc::new(SystemClock),
            ttl: PENDING_TTL,
        }
    }

    /// Every provider of `providers` whose config sets the sign-in keys
    /// (checked by [`super::check_providers`]), its client secret read
    /// through `env` from `client-secret-env`; token requests go through
    /// `outbound`.
    pub fn new(
        providers: &IdentityProviders,
        env: &dyn Fn(&str) -> Option<String>,
        outbound: Outbound,
    ) -> Result<LoginFlow, LoginConfigError> {
        let mut clients = Vec::new();
        for (i, p) in providers.providers().iter().enumerate() {
            let c = p.config();
            if !c.login_configured() {
                continue;
            }
            let at = |key: &str| format!("identity-providers[{i}].{key}");
            let required = |v: &Option<String>, key: &str| {
                v.clone().ok_or_else(|| LoginConfigError {
                    key: at(key),
                    message: "required for console sign-in".into(),
                })
            };
            let client_id = required(&c.client_id, "client-id")?;
            let client_secret =
                match &c.client_secret_env {
                    None => None,
                    Some(var) => Some(env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                        LoginConfigError {
                            key: at("client-secret-env"),
                            message: format!("`{var}` is not set"),
                        }
                    })?),
                };
            let id_tokens = p.for_audience(&client_id).map_err(|e| LoginConfigError {
                key: at("client-id"),
                message: e.to_string(),
            })?;
            clients.push(Client {
                name: c.name.clone(),
                authorization_endpoint: required(
                    &c.authorization_endpoint,
                    "authorization-endpoint",
                )?,
                token_endpoint: required(&c.token_endpoint, "token-endpoint")?,
                client_id,
                client_secret,
                redirect_uri: required(&c.redirect_uri, "redirect-uri")?,
                scopes: c.scopes.join(" "),
                id_tokens: Arc::new(id_tokens),
            });
        }
        Ok(LoginFlow {
            clients,
            outbound: Some(outbound),
            clock: Arc::new(SystemClock),
            ttl: PENDING_TTL,
        })
    }

    /// Read the time from `clock` (pending-login expiry; tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> LoginFlow {
        self.clock = clock;
        self
    }

    /// Pending sign-ins expire after `ttl` instead of [`PENDING_TTL`].
    pub fn with_pending_ttl(mut self, ttl: Duration) -> LoginFlow {
        self.ttl = ttl;
        self
    }

    /// Names of the providers offering sign-in, in configuration order.
    pub fn providers(&self) -> Vec<&str> {
        self.clients.iter().map(|c| c.name.as_str()).collect()
    }

    /// Whether any provider offers sign-in.
    pub fn is_enabled(&self) -> bool {
        !self.clients.is_empty()
    }

    /// How long a pending sign-in lives.
    pub fn pending_ttl(&self) -> Duration {
        self.ttl
    }

    fn client(&self, provider: &str) -> Result<&Client, LoginError> {
        self.clients
            .iter()
            .find(|c| c.name == provider)
            .ok_or_else(|| LoginError::UnknownProvider(shown(provider)))
    }

    /// Begin a sign-in with `provider`: the URL to send the browser to, and
    /// the pending sign-in to keep server-side until the callback.
    pub fn start(&self, provider: &str) -> Result<(String, PendingLogin), LoginError> {
        let c = self.client(provider)?;
        let pending = PendingLogin {
            state: random_token()?,
            nonce: random_token()?,
            code_verifier: random_token()?,
            provider: c.name.clone(),
            created_at: self.clock.now(),
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let sep = if c.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!(
            "{}{sep}{}",
            c.authorization_endpoint,
            form(&[
                ("response_type", "code"),
                ("client_id", c.client_id.as_str()),
                ("redirect_uri", c.redirect_uri.as_str()),
                ("scope", c.scopes.as_str()),
                ("state", pending.state.as_str()),
                ("nonce", pending.nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
        );
        Ok((url, pending))
    }

    /// Complete `pending` with the callback's `code` and `state`: the
    /// signed-in person. Every check of the module comment, in order;
    /// the first that fails is the error.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
    ) -> Result<Principal, LoginError> {
        let c = self.client(&pending.provider)?;
        let age = self.clock.now().saturating_sub(pending.created_at);
        if age < 0 || age as u128 > self.ttl.as_millis() {
            return Err(LoginError::Expired {
                minutes: self.ttl.as_secs() / 60,
            });
        }
        if state.len() > MAX_CALLBACK_PARAM_BYTES
            || !ct_eq(state.as_bytes(), pending.state.as_bytes())
        {
            return Err(LoginError::StateMismatch);
        }
        if code.is_empty()
            || code.len() > MAX_CALLBACK_PARAM_BYTES
            || !code.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(LoginError::BadCode);
        }
        let id_token = self.redeem(c, pending, code).await?;
        let verifier = Arc::clone(&c.id_tokens);
        // The JWKS may have to be fetched (a `jwks-url` fetch blocks on the
        // runtime): off the async workers, as the API verifies tokens.
        let (identity, claims) =
            tokio::task::spawn_blocking(move || verifier.verify_claims(&id_token, Instant::now()))
                .await
                .map_err(|e| LoginError::TokenResponse(format!("validation task failed: {e}")))?
                .map_err(LoginError::IdToken)?;
        check_nonce(&claims, &pending.nonce)?;
        if let Some(azp) = claims.get("azp")
            && azp.as_str() != Some(c.client_id.as_str())
        {
            return Err(LoginError::WrongParty);
        }
        tracing::info!(provider = %c.name, subject = %identity.subject, "console sign-in");
        Ok(identity.principal())
    }

    /// POST the code to the token endpoint; the `id_token` it answers.
    async fn redeem(
        &self,
        c: &Client,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<String, LoginError> {
        let outbound = self
            .outbound
            .as_ref()
            .ok_or_else(|| LoginError::TokenEndpoint("no HTTP client".into()))?;
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("client_id", c.client_id.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        if let Some(secret) = &c.client_secret {
            fields.push(("client_secret", secret.as_str()));
        }
        let req = hyper::Request::post(c.token_endpoint.as_str())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::ACCEPT, "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(form(
                &fields,
            ))))
            .map_err(|e| LoginError::TokenEndpoint(format!("request: {e}")))?;
        let answer = outbound
            .send(req, TOKEN_TIMEOUT, MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(|e| LoginError::TokenEndpoint(e.to_string()))?;
        let body = answer.body.map_err(LoginError::TokenResponse)?;
        if !answer.status.is_success() {
            let error = serde_json::from_slice::<Map<String, Value>>(&body)
                .ok()
                .and_then(|m| m.get("error").and_then(Value::as_str).map(str::to_string))
                .filter(|e| {
                    !e.is_empty()
                        && e.len() <= 64
                        && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .unwrap_or_else(|| "unknown".into());
            return Err(LoginError::Refused {
                status: answer.status.as_u16(),
                error,
            });
        }
        let doc: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|_| LoginError::TokenResponse("not a JSON object".into()))?;
        match doc.get("id_token") {
            Some(Value::String(t)) => Ok(t.clone()),
            Some(_) => Err(LoginError::TokenResponse(
                "`id_token` is not a string".into(),
            )),
            None => Err(LoginError::TokenResponse(
                "no `id_token` (is `openid` among the scopes?)".into(),
            )),
        }
    }
}

fn check_nonce(claims: &Map<String, Value>, nonce: &str) -> Result<(), LoginError> {
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if ct_eq(n.as_bytes(), nonce.as_bytes()) => Ok(()),
        _ => Err(LoginError::NonceMismatch),
    }
}

/// Pending sign-ins, each under an opaque id the console puts in a
/// short-lived cookie; taken once. Bounded by [`MAX_PENDING`] (the oldest
/// go first) and swept of expired ones as new ones arrive, since anyone may
/// begin a sign-in. In memory: behind several replicas the callback must
/// reach the replica that began the sign-in (or keep [`PendingLogin`],
/// which serialises, in a shared store).
pub struct PendingLogins {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    map: Mutex<HashMap<String, PendingLogin>>,
}

impl std::fmt::Debug for PendingLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogins")
            .field("ttl", &self.ttl)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl PendingLogins {
    /// Kept for `flow`'s pending lifetime, on its clock.
    pub fn new(flow: &LoginFlow) -> PendingLogins {
        PendingLogins {
            ttl: flow.ttl,
            clock: Arc::clone(&flow.clock),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Keep `pending`; the id to find it by (32 random bytes, base64url).
    pub fn put(&self, pending: PendingLogin) -> Result<String, LoginError> {
        let id = random_token()?;
        let now = self.clock.now();
        let ttl = self.ttl.as_millis() as i64;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| now.saturating_sub(p.created_at) <= ttl);
        }
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.created_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(id.clone(), pending);
        Ok(id)
    }

    /// Take the pending sign-in kept under `id` (once: a second take finds
    /// nothing). Expiry is [`LoginFlow::finish`]'s to judge.
    pub fn take(&self, id: &str) -> Option<PendingLogin> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// Pending sign-ins kept now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// None kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 32 bytes from the OS CSPRNG, base64url without padding (43 characters:
/// a valid PKCE verifier, RFC 7636 §4.1).
fn random_token() -> Result<String, LoginError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| LoginError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// `k=v&…`, every value %-encoded (a form body or a query string).
fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.extend(utf8_percent_encode(v, COMPONENT));
    }
    out
}

/// Equal, in time independent of where they differ and of their lengths:
/// both sides are hashed first, then every byte is compared.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    let diff = x.iter().zip(y.iter()).fold(0u8, |d, (p, q)| d | (p ^ q));
    std::hint::black_box(diff) == 0
}

/// A provider name from a request, safe to show.
fn shown(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    crate::text::terminal_safe(&s[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ManualClock;

    fn flow_with(login: &str) -> Result<LoginFlow, LoginConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        std::fs::write(
            &jwks,
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA",
                "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())}]})
            .to_string(),
        )
        .unwrap();
        let config: super::super::IdentityProviderConfig = toml::from_str(&format!(
            "name = 'corp'\nissuer = 'https://idp.test'\naudience = 'api'\njwks-file = '{}'\n{login}",
            jwks.display()
        ))
        .unwrap();
        super::super::check_providers(std::slice::from_ref(&config)).map_err(|e| {
            LoginConfigError {
                key: e.split(':').next().unwrap_or("").into(),
                message: e,
            }
        })?;
        let p = IdentityProvider::from_file_config(config).unwrap();
        let env = |k: &str| (k == "SECRET").then(|| "s3cret".to_string());
        LoginFlow::new(
            &IdentityProviders::new(vec![p]),
            &env,
            Outbound::new(None).unwrap(),
        )
    }

    const LOGIN: &str = "authorization-endpoint = 'https://idp.test/authorize?tenant=a b'\n\
        token-endpoint = 'https://idp.test/token'\nclient-id = 'console app'\n\
        redirect-uri = 'https://jg.test/console/callback'\nscopes = ['openid', 'email']\n";

    #[test]
    fn start_sends_s256_challenge_state_and_nonce_from_the_csprng() {
        let flow = flow_with(LOGIN.replace("a b", "a").as_str()).unwrap();
        assert_eq!(flow.providers(), ["corp"]);
        let (url, p) = flow.start("corp").unwrap();
        let (_, p2) = flow.start("corp").unwrap();
        assert!(
            url.starts_with("https://idp.test/authorize?tenant=a&response_type=code&"),
            "{url}"
        );
        for v in [&p.state, &p.nonce, &p.code_verifier] {
            assert_eq!(v.len(), 43);
        }
        assert_ne!(p.state, p2.state);
        assert_ne!(p.nonce, p.state);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(p.code_verifier.as_bytes()));
        assert!(url.contains(&format!(
            "&code_challenge={challenge}&code_challenge_method=S256"
        )));
        assert!(url.contains("&client_id=console%20app&"), "{url}");
        assert!(url.contains("&redirect_uri=https%3A%2F%2Fjg.test%2Fconsole%2Fcallback&"));
        assert!(url.contains("&scope=openid%20email&"));
        assert!(!url.contains(&p.code_verifier), "the verifier stays here");
        let shown = format!("{p:?}");
        assert!(
            !shown.contains(&p.state) && !shown.contains(&p.code_verifier),
            "{shown}"
        );
        assert!(matches!(
            flow.start("other"),
            Err(LoginError::UnknownProvider(_))
        ));
    }

    #[test]
    fn login_keys_are_all_or_none_and_name_the_key() {
        let ok = LOGIN.replace("a b", "a");
        for (login, key) in [
            ("client-id = 'x'\n".to_string(), "authorization-endpoint"),
            (
                "authorization-endpoint = 'https://i/a'\ntoken-endpoint = 'https://i/t'\nredirect-uri = 'https://j/c'\n".to_string(),
                "client-id",
            ),
            (ok.replace("https://idp.test/token", "http://idp.test/token"), "token-endpoint"),
            (ok.replace("https://jg.test", "http://jg.test"), "redirect-uri"),
            (ok.replace("callback'", "callback#x'"), "redirect-uri"),
            (ok.clone(), ""),
            (ok.replace("'openid', ", ""), "scopes"),
            (ok.replace("'email'", "'a\"b'"), "scopes"),
            (ok.replace("'console app'", "\"x\\u001b\""), "client-id"),
            (format!("{ok}client-secret-env = 'MISSING'\n"), "client-secret-env"),
        ] {
            match flow_with(&login) {
                Ok(_) => assert_eq!(key, "", "{login}"),
                Err(e) => {
                    let want = format!("identity-providers[0].{key}");
                    assert!(!key.is_empty() && e.key == want, "{login}: {e}");
                }
            }
        }
        // The space in the authorization endpoint is refused as well.
        assert!(
            flow_with(LOGIN)
                .unwrap_err()
                .key
                .ends_with("authorization-endpoint")
        );
        let ok = flow_with(&format!(
            "{}client-secret-env = 'SECRET'\n",
            LOGIN.replace("a b", "a")
        ))
        .unwrap();
        assert!(ok.is_enabled());
        assert!(!LoginFlow::disabled().is_enabled());
    }

    #[test]
    fn an_expired_or_future_pending_login_is_refused_before_any_request() {
        let clock = ManualClock::at(1_000_000);
        let flow = flow_with(&LOGIN.replace("a b", "a"))
            .unwrap()
            .with_clock(Arc::new(clock.clone()));
        let (_, p) = flow.start("corp").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        clock.advance(PENDING_TTL.as_millis() as i64 + 1);
        let e = rt.block_on(flow.finish(&p, "code", &p.state)).unwrap_err();
        assert!(matches!(e, LoginError::Expired { minutes: 10 }), "{e}");
        clock.set(p.created_at - 1);
        let e = rt.block_on(flow.finish(&p, "code", &p.state)).unwrap_err();
        assert!(matches!(e, LoginError::Expired { .. }), "{e}");
        clock.set(p.created_at + 1000);
        let e = rt.block_on(flow.finish(&p, "code", "forged")).unwrap_err();
        assert!(matches!(e, LoginError::StateMismatch), "{e}");
        for bad in ["", "a b", &"x".repeat(MAX_CALLBACK_PARAM_BYTES + 1)] {
            let e = rt.block_on(flow.finish(&p, bad, &p.state)).unwrap_err();
            assert!(matches!(e, LoginError::BadCode), "{e}");
        }
    }

    #[test]
    fn pending_logins_are_taken_once_and_bounded() {
        let clock = ManualClock::at(0);
        let flow = LoginFlow::disabled().with_clock(Arc::new(clock.clone()));
        let store = PendingLogins::new(&flow);
        let pending = |t| PendingLogin {
            state: "s".into(),
            nonce: "n".into(),
            code_verifier: "v".into(),
            provider: "p".into(),
            created_at: t,
        };
        let id = store.put(pending(0)).unwrap();
        assert_eq!(store.take(&id).map(|p| p.created_at), Some(0));
        assert!(store.take(&id).is_none(), "taken once");
        let first = store.put(pending(1)).unwrap();
        for t in 2..=MAX_PENDING as i64 {
            store.put(pending(t)).unwrap();
        }
        assert_eq!(store.len(), MAX_PENDING);
        store.put(pending(MAX_PENDING as i64 + 1)).unwrap();
        assert_eq!(store.len(), MAX_PENDING);
        assert!(store.take(&first).is_none(), "the oldest went first");
    }

    #[test]
    fn ct_eq_compares_whole_values() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
    }
}
