//! A test identity provider: an Ed25519 key made by the test, its JWKS, and
//! tokens signed with it.
//!
//! **The suite under IdP tokens.** With `JITGATE_TEST_IDENTITY=idp` (set by
//! `./dev test` for a second run of the API suites) every test server is
//! configured with this provider, and every request a test sends with one of
//! the people of [`crate::server::TOKENS`] carries an IdP token for that
//! person instead of the static token: same name, roles, groups and job
//! roles, but proven by a signature and mapped through
//! `[[identity-providers.map]]`. Pipelines keep their static tokens (the
//! issue keeps them for pipelines and services). The tests themselves do
//! not change: what they assert must hold whichever way a person signed in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// The suite IdP's `iss`.
pub const ISSUER: &str = "https://idp.test/realms/suite";
/// The suite IdP's `aud`.
pub const AUDIENCE: &str = "jitgate-suite";
const KID: &str = "suite-key-1";
/// The prefix of the group that names a person in suite tokens (one map
/// entry per person gives it that person's static-token privileges).
const USER_GROUP: &str = "suite-user:";

/// Whether this run sends people's requests with IdP tokens.
pub fn enabled() -> bool {
    std::env::var("JITGATE_TEST_IDENTITY").is_ok_and(|v| v == "idp")
}

fn suite_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&rand_bytes()))
}

/// `[[identity-providers]]` for the suite IdP, its JWKS written into `dir`:
/// one map entry per person of [`crate::server::TOKENS`].
pub fn suite_config(dir: &Path) -> String {
    let jwks_path = dir.join("suite-jwks.json");
    let _ = std::fs::write(&jwks_path, jwks(suite_key(), KID).to_string());
    let mut toml = format!(
        "\n[[identity-providers]]\nname = \"suite-idp\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks-file = \"{}\"\nsubject-claim = \"sub\"\n",
        jwks_path.display()
    );
    for (_, name, roles, groups, subject_roles) in people() {
        toml.push_str(&format!(
            "\n[[identity-providers.map]]\nclaim = \"groups\"\nvalue = \"{USER_GROUP}{name}\"\nroles = {roles:?}\ngroups = {groups:?}\nsubject-roles = {subject_roles:?}\n"
        ));
    }
    toml
}

/// The people among the test tokens (pipelines stay static).
fn people() -> impl Iterator<Item = &'static crate::server::TokenSpec> {
    crate::server::TOKENS
        .iter()
        .filter(|(_, _, roles, _, _)| !roles.contains(&"pipeline"))
}

/// What to send as the bearer for test token `token`: the token itself, or,
/// in an IdP run and for a person, an IdP token for that person (minted
/// once per process, as a signed-in browser keeps its token).
pub fn bearer(token: &str) -> String {
    if !enabled() {
        return token.to_string();
    }
    let Some((_, name, ..)) = people().find(|(t, ..)| *t == token) else {
        return token.to_string();
    };
    static MINTED: OnceLock<Mutex<HashMap<&'static str, String>>> = OnceLock::new();
    let minted = MINTED.get_or_init(Default::default);
    let mut minted = minted.lock().unwrap_or_else(|e| e.into_inner());
    minted
        .entry(name)
        .or_insert_with(|| {
            let now = crate::server::now_secs();
            let claims = json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": name,
                "groups": [format!("{USER_GROUP}{name}")],
                "iat": now, "exp": now + 6 * 3600,
                "jti": format!("jti-{}", hex::encode(rand_bytes())),
            });
            signed_with_kid(&claims, suite_key(), KID)
        })
        .clone()
}

/// `claims` signed with `key` (EdDSA), naming key `kid`.
pub fn signed_with_kid(claims: &Value, key: &SigningKey, kid: &str) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// A JWKS holding `key`'s public half as `kid`.
pub fn jwks(key: &SigningKey, kid: &str) -> Value {
    json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
    }]})
}

/// base64url (no padding) of `v`'s JSON.
pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// 32 unpredictable bytes for a throwaway test key or id.
pub fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The tests crate has no RNG of its own; sha256 of the time and a
    // counter is unpredictable enough for a throwaway test key.
    use sha2::Digest;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    b.copy_from_slice(&sha2::Sha256::digest(format!(
        "{t}/{n}/{}",
        std::process::id()
    )));
    b
}

/// An OpenID Connect provider on a loopback port for console sign-in
/// (authorization code + PKCE): `GET /authorize` signs in, without asking,
/// the user the test chose ([`TestIdp::set_user`]) and sends the browser to
/// `redirect_uri` with a one-time `code` and the `state`; `POST /token`
/// gives an ID token (EdDSA, carrying the `nonce`) for a code only to the
/// client it was issued to, with the same `redirect_uri` and the PKCE
/// verifier of the recorded S256 challenge. Also `GET /jwks` and
/// `/.well-known/openid-configuration`. Refusals are OAuth errors
/// (`400 {"error": "invalid_grant"}` …); a test can tamper with the ID
/// token ([`TestIdp::override_claims`], [`TestIdp::sign_with_rogue_key`]).
pub struct TestIdp {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its `iss`: `http://127.0.0.1:PORT`.
    pub issuer: String,
    /// The one client it knows.
    pub client_id: String,
    key: SigningKey,
    dir: tempfile::TempDir,
    state: std::sync::Arc<Mutex<IdpState>>,
}

/// The key id the test IdP signs with.
pub const TEST_IDP_KID: &str = "test-idp-key-1";

#[derive(Default)]
struct IdpState {
    user: Value,
    client_secret: Option<String>,
    issued: HashMap<String, Issued>,
    used: std::collections::HashSet<String>,
    challenges: Vec<String>,
    token_requests: Vec<HashMap<String, String>>,
    overrides: Value,
    rogue: bool,
}

#[derive(Clone)]
struct Issued {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: Value,
}

impl TestIdp {
    /// Start an IdP knowing `client_id` (a public client until
    /// [`TestIdp::require_secret`]); its user is `alice@example.com` in
    /// `helpdesk-tier2` until [`TestIdp::set_user`].
    pub fn start(client_id: &str) -> TestIdp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind test IdP");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}");
        let key = SigningKey::from_bytes(&rand_bytes());
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = std::fs::write(
            dir.path().join("jwks.json"),
            jwks(&key, TEST_IDP_KID).to_string(),
        );
        let state = std::sync::Arc::new(Mutex::new(IdpState {
            user: json!({"sub": "u-alice", "email": "alice@example.com", "email_verified": true, "groups": ["helpdesk-tier2"]}),
            overrides: json!({}),
            ..IdpState::default()
        }));
        let shared = IdpServer {
            issuer: issuer.clone(),
            client_id: client_id.to_string(),
            key: key.clone(),
            state: state.clone(),
        };
        let shared = std::sync::Arc::new(shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let s = shared.clone();
                std::thread::spawn(move || s.connection(stream));
            }
        });
        TestIdp {
            addr,
            issuer,
            client_id: client_id.to_string(),
            key,
            dir,
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut IdpState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The claims of the user the next `/authorize` signs in (`sub`,
    /// `email`, `groups`, `amr`, `auth_time`…; `iss`, `aud`, `iat`, `exp`
    /// and `nonce` are added).
    pub fn set_user(&self, claims: Value) {
        self.with(|s| s.user = claims);
    }

    /// `/token` requires this `client_secret` (a confidential client).
    pub fn require_secret(&self, secret: &str) {
        self.with(|s| s.client_secret = Some(secret.to_string()));
    }

    /// Claims merged into every ID token from now on (`null` removes one):
    /// a wrong `nonce`, another `iss` or `aud`.
    pub fn override_claims(&self, claims: Value) {
        self.with(|s| s.overrides = claims);
    }

    /// Sign ID tokens with a key that is not in the JWKS (same `kid`).
    pub fn sign_with_rogue_key(&self) {
        self.with(|s| s.rogue = true);
    }

    /// Every `code_challenge` `/authorize` received, in order.
    pub fn challenges(&self) -> Vec<String> {
        self.with(|s| s.challenges.clone())
    }

    /// Every `/token` form received, in order.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|s| s.token_requests.clone())
    }

    /// Its JWKS file (for `jwks-file`); `{issuer}/jwks` serves the same.
    pub fn jwks_file(&self) -> std::path::PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// Its signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// `[[identity-providers]]` named `name` for this IdP with console
    /// sign-in returning to `redirect_uri`, `jwks` being `jwks-file = …` or
    /// `jwks-url = …` ([`TestIdp::jwks_file_line`], [`TestIdp::jwks_url_line`]),
    /// then `extra` lines (claim maps, `client-secret-env`…).
    pub fn provider_config(
        &self,
        name: &str,
        redirect_uri: &str,
        jwks: &str,
        extra: &str,
    ) -> String {
        format!(
            "\n[[identity-providers]]\nname = \"{name}\"\nissuer = \"{issuer}\"\naudience = \"jitgate-api\"\n{jwks}\n\
             authorization-endpoint = \"{issuer}/authorize\"\ntoken-endpoint = \"{issuer}/token\"\n\
             client-id = \"{client}\"\nredirect-uri = \"{redirect_uri}\"\nscopes = [\"openid\", \"email\", \"groups\"]\n{extra}",
            issuer = self.issuer,
            client = self.client_id,
        )
    }

    /// `jwks-file = "…"`.
    pub fn jwks_file_line(&self) -> String {
        format!("jwks-file = \"{}\"", self.jwks_file().display())
    }

    /// `jwks-url = "http://127.0.0.1:PORT/jwks"`.
    pub fn jwks_url_line(&self) -> String {
        format!("jwks-url = \"{}/jwks\"", self.issuer)
    }

    /// What a browser does with an authorization URL: GET it (it must be
    /// this IdP's) and follow nothing; the `Location` it is sent to.
    pub fn authorize(&self, url: &str) -> Result<String, String> {
        let path = url
            .strip_prefix(&self.issuer)
            .ok_or_else(|| format!("not this IdP: {url}"))?;
        let mut c = std::net::TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(30)));
        use std::io::{Read, Write};
        c.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let mut raw = String::new();
        let _ = c.read_to_string(&mut raw);
        if !raw.starts_with("HTTP/1.1 302") {
            return Err(raw);
        }
        raw.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("location")
                    .then(|| v.trim().to_string())
            })
            .ok_or(raw)
    }
}

/// The query parameter `name` of `url`, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    parse_form(query).remove(name)
}

fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (!k.is_empty()).then(|| (dec(k), dec(v)))
        })
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The IdP's request handling (shared by its connection threads).
struct IdpServer {
    issuer: String,
    client_id: String,
    key: SigningKey,
    state: std::sync::Arc<Mutex<IdpState>>,
}

impl IdpServer {
    fn connection(&self, stream: std::net::TcpStream) {
        use std::io::Write;
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(60)));
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = std::io::BufReader::new(read_half);
        let mut stream = stream;
        while let Some(req) = crate::receiver::read_request(&mut reader) {
            let line = req.request_line().to_string();
            let mut parts = line.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let (status, headers, body) = match (method, path) {
                ("GET", "/authorize") => self.authorize(&parse_form(query)),
                ("POST", "/token") => self.token(&parse_form(&String::from_utf8_lossy(&req.body))),
                ("GET", "/jwks") => (
                    200,
                    String::new(),
                    jwks(&self.key, TEST_IDP_KID).to_string(),
                ),
                ("GET", "/.well-known/openid-configuration") => (
                    200,
                    String::new(),
                    json!({
                        "issuer": self.issuer,
                        "authorization_endpoint": format!("{}/authorize", self.issuer),
                        "token_endpoint": format!("{}/token", self.issuer),
                        "jwks_uri": format!("{}/jwks", self.issuer),
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                        "id_token_signing_alg_values_supported": ["EdDSA"],
                    })
                    .to_string(),
                ),
                _ => (404, String::new(), oauth_error("not_found")),
            };
            let reason = match status {
                200 => "OK",
                302 => "Found",
                400 => "Bad Request",
                401 => "Unauthorized",
                _ => "Not Found",
            };
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(resp.as_bytes()).is_err()
                || req.header("connection").eq_ignore_ascii_case("close")
            {
                return;
            }
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, IdpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Auto-consent: a code for the chosen user, back to `redirect_uri`.
    fn authorize(&self, q: &HashMap<String, String>) -> (u16, String, String) {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        if get("response_type") != "code" {
            return (400, String::new(), oauth_error("unsupported_response_type"));
        }
        if get("client_id") != self.client_id {
            return (400, String::new(), oauth_error("unauthorized_client"));
        }
        let redirect_uri = get("redirect_uri");
        if redirect_uri.is_empty() {
            return (400, String::new(), oauth_error("invalid_request"));
        }
        let challenge = get("code_challenge");
        if get("code_challenge_method") != "S256" || challenge.len() < 43 {
            return (400, String::new(), oauth_error("invalid_request"));
        }
        if !get("scope").split(' ').any(|s| s == "openid") {
            return (400, String::new(), oauth_error("invalid_scope"));
        }
        let code = hex::encode(rand_bytes());
        let mut s = self.locked();
        s.challenges.push(challenge.clone());
        let user = s.user.clone();
        s.issued.insert(
            code.clone(),
            Issued {
                client_id: get("client_id"),
                redirect_uri: redirect_uri.clone(),
                challenge,
                nonce: q.get("nonce").cloned(),
                user,
            },
        );
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!(
            "{redirect_uri}{sep}code={}&state={}",
            enc(&code),
            enc(&get("state"))
        );
        (302, format!("Location: {location}\r\n"), String::new())
    }

    /// A code, once, for its client, redirect URI and PKCE verifier.
    fn token(&self, form: &HashMap<String, String>) -> (u16, String, String) {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let mut s = self.locked();
        s.token_requests.push(form.clone());
        if get("grant_type") != "authorization_code" {
            return (400, String::new(), oauth_error("unsupported_grant_type"));
        }
        if let Some(secret) = &s.client_secret
            && get("client_secret") != *secret
        {
            return (401, String::new(), oauth_error("invalid_client"));
        }
        let code = get("code");
        // A code is good once: a replay finds it used (and a real IdP
        // would also revoke what the first use issued).
        if s.used.contains(&code) {
            return (400, String::new(), oauth_error("invalid_grant"));
        }
        let Some(issued) = s.issued.remove(&code) else {
            return (400, String::new(), oauth_error("invalid_grant"));
        };
        s.used.insert(code);
        if get("client_id") != issued.client_id || get("redirect_uri") != issued.redirect_uri {
            return (400, String::new(), oauth_error("invalid_grant"));
        }
        let verifier = get("code_verifier");
        use base64::Engine as _;
        use sha2::Digest;
        let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        if verifier.len() < 43 || computed != issued.challenge {
            return (400, String::new(), oauth_error("invalid_grant"));
        }
        let now = crate::server::now_secs();
        let mut claims = json!({
            "iss": self.issuer, "aud": issued.client_id,
            "iat": now, "exp": now + 300,
            "jti": format!("jti-{}", hex::encode(rand_bytes())),
            "sid": "idp-session-1",
        });
        if let Some(n) = issued.nonce {
            claims["nonce"] = json!(n);
        }
        merge(&mut claims, &issued.user);
        merge(&mut claims, &s.overrides);
        let key = if s.rogue {
            SigningKey::from_bytes(&rand_bytes())
        } else {
            self.key.clone()
        };
        let id_token = signed_with_kid(&claims, &key, TEST_IDP_KID);
        (
            200,
            String::new(),
            json!({
                "access_token": format!("at-{}", hex::encode(rand_bytes())),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            })
            .to_string(),
        )
    }
}

/// `over`'s members into `base` (`null` removes the member).
fn merge(base: &mut Value, over: &Value) {
    if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

fn oauth_error(code: &str) -> String {
    json!({"error": code}).to_string()
}
