//! `jitgate dev-idp`: a pretend identity provider for trying jitgate on one
//! machine (the README walk-through with IdP tokens). It keeps an Ed25519
//! key in a folder, writes the matching JWKS file, and prints an
//! `[[identity-providers]]` snippet and signed tokens for the example users.
//!
//! A development aid only: whoever can run it can mint any token the
//! printed configuration accepts. Production uses a real IdP (docs/identity.md).

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Mint development tokens for the example users (a development aid only).
#[derive(Args)]
pub struct DevIdpArgs {
    /// Folder for the key (dev-idp.key, dev-idp.pub; reused when present)
    /// and the JWKS file (jwks.json, rewritten).
    #[arg(long, default_value = "dev-idp")]
    dir: PathBuf,
    /// The `iss` of the tokens.
    #[arg(long, default_value = "https://dev-idp.jitgate.invalid")]
    issuer: String,
    /// The `aud` of the tokens.
    #[arg(long, default_value = "jitgate")]
    audience: String,
    /// Token lifetime, seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Sign-ins used MFA: `amr` holds `mfa` and `auth_time` is now (what
    /// saas-admin needs). Without it `amr` is `["pwd"]`.
    #[arg(long)]
    mfa: bool,
    /// Only this user (default: every example user).
    #[arg(long)]
    user: Option<String>,
}

/// The example users: email, IdP groups, what the printed map makes them.
const USERS: &[(&str, &[&str], &str)] = &[
    (
        "alice@example.com",
        &["helpdesk-tier2"],
        "requester, helpdesk",
    ),
    ("bob@example.com", &["saas-owners"], "approver"),
    ("carol@example.com", &["sre"], "requester and approver, sre"),
    ("erin@example.com", &["security-audit"], "auditor"),
];

/// The claim map that goes with [`USERS`].
const MAP: &str = r#"[[identity-providers.map]]
claim = "groups"
value = "helpdesk-tier2"
roles = ["requester"]
groups = ["helpdesk-tier2"]
subject-roles = ["helpdesk"]

[[identity-providers.map]]
claim = "groups"
value = "saas-owners"
roles = ["approver"]
groups = ["saas-owners", "incident-commanders", "helpdesk-leads"]

[[identity-providers.map]]
claim = "groups"
value = "sre"
roles = ["requester", "approver"]
groups = ["incident-commanders", "oncall"]
subject-roles = ["sre", "it-admin"]

[[identity-providers.map]]
claim = "groups"
value = "security-audit"
roles = ["auditor"]
"#;

/// Write the key and JWKS, print the config snippet and the tokens.
pub fn run(args: DevIdpArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let key = key_in(&args.dir)?;
    let kid = jitgate::keys::key_id(&key.verifying_key());
    let jwks = json!({"keys": [{
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }]});
    let jwks_path = args.dir.join("jwks.json");
    std::fs::write(&jwks_path, serde_json::to_vec_pretty(&jwks)?)
        .with_context(|| format!("writing {}", jwks_path.display()))?;
    let jwks_abs = std::fs::canonicalize(&jwks_path).unwrap_or(jwks_path);

    println!("# jitgate dev-idp: a development aid only; never configure its key in production.");
    println!("# Add to jitgate.toml:\n");
    println!(
        "[[identity-providers]]\nname = \"dev-idp\"\nissuer = {}\naudience = {}\njwks-file = {}\nalgorithms = [\"EdDSA\"]\n",
        toml_str(&args.issuer),
        toml_str(&args.audience),
        toml_str(&jwks_abs.display().to_string())
    );
    println!("{MAP}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!(
        "# Tokens (valid {} s{}); send as `Authorization: Bearer $ALICE`:",
        args.ttl,
        if args.mfa {
            ", signed in with MFA now"
        } else {
            ""
        }
    );
    let mut shown = 0;
    for (email, groups, what) in USERS {
        if args
            .user
            .as_deref()
            .is_some_and(|u| u != *email && !email.starts_with(&format!("{u}@")))
        {
            continue;
        }
        let claims = json!({
            "iss": args.issuer,
            "aud": args.audience,
            "sub": format!("dev-{}", email.split('@').next().unwrap_or(email)),
            "email": email,
            "email_verified": true,
            "groups": groups,
            "iat": now,
            "nbf": now,
            "exp": now + args.ttl,
            "auth_time": now,
            "amr": if args.mfa { json!(["pwd", "mfa"]) } else { json!(["pwd"]) },
            "jti": random_id()?,
            "sid": random_id()?,
        });
        let var = email.split('@').next().unwrap_or("USER").to_uppercase();
        println!("# {email}: {what}");
        println!("{var}={}", sign(&key, &kid, &claims)?);
        shown += 1;
    }
    if shown == 0 {
        anyhow::bail!("--user: no example user is called that");
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder's key, made on first use.
fn key_in(dir: &Path) -> Result<ed25519_dalek::SigningKey> {
    let (secret, public) = (dir.join("dev-idp.key"), dir.join("dev-idp.pub"));
    if !secret.exists() {
        jitgate::keys::keygen(&secret, &public)?;
    }
    Ok(jitgate::keys::read_secret(&secret)?)
}

/// A compact JWS (EdDSA) of `claims`.
fn sign(key: &ed25519_dalek::SigningKey, kid: &str, claims: &Value) -> Result<String> {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let sig = key.sign(input.as_bytes());
    Ok(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    ))
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(hex::encode(b))
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}
