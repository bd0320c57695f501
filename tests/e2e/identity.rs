//! People authenticated by an identity provider (issue 13), through the
//! router `jitgate serve` builds: bearer JWTs signed with a key this test
//! makes (EdDSA), verified against a JWKS file it writes. Who the caller
//! is, its groups and its MFA time come from the token; a body cannot
//! claim them; separation of duties holds across a person's names; an
//! approval shows the sign-in behind it.

use ed25519_dalek::SigningKey;
use jitgate_tests::app::App;
use jitgate_tests::idp::{b64, jwks, rand_bytes, signed_with_kid};
use jitgate_tests::server::{Backend, TestStore, body, now_secs, write_config_with};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.test/realms/corp";
const AUDIENCE: &str = "jitgate";
const KID: &str = "test-key-1";

/// The test's identity provider: its signing key and JWKS file.
struct Idp {
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl Idp {
    fn new() -> Idp {
        let key = SigningKey::from_bytes(&rand_bytes());
        let dir = tempfile::tempdir().expect("tempdir");
        let jwks = jwks(&key, KID);
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("jwks");
        Idp { key, dir }
    }

    /// `[[identity-providers]]` for this IdP: helpdesk-tier2 requests,
    /// saas-owners approve.
    fn config(&self, extra: &str) -> String {
        format!(
            r#"{extra}
[[identity-providers]]
name = "corp-idp"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks-file = "{}"

[[identity-providers.map]]
claim = "groups"
value = "helpdesk-tier2"
roles = ["requester"]
groups = ["helpdesk-tier2"]
subject-roles = ["helpdesk", "it-admin"]

[[identity-providers.map]]
claim = "groups"
value = "saas-owners"
roles = ["approver"]
groups = ["saas-owners"]
"#,
            self.dir.path().join("jwks.json").display()
        )
    }

    /// A token with `claims` over a valid base, signed with the IdP's key.
    fn token(&self, claims: Value) -> String {
        self.signed(&self.claims(claims), &self.key)
    }

    fn claims(&self, overrides: Value) -> Value {
        let now = now_secs();
        let mut c = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "u-1",
            "email": "alice@example.com", "email_verified": true,
            "groups": ["helpdesk-tier2"],
            "iat": now, "exp": now + 600,
            "jti": format!("jti-{}", hex::encode(rand_bytes())),
            "sid": "session-1",
        });
        if let (Some(c), Some(o)) = (c.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        c
    }

    fn signed(&self, claims: &Value, key: &SigningKey) -> String {
        signed_with_kid(claims, key, KID)
    }
}

/// A requester's body for itself: no kind, no MFA time (its token says).
fn own_body(id: &str, subject: &str, task: &str, entitlement: &str) -> Value {
    let mut b = body(id, subject, task, 600);
    if let Some(s) = b["subject"].as_object_mut() {
        s.remove("kind");
        s.remove("mfa-at");
    }
    b["entitlement"] = json!(entitlement);
    b
}

fn app(b: Backend, idp: &Idp, extra: &str) -> App {
    App::new(b, &idp.config(extra))
}

fn a_valid_token_works_as_requester(b: Backend) {
    let idp = Idp::new();
    let app = app(b, &idp, "");
    let alice = idp.token(json!({"email": " Alice@Example.com "}));
    let r = app.post(
        "/v1/requests",
        Some(&alice),
        &app.seed(&own_body(
            "r1",
            "alice@example.com",
            "file-recovery",
            "backup-operator",
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "active", "{g}");
    assert_eq!(g["requested-by"], "alice@example.com");
    assert_eq!(g["request"]["subject"]["kind"], "human");
    // Groups and roles are the IdP's, not the body's.
    assert_eq!(g["request"]["subject"]["groups"], json!(["helpdesk-tier2"]));
    assert_eq!(
        g["request"]["subject"]["roles"],
        json!(["helpdesk", "it-admin"])
    );
    // The same token again (now from the verified-token cache).
    let list = app.get("/v1/grants", Some(&alice));
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["grants"].as_array().map(Vec::len), Some(1));
    // Another person's grant is not hers to ask for.
    let r = app.post(
        "/v1/requests",
        Some(&alice),
        &app.seed(&own_body(
            "r2",
            "bob@example.com",
            "file-recovery",
            "backup-operator",
        )),
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

/// Each forged or unusable token: 401 with a message naming what is wrong.
fn forged_and_unusable_tokens_are_401_naming_the_claim(b: Backend) {
    let idp = Idp::new();
    let app = app(b, &idp, "");
    let now = now_secs();
    let other_key = SigningKey::from_bytes(&rand_bytes());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&idp.claims(json!({})))
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, "not a signed JWT"),
        (
            "signed by another key",
            idp.signed(&idp.claims(json!({})), &other_key),
            "signature does not verify",
        ),
        (
            "wrong iss",
            idp.token(json!({"iss": "https://evil.test"})),
            "issuer (`iss`)",
        ),
        (
            "wrong aud",
            idp.token(json!({"aud": "another-app"})),
            "audience (`aud`)",
        ),
        (
            "expired",
            idp.token(json!({"iat": now - 7200, "exp": now - 3600})),
            "expired",
        ),
        (
            "not yet valid",
            idp.token(json!({"nbf": now + 3600})),
            "not valid yet",
        ),
        (
            "missing groups claim",
            idp.token(json!({"groups": null})),
            "no `groups` claim",
        ),
        (
            "unverified email",
            idp.token(json!({"email_verified": false})),
            "not verified",
        ),
    ];
    for (name, token, want) in cases {
        let r = app.post(
            "/v1/decisions",
            Some(&token),
            &app.seed(&own_body("d1", "alice@example.com", "file-recovery", "x")),
        );
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["code"], "unauthenticated", "{name}");
        let msg = e["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{name}: `{msg}` lacks `{want}`");
    }
}

/// A flood of bad JWTs draws on the address's allowance exactly like
/// unknown static tokens; a valid token is still served.
fn identity_token_failures_are_rate_limited_like_unknown_tokens(b: Backend) {
    let idp = Idp::new();
    let app = app(b, &idp, "[limits]\nauth-failure-burst = 2\n");
    let expired = idp.token(json!({"exp": now_secs() - 3600}));
    for _ in 0..2 {
        assert_eq!(app.get("/v1/grants", Some(&expired)).status, 401);
    }
    let r = app.get("/v1/grants", Some(&expired));
    assert_eq!(r.status, 429, "{}", r.body);
    let r = app.get("/v1/grants", Some("t-nope"));
    assert_eq!(r.status, 429, "static and IdP failures share the allowance");
    let good = idp.token(json!({}));
    assert_eq!(app.get("/v1/grants", Some(&good)).status, 200);
}

fn decide(app: &App, token: &str, body: &Value) -> Value {
    let r = app.post("/v1/decisions", Some(token), body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// saas-admin needs MFA within 15 minutes: the token's `auth_time` (with
/// `amr: ["mfa"]`) decides, fresh allows and stale denies.
fn saas_admin_reads_mfa_from_the_sign_in(b: Backend) {
    let idp = Idp::new();
    let app = app(b, &idp, "");
    let now = now_secs();
    let req = app.seed(&own_body(
        "s1",
        "alice@example.com",
        "saas-admin",
        "okta:read",
    ));
    let fresh = idp.token(json!({"auth_time": now - 60, "amr": ["pwd", "mfa"]}));
    let d = decide(&app, &fresh, &req);
    assert_eq!(d["outcome"], "allow", "{d}");
    let stale = idp.token(json!({"auth_time": now - 3600, "amr": ["pwd", "mfa"]}));
    let d = decide(&app, &stale, &req);
    assert_eq!(d["outcome"], "deny", "{d}");
    assert!(d.to_string().contains("seconds ago"), "{d}");
    // A recent sign-in without MFA is no MFA at all.
    let no_mfa = idp.token(json!({"auth_time": now - 10, "amr": ["pwd"]}));
    let d = decide(&app, &no_mfa, &req);
    assert_eq!(d["outcome"], "deny", "{d}");
    assert!(d.to_string().contains("no MFA is on record"), "{d}");
}

/// The attack the issue opens with: "MFA 10 s ago" in the body. Refused
/// (400 naming the field) or ignored for the token's `auth_time`; never
/// believed.
fn a_requester_cannot_claim_fresh_mfa(b: Backend) {
    let idp = Idp::new();
    let app = app(b, &idp, "");
    let now = now_secs();
    for (what, claims) in [
        ("no MFA", json!({"amr": ["pwd"], "auth_time": now - 5})),
        (
            "stale MFA",
            json!({"amr": ["mfa"], "auth_time": now - 7200}),
        ),
    ] {
        let token = idp.token(claims);
        let mut req = app.seed(&own_body(
            &format!("m-{}", what.replace(' ', "-")),
            "alice@example.com",
            "saas-admin",
            "okta:read",
        ));
        req["subject"]["mfa-at"] = json!(now - 10);
        let r = app.post("/v1/decisions", Some(&token), &req);
        match r.status {
            400 => assert_eq!(r.json()["error"]["field"], "subject.mfa-at", "{what}"),
            200 => assert_eq!(r.json()["outcome"], "deny", "{what}: {}", r.body),
            s => panic!("{what}: {s} {}", r.body),
        }
        let r = app.post("/v1/requests", Some(&token), &req);
        match r.status {
            400 => assert_eq!(r.json()["error"]["field"], "subject.mfa-at", "{what}"),
            201 => {
                let g = r.json();
                assert_eq!(g["state"], "denied", "{what}: {g}");
                // What was decided on is the sign-in's time, not the body's.
                assert_ne!(g["request"]["subject"]["mfa-at"], json!(now - 10), "{g}");
            }
            s => panic!("{what}: {s} {}", r.body),
        }
    }
}

/// dana is a requester and (by her IdP groups) a saas-owner: she may not
/// approve her own grant, nor may her other name (`[identity-aliases]`
/// makes the static token `bob` hers); bob@example.com may, and his
/// approval shows his sign-in (provider, jti, session) in the grant, its
/// evidence and `jitgate audit grant`.
fn self_approval_is_refused_and_approvals_show_the_sign_in(b: Backend) {
    let idp = Idp::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = TestStore::new(b, dir.path());
    let store_url = store.url.clone();
    // `t-bob` (static, saas-owners) is dana's other name here.
    let extra = idp.config("[identity-aliases]\n\"Dana@Example.com\" = [\"bob\"]\n");
    let cfg = write_config_with(dir.path(), &store.url, &extra);
    let app = App::from_file(&cfg, (dir, store));
    let now = now_secs();
    let dana = idp.token(json!({
        "email": "dana@example.com",
        "groups": ["helpdesk-tier2", "saas-owners"],
        "auth_time": now - 30, "amr": ["mfa"],
    }));
    let r = app.post(
        "/v1/requests",
        Some(&dana),
        &app.seed(&own_body(
            "sa1",
            "dana@example.com",
            "saas-admin",
            "okta:admin",
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "pending", "{g}");
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let approve = format!("/v1/grants/{id}/approve");

    let r = app.post(&approve, Some(&dana), &json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("own request"), "{}", r.body);
    // Her other name (a static token) is her too.
    let r = app.post(&approve, Some("t-bob"), &json!({}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("own request"), "{}", r.body);

    let bob_jti = "jti-bob-approval-1";
    let bob = idp.token(json!({
        "email": "bob@example.com", "groups": ["saas-owners"],
        "jti": bob_jti, "sid": "bob-session",
    }));
    let r = app.post(&approve, Some(&bob), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "active", "{g}");
    let want = json!({"identity-provider": "corp-idp", "jti": bob_jti, "session": "bob-session"});
    assert_eq!(g["approvals"][0]["approver"], "bob@example.com");
    assert_eq!(g["approvals"][0]["sign-in"], want, "{g}");

    let shown = app.get(&format!("/v1/grants/{id}"), Some(&dana)).json();
    assert_eq!(shown["approvals"][0]["sign-in"], want, "{shown}");
    let ev = app.get(&format!("/v1/grants/{id}/evidence"), Some("t-audit"));
    assert_eq!(ev.status, 200, "{}", ev.body);
    let ev = ev.json();
    assert_eq!(ev["grant"]["approvals"][0]["sign-in"], want, "{ev}");
    let approval_record = ev["audit"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["kind"] == "approval"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(approval_record["data"]["sign-in"], want, "{ev}");
    // The refused attempts are audited under dana's name.
    let audit = app.get("/v1/audit?limit=500", Some("t-audit")).json();
    assert!(
        audit["records"].as_array().is_some_and(|rs| rs
            .iter()
            .any(|r| r["actor"] == "dana@example.com" && r["data"]["status"] == 403)),
        "{audit}"
    );

    let (ok, out) = jitgate_tests::jitgate_audit(&store_url, &["grant", &id]);
    assert!(ok, "{out}");
    assert!(out.contains("approved by bob@example.com at "), "{out}");
    assert!(
        out.contains(&format!(
            "(identity provider corp-idp, jti {bob_jti}, session bob-session)"
        )),
        "{out}"
    );
}

/// `jitgate dev-idp` prints a configuration and tokens that work together:
/// the README walk-through with IdP tokens.
#[test]
fn dev_idp_tokens_work_with_the_printed_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(jitgate_tests::jitgate_bin())
        .args(["dev-idp", "--mfa", "--ttl", "600", "--dir"])
        .arg(dir.path().join("idp"))
        .output()
        .expect("run jitgate dev-idp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let is_token = |l: &str| {
        l.split_once('=')
            .is_some_and(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase()))
    };
    let token = |who: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{who}=")))
            .unwrap_or_else(|| panic!("no {who} token in {text}"))
            .to_string()
    };
    let config: String = text
        .lines()
        .filter(|l| !l.starts_with('#') && !is_token(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let app = App::new(Backend::Sqlite, &config);
    let alice = token("ALICE");
    let r = app.post(
        "/v1/requests",
        Some(&alice),
        &app.seed(&own_body(
            "dev1",
            "alice@example.com",
            "saas-admin",
            "okta:read",
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["state"], "active", "{}", r.body);
    let r = app.post(
        "/v1/requests",
        Some(&alice),
        &app.seed(&own_body(
            "dev2",
            "alice@example.com",
            "saas-admin",
            "okta:admin",
        )),
    );
    assert_eq!(r.json()["state"], "pending", "{}", r.body);
    let id = r.json()["id"].as_str().unwrap_or_default().to_string();
    let r = app.post(
        &format!("/v1/grants/{id}/approve"),
        Some(&token("BOB")),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["approvals"][0]["sign-in"]["identity-provider"],
        "dev-idp"
    );
}

/// A JWKS endpoint on loopback serving whatever `doc` holds; counts fetches.
fn jwks_server(
    doc: std::sync::Arc<std::sync::Mutex<String>>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = fetches.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = doc.lock().map(|d| d.clone()).unwrap_or_default();
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}/keys"), fetches)
}

/// `jwks-url`: keys are fetched when first needed; a token naming a key
/// the cache lacks (the IdP rotated) triggers a refetch, at most once per
/// 10 s, so a flood of made-up `kid`s costs the IdP one request.
#[test]
fn jwks_url_is_refetched_for_a_rotated_key_at_most_every_10_s() {
    let old_key = SigningKey::from_bytes(&rand_bytes());
    let new_key = SigningKey::from_bytes(&rand_bytes());
    let doc = std::sync::Arc::new(std::sync::Mutex::new(jwks(&old_key, "k-old").to_string()));
    let (url, fetches) = jwks_server(doc.clone());
    let idp = Idp::new();
    let config = idp.config("").replace(
        &format!(
            "jwks-file = \"{}\"",
            idp.dir.path().join("jwks.json").display()
        ),
        &format!("jwks-url = \"{url}\""),
    );
    assert!(config.contains("jwks-url"), "{config}");
    let app = App::new(Backend::Sqlite, &config);
    let fetched = || fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetched(), 0, "nothing is fetched before a token needs it");
    let old = signed_with_kid(&idp.claims(json!({})), &old_key, "k-old");
    assert_eq!(app.get("/v1/grants", Some(&old)).status, 200);
    assert_eq!(fetched(), 1);

    // The IdP rotates.
    if let Ok(mut d) = doc.lock() {
        *d = jwks(&new_key, "k-new").to_string();
    }
    let new = signed_with_kid(&idp.claims(json!({})), &new_key, "k-new");
    let started = std::time::Instant::now();
    let r = app.get("/v1/grants", Some(&new));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("no key `k-new`"), "{}", r.body);
    for i in 0..5 {
        let made_up = signed_with_kid(&idp.claims(json!({})), &new_key, &format!("k-{i}"));
        assert_eq!(app.get("/v1/grants", Some(&made_up)).status, 401);
    }
    assert_eq!(fetched(), 1, "refetches within 10 s are rate-limited");
    std::thread::sleep(std::time::Duration::from_secs(11).saturating_sub(started.elapsed()));
    let r = app.get("/v1/grants", Some(&new));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetched(), 2);
}

both_stores!(
    a_valid_token_works_as_requester,
    forged_and_unusable_tokens_are_401_naming_the_claim,
    identity_token_failures_are_rate_limited_like_unknown_tokens,
    saas_admin_reads_mfa_from_the_sign_in,
    a_requester_cannot_claim_fresh_mfa,
    self_approval_is_refused_and_approvals_show_the_sign_in,
);
