//! What validating an identity provider's bearer token costs per request,
//! with the JWKS cached: a token seen for the first time (signature and
//! claims checked) and a repeat (answered from the verified-token cache).
//! Prints a table; compare rows of one run, never across machines.
//!
//! `cargo bench -p jitgate --bench identity` (release profile).

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::identity::{IdentityProvider, IdentityProviderConfig, IdentityProviders, JwksSource};

const ISS: &str = "https://idp.example.com/";
const AUD: &str = "api://jitgate";
const N: usize = 2000;

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("os random");
    b
}

/// (algorithm name, kid, signing key, public JWK).
fn keys() -> Vec<(Algorithm, &'static str, EncodingKey, serde_json::Value)> {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let with_kid = |jwk: Jwk, kid: &str| {
        let mut v = serde_json::to_value(jwk).expect("jwk");
        v["kid"] = json!(kid);
        v
    };
    let rsa = rsa::PrivateKey::new(&mut rand::rngs::SysRng, 2048).expect("rsa keygen");
    let rsa = EncodingKey::from_rsa_der(rsa.to_pkcs1_der().expect("der").as_bytes());
    let rsa_jwk = with_kid(
        Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("jwk"),
        "rs",
    );
    let es = p256::ecdsa::SigningKey::from_slice(&random32()).expect("p256");
    let es = EncodingKey::from_ec_der(
        p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&es)
            .expect("der")
            .as_bytes(),
    );
    let es_jwk = with_kid(
        Jwk::from_encoding_key(&es, Algorithm::ES256).expect("jwk"),
        "es",
    );
    let ed = ed25519_dalek::SigningKey::from_bytes(&random32());
    let ed_enc = EncodingKey::from_ed_der(ed.to_pkcs8_der().expect("der").as_bytes());
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "use": "sig",
        "x": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ed.verifying_key().to_bytes())});
    vec![
        (Algorithm::RS256, "rs", rsa, rsa_jwk),
        (Algorithm::ES256, "es", es, es_jwk),
        (Algorithm::EdDSA, "ed", ed_enc, ed_jwk),
    ]
}

fn main() {
    // Before anything signs: the provider is fixed by the first use.
    jitgate::identity::install_crypto_provider();
    let keys = keys();
    let jwks =
        serde_json::to_vec(&json!({"keys": keys.iter().map(|k| k.3.clone()).collect::<Vec<_>>()}))
            .expect("jwks");
    let config: IdentityProviderConfig = toml::from_str(&format!(
        "name = 'bench'\nissuer = '{ISS}'\naudience = '{AUD}'\njwks-url = 'https://idp.example.com/keys'\n\
         [[map]]\nclaim = 'groups'\nvalue = 'helpdesk-tier2'\nroles = ['requester']\n"
    ))
    .expect("config");
    let algorithms = config.parsed_algorithms("bench").expect("algorithms");
    let source = JwksSource::new(
        Box::new(move || Ok(jwks.clone())),
        algorithms,
        Duration::from_secs(10),
    );
    let providers = Arc::new(IdentityProviders::new(vec![
        IdentityProvider::new(config, source).expect("provider"),
    ]));
    let now = jsonwebtoken::get_current_timestamp();
    println!(
        "| algorithm | first sight p50 µs | first sight p99 µs | repeat p50 µs | repeat p99 µs |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (alg, kid, key, _) in &keys {
        let mut header = Header::new(*alg);
        header.kid = Some((*kid).into());
        let tokens: Vec<String> = (0..N)
            .map(|i| {
                let claims = json!({"iss": ISS, "aud": AUD, "sub": format!("u{i}"),
                    "email": format!("user{i}@example.com"), "exp": now + 600, "iat": now,
                    "groups": ["helpdesk-tier2"], "jti": format!("t{i}")});
                encode(&header, &claims, key).expect("sign")
            })
            .collect();
        // Warm the key cache (one fetch) before timing.
        providers.verify(&tokens[0]).expect("valid");
        let mut first = time_each(&tokens[1..], &providers);
        let repeat_token = vec![tokens[1].clone(); N];
        let mut repeat = time_each(&repeat_token, &providers);
        println!(
            "| {alg:?} | {:.1} | {:.1} | {:.1} | {:.1} |",
            pct(&mut first, 0.50),
            pct(&mut first, 0.99),
            pct(&mut repeat, 0.50),
            pct(&mut repeat, 0.99)
        );
    }
}

fn time_each(tokens: &[String], providers: &IdentityProviders) -> Vec<f64> {
    tokens
        .iter()
        .map(|t| {
            let started = Instant::now();
            let id = providers.verify(t);
            let took = started.elapsed().as_secs_f64() * 1e6;
            assert!(id.is_ok(), "{:?}", id.err());
            took
        })
        .collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
