//! Console sign-in (issue 16): the authorization-code flow with PKCE of
//! `jitgate::identity::login` against the test IdP of
//! tests/support/idp.rs (a loopback OpenID provider whose key the test
//! makes). A full sign-in yields the principal the claim map gives; each
//! attack on the flow is a test named after it and ends in the
//! `LoginError` that names what failed.

use jitgate::identity::{
    IdentityError, IdentityProvider, IdentityProviders, LoginError, LoginFlow, PendingLogin,
    PendingLogins,
};
use jitgate::service::{ManualClock, Principal, Role};
use jitgate_tests::idp::{TestIdp, query_param};
use serde_json::json;
use std::sync::Arc;

const CLIENT: &str = "jitgate-console";
const CALLBACK: &str = "https://jitgate.test/console/callback";
const SECRET_ENV: &str = "JITGATE_TEST_OIDC_SECRET";
const SECRET: &str = "console-client-secret-0123456789";

/// The claim map: helpdesk-tier2 requests, saas-owners approve.
const MAP: &str = r#"
[[identity-providers.map]]
claim = "groups"
value = "helpdesk-tier2"
roles = ["requester"]
groups = ["helpdesk-tier2"]
subject-roles = ["helpdesk"]

[[identity-providers.map]]
claim = "groups"
value = "saas-owners"
roles = ["approver"]
groups = ["saas-owners"]
"#;

/// The test IdP and a sign-in flow configured for it (a confidential
/// client: the IdP requires the secret), with a clock the test moves.
struct Setup {
    idp: TestIdp,
    flow: LoginFlow,
    clock: ManualClock,
    rt: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let idp = TestIdp::start(CLIENT);
    idp.require_secret(SECRET);
    let toml = idp.provider_config(
        "corp",
        CALLBACK,
        &idp.jwks_file_line(),
        &format!("client-secret-env = \"{SECRET_ENV}\"\n{MAP}"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jitgate.toml");
    std::fs::write(&path, &toml).expect("config");
    // The checks of `jitgate.toml`, then the providers as `serve` builds
    // them (keys from the IdP's JWKS file).
    let config = jitgate::config::Config::load(&path).expect("config checks");
    let providers = config
        .identity_providers
        .into_iter()
        .map(|c| IdentityProvider::from_file_config(c).expect("provider"))
        .collect();
    let env = |k: &str| (k == SECRET_ENV).then(|| SECRET.to_string());
    let clock = ManualClock::at(jitgate::service::now_millis());
    let flow = LoginFlow::new(
        &IdentityProviders::new(providers),
        &env,
        jitgate::outbound::Outbound::new(None).expect("client"),
    )
    .expect("login flow")
    .with_clock(Arc::new(clock.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    Setup {
        idp,
        flow,
        clock,
        rt,
    }
}

impl Setup {
    /// Begin a sign-in and let the "browser" through the IdP: the pending
    /// sign-in and the callback's code and state.
    fn begin(&self) -> (PendingLogin, String, String) {
        let (url, pending) = self.flow.start("corp").expect("start");
        let back = self
            .idp
            .authorize(&url)
            .expect("the IdP sends the browser back");
        assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");
        let code = query_param(&back, "code").expect("code");
        let state = query_param(&back, "state").expect("state");
        (pending, code, state)
    }

    fn finish(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
    ) -> Result<Principal, LoginError> {
        self.rt.block_on(self.flow.finish(pending, code, state))
    }
}

fn refused_by_idp(e: &LoginError, want: &str) {
    match e {
        LoginError::Refused { status, error } => {
            assert!(*status == 400 || *status == 401, "{e}");
            assert_eq!(error, want, "{e}");
        }
        e => panic!("expected the IdP's refusal `{want}`, got {e:?}"),
    }
}

/// A full sign-in: the IdP user in helpdesk-tier2 and saas-owners who
/// passed MFA becomes a requester and approver with those groups, the MFA
/// time, and the sign-in recorded; the IdP saw the S256 challenge of the
/// verifier, the verifier and the secret, and the ID token's audience is
/// the client id.
#[test]
fn full_flow_signs_in_the_idp_user_with_roles_from_the_claim_mapping() {
    let s = setup();
    let auth_time = jitgate_tests::server::now_secs() - 30;
    s.idp.set_user(json!({
        "sub": "u-77", "email": "Alice@Example.com", "email_verified": true,
        "groups": ["helpdesk-tier2", "saas-owners", "unmapped"],
        "amr": ["pwd", "mfa"], "auth_time": auth_time,
    }));
    let (pending, code, state) = s.begin();
    let p = s.finish(&pending, &code, &state).expect("signed in");
    assert_eq!(p.name, "alice@example.com");
    assert_eq!(
        p.roles,
        [Role::Requester, Role::Approver].into_iter().collect()
    );
    assert_eq!(p.groups, ["helpdesk-tier2", "saas-owners"]);
    assert_eq!(p.subject_roles, ["helpdesk"]);
    assert_eq!(p.mfa_at, Some(auth_time));
    let sign_in = p.sign_in.expect("sign-in recorded");
    assert_eq!(sign_in.identity_provider, "corp");
    assert_eq!(sign_in.session.as_deref(), Some("idp-session-1"));
    // PKCE: the IdP got S256(verifier) first, the verifier at /token.
    use base64::Engine as _;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(pending.code_verifier.as_bytes()));
    assert_eq!(s.idp.challenges(), [challenge]);
    let forms = s.idp.token_requests();
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], code);
    assert_eq!(form["redirect_uri"], CALLBACK);
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["code_verifier"], pending.code_verifier);
    assert_eq!(form["client_secret"], SECRET);
    // A user without MFA signs in too, with no MFA time.
    s.idp.set_user(json!({"sub": "u-8", "email": "bob@example.com", "groups": ["saas-owners"], "amr": ["pwd"]}));
    let (pending, code, state) = s.begin();
    let p = s.finish(&pending, &code, &state).expect("signed in");
    assert_eq!(p.name, "bob@example.com");
    assert_eq!(p.roles, [Role::Approver].into_iter().collect());
    assert_eq!(p.mfa_at, None);
}

/// CSRF on the callback: a callback carrying the state of another sign-in
/// (an attacker's, pushed into the victim's browser) is refused before the
/// code is sent anywhere.
#[test]
fn wrong_state_on_the_callback_is_refused() {
    let s = setup();
    let (victim, _, _) = s.begin();
    let (_, attacker_code, attacker_state) = s.begin();
    let e = s
        .finish(&victim, &attacker_code, &attacker_state)
        .unwrap_err();
    assert!(matches!(e, LoginError::StateMismatch), "{e:?}");
    for state in ["", "x", &"s".repeat(5000)] {
        let e = s.finish(&victim, &attacker_code, state).unwrap_err();
        assert!(matches!(e, LoginError::StateMismatch), "{e:?}");
    }
    assert!(s.idp.token_requests().is_empty(), "no code was redeemed");
    assert!(e.to_string().contains("state"), "{e}");
}

/// A code is redeemed once: the callback replayed (same pending sign-in,
/// same code) is refused by the IdP, and so is a code taken to another
/// browser's sign-in (its verifier is not the code's).
#[test]
fn replayed_code_is_refused() {
    let s = setup();
    let (pending, code, state) = s.begin();
    s.finish(&pending, &code, &state).expect("first use");
    let e = s.finish(&pending, &code, &state).unwrap_err();
    refused_by_idp(&e, "invalid_grant");
    assert!(
        !e.to_string().contains(&code),
        "the code is not echoed: {e}"
    );
    // A stolen code injected into the thief's own sign-in.
    let (_, victim_code, _) = s.begin();
    let (thief, _, thief_state) = s.begin();
    let e = s.finish(&thief, &victim_code, &thief_state).unwrap_err();
    refused_by_idp(&e, "invalid_grant");
}

/// PKCE: a token request without the verifier, or with one that is not
/// the challenge's, is refused by the IdP.
#[test]
fn missing_or_wrong_pkce_verifier_is_refused() {
    let s = setup();
    for verifier in [String::new(), "W".repeat(43)] {
        let (mut pending, code, state) = s.begin();
        pending.code_verifier = verifier;
        let e = s.finish(&pending, &code, &state).unwrap_err();
        refused_by_idp(&e, "invalid_grant");
    }
}

/// An ID token whose `nonce` is not the sign-in's (a replayed or injected
/// ID token), or that has none, is refused.
#[test]
fn id_token_with_a_wrong_nonce_is_refused() {
    let s = setup();
    for nonce in [json!("another-sign-in-nonce"), serde_json::Value::Null] {
        s.idp.override_claims(json!({ "nonce": nonce }));
        let (pending, code, state) = s.begin();
        let e = s.finish(&pending, &code, &state).unwrap_err();
        assert!(matches!(e, LoginError::NonceMismatch), "{e:?}");
    }
}

/// An ID token from another issuer, for another audience (another client,
/// or the API audience instead of the console's client id), issued to
/// another party (`azp`), or signed with a key not in the JWKS, fails the
/// provider's validation.
#[test]
fn id_token_from_another_issuer_or_audience_is_refused() {
    let s = setup();
    for (claims, what) in [
        (json!({"iss": "http://127.0.0.1:1"}), "issuer"),
        (json!({"aud": "another-client"}), "audience"),
        (json!({"aud": "jitgate-api"}), "audience"),
        (json!({"aud": ["another-client"]}), "audience"),
    ] {
        s.idp.override_claims(claims.clone());
        let (pending, code, state) = s.begin();
        let e = s.finish(&pending, &code, &state).unwrap_err();
        match (&e, what) {
            (LoginError::IdToken(IdentityError::Issuer), "issuer")
            | (LoginError::IdToken(IdentityError::Audience), "audience") => {}
            (other, _) => panic!("{claims}: {other:?}"),
        }
    }
    s.idp
        .override_claims(json!({"aud": [CLIENT, "other"], "azp": "other"}));
    let (pending, code, state) = s.begin();
    let e = s.finish(&pending, &code, &state).unwrap_err();
    assert!(matches!(e, LoginError::WrongParty), "{e:?}");
    s.idp.override_claims(json!({}));
    s.idp.sign_with_rogue_key();
    let (pending, code, state) = s.begin();
    let e = s.finish(&pending, &code, &state).unwrap_err();
    assert!(
        matches!(e, LoginError::IdToken(IdentityError::Signature)),
        "{e:?}"
    );
}

/// A pending sign-in older than 10 minutes is refused before its code is
/// redeemed; one just inside the limit completes.
#[test]
fn expired_pending_login_is_refused() {
    let s = setup();
    let (pending, code, state) = s.begin();
    s.clock.advance(10 * 60 * 1000 + 1);
    let e = s.finish(&pending, &code, &state).unwrap_err();
    assert!(matches!(e, LoginError::Expired { minutes: 10 }), "{e:?}");
    assert!(s.idp.token_requests().is_empty(), "no code was redeemed");
    let (pending, code, state) = s.begin();
    s.clock.advance(10 * 60 * 1000 - 1);
    s.finish(&pending, &code, &state).expect("within the limit");
}

/// The pending-login store binds a sign-in to the id in the browser's
/// cookie: taken once, so a second callback with the same cookie finds
/// nothing.
#[test]
fn pending_login_is_taken_once_from_the_store() {
    let s = setup();
    let store = PendingLogins::new(&s.flow);
    let (pending, code, state) = s.begin();
    let id = store.put(pending).expect("put");
    let taken = store.take(&id).expect("kept");
    s.finish(&taken, &code, &state).expect("signed in");
    assert!(store.take(&id).is_none());
}

/// `jitgate serve`'s server offers sign-in for a provider configured in
/// `jitgate.toml` (a public client, keys fetched from the IdP's jwks-url),
/// through `AppState::login` / `Server::login`; a provider whose secret
/// variable is unset fails start-up naming the key.
#[test]
fn server_built_from_the_config_signs_in_through_the_idp() {
    use jitgate_tests::app::App;
    use jitgate_tests::server::Backend;
    let idp = TestIdp::start(CLIENT);
    let config = idp.provider_config("corp", CALLBACK, &idp.jwks_url_line(), MAP);
    let app = App::new(Backend::Sqlite, &config);
    let flow = app.server().login();
    assert_eq!(flow.providers(), ["corp"]);
    assert!(!app.server().tls());
    let (url, pending) = flow.start("corp").expect("start");
    let back = idp.authorize(&url).expect("redirect");
    let (code, state) = (
        query_param(&back, "code").expect("code"),
        query_param(&back, "state").expect("state"),
    );
    let p = app
        .block_on(flow.finish(&pending, &code, &state))
        .expect("signed in");
    assert_eq!(p.name, "alice@example.com");
    assert!(!idp.token_requests()[0].contains_key("client_secret"));

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = jitgate_tests::server::write_config(
        dir.path(),
        &idp.provider_config(
            "corp",
            CALLBACK,
            &idp.jwks_url_line(),
            "client-secret-env = \"JITGATE_TEST_UNSET_SECRET\"\n",
        ),
    );
    let config = jitgate::config::Config::load(&cfg).expect("config");
    let e = jitgate::api::Server::from_config_with_env(config, None, &jitgate_tests::tickets::env)
        .err()
        .expect("start-up fails");
    assert!(
        e.to_string()
            .starts_with("identity-providers[0].client-secret-env"),
        "{e}"
    );
}
