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
