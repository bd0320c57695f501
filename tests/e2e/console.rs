//! The web console in a real browser (Debian's chromium through
//! chromedriver, tests/support/browser.rs) against the real `jitgate serve`
//! binary: people sign in, approve, reject, release, read evidence and close
//! reviews; a cross-site form is refused; no page logs a JavaScript error;
//! every page is photographed at 1280 and 375 px into
//! `target/console-screenshots/`.
//!
//! The in-process checks of the console's HTTP surface (headers, cookies,
//! CSRF, escaping, rate limits) are in `console_http`.

use jitgate_tests::browser::{Browser, screenshot_dir};
use jitgate_tests::http::{get, post};
use jitgate_tests::idp::TestIdp;
use jitgate_tests::server::{Backend, Server, body, start, write_config};
use serde_json::{Value, json};
use std::net::SocketAddr;

const CONFIG: &str = "[tasks.break-glass]\nbreak-glass = true\ncap = 900\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A saas-admin request for `subject` that needs one saas-owners approval.
fn pending(s: &Server, id: &str, subject: &str) -> String {
    let g = post(
        s.addr,
        "/v1/requests",
        Some("t-pipe"),
        &body(id, subject, "saas-admin", 1800),
    )
    .json();
    assert_eq!(g["state"], "pending", "{g}");
    g["id"].as_str().unwrap_or_default().to_string()
}

fn grant(s: &Server, id: &str) -> Value {
    get(s.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json()
}

async fn sign_in(b: &mut Browser, addr: SocketAddr, token: &str) {
    // A fresh browser identity: drop the previous person's cookies (the
    // browser only lets a page of this origin do it).
    b.goto(&format!("http://{addr}/console/sign-in")).await;
    b.client.delete_all_cookies().await.expect("cookies");
    b.goto(&format!("http://{addr}/console/sign-in")).await;
    b.fill("#token", token).await;
    b.click("form[action='/console/sign-in'] button[type=submit]")
        .await;
}

async fn shoot(b: &mut Browser, name: &str) {
    let dir = screenshot_dir();
    for w in [1280, 375] {
        b.screenshot(&dir, name, w).await;
        if w == 375 {
            // Fits a phone: nothing wider than the screen but scrolling
            // tables, which scroll inside themselves.
            let wide = b
                .client
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                    vec![],
                )
                .await
                .expect("measure");
            assert_eq!(wide, json!(true), "{name} is wider than 375 px");
        }
    }
    b.client.set_window_size(1280, 900).await.expect("size");
}

#[test]
fn approver_requester_and_auditor_work_in_a_real_browser() {
    let (_g, s) = start(Backend::Sqlite, CONFIG);
    let approve_me = pending(&s, "c1", "alice");
    let reject_me = pending(&s, "c2", "alice");
    let mut bg = body("c3", "carol", "break-glass", 600);
    bg["justification"] = json!("primary database is down and the on-call DBA cannot be reached");
    let bg = post(s.addr, "/v1/requests", Some("t-pipe"), &bg).json();
    assert_eq!(bg["state"], "active", "{bg}");
    let base = format!("http://{}", s.addr);

    runtime().block_on(async {
        let mut b = Browser::start(1280, 900).await;

        // Signed out: every page leads to the sign-in form.
        b.goto(&format!("{base}/console/approvals")).await;
        assert!(b.has("#token").await, "{}", b.text().await);
        shoot(&mut b, "sign-in").await;

        // An approver outside the group sees why not, and no button.
        sign_in(&mut b, s.addr, "t-dave").await;
        let text = b.text().await;
        assert!(
            text.contains("You cannot approve this: dave is in none of the approver groups"),
            "{text}"
        );
        assert!(!b.has(&format!("#grant-{approve_me} button.approve")).await);

        // bob approves one in one click.
        sign_in(&mut b, s.addr, "t-bob").await;
        let card = b.find(&format!("#grant-{approve_me}")).await;
        let text = card.text().await.expect("text");
        for fact in [
            "alice",
            "saas-admin",
            "fileserver-01",
            "okta:admin",
            "the clock starts when the grant is activated",
            "0 of 1",
            "saas-owners",
            "restore the deleted finance share",
        ] {
            assert!(text.contains(fact), "approval card lacks `{fact}`: {text}");
        }
        shoot(&mut b, "approvals").await;
        b.click(&format!("#grant-{approve_me} button.approve"))
            .await;
        let text = b.text().await;
        assert!(
            text.contains(&format!("Approved {approve_me}: it is now active")),
            "{text}"
        );
        assert_eq!(grant(&s, &approve_me)["state"], "active");

        // Rejecting needs a reason of at least 10 characters.
        b.fill(&format!("#reason-{reject_me}"), "nope").await;
        b.click(&format!("#grant-{reject_me} button.reject")).await;
        let text = b.text().await;
        assert!(text.contains("at least 10 characters"), "{text}");
        assert_eq!(grant(&s, &reject_me)["state"], "pending");
        b.fill(
            &format!("#reason-{reject_me}"),
            "no ticket work needs tenant admin",
        )
        .await;
        b.click(&format!("#grant-{reject_me} button.reject")).await;
        assert!(b.text().await.contains(&format!("Rejected {reject_me}")));
        let g = grant(&s, &reject_me);
        assert_eq!(
            (g["state"].clone(), g["end-reason"].clone()),
            (
                json!("rejected"),
                json!("no ticket work needs tenant admin")
            ),
            "{g}"
        );

        // alice sees her grant active, who approved it, and releases it.
        sign_in(&mut b, s.addr, "t-alice").await;
        b.goto(&format!("{base}/console/requests")).await;
        let card = b.find(&format!("#grant-{approve_me}")).await;
        let text = card.text().await.expect("text");
        assert!(
            text.contains("active") && text.contains("Approved by bob"),
            "{text}"
        );
        assert!(b.has(&format!("#grant-{approve_me} time.countdown")).await);
        shoot(&mut b, "my-requests").await;
        b.click(&format!("#grant-{approve_me} button.release"))
            .await;
        assert!(b.text().await.contains(&format!("Released {approve_me}")));
        assert_eq!(grant(&s, &approve_me)["state"], "released");

        // The auditor finds the grant, opens its evidence, verifies the
        // chain and closes the break-glass review.
        sign_in(&mut b, s.addr, "t-audit").await;
        b.goto(&format!("{base}/console/audit?subject=alice")).await;
        shoot(&mut b, "audit").await;
        b.click(&format!("a[href='/console/grants/{approve_me}']"))
            .await;
        let text = b.text().await;
        assert!(text.contains("match their hashes"), "{text}");
        assert!(text.contains("approval") && text.contains("bob"), "{text}");
        assert!(text.contains("The whole chain verified"), "{text}");
        b.click("p.chain-walk a").await;
        let text = b.text().await;
        assert!(text.contains("The whole chain verified"), "{text}");
        shoot(&mut b, "evidence").await;
        b.goto(&format!("{base}/console/reviews")).await;
        shoot(&mut b, "reviews").await;
        b.fill("textarea[name=note]", "DBA confirmed the outage in INC-9")
            .await;
        b.click("article.review button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Closed review"), "{text}");
        let open = get(s.addr, "/v1/reviews?open=true", Some("t-audit")).json();
        assert_eq!(open["reviews"], json!([]), "{open}");

        // The admin page: the loaded set and revocation.
        sign_in(&mut b, s.addr, "t-admin").await;
        b.goto(&format!("{base}/console/admin")).await;
        let text = b.text().await;
        assert!(
            text.contains("sha256:") && text.contains("saas-admin"),
            "{text}"
        );
        shoot(&mut b, "admin").await;
        let bg_id = bg["id"].as_str().unwrap_or_default().to_string();
        b.fill(&format!("#why-{bg_id}"), "outage over").await;
        b.click(&format!(
            "form[action='/console/grants/{bg_id}/revoke'] button"
        ))
        .await;
        let text = b.text().await;
        assert!(text.contains(&format!("Revoked {bg_id}")), "{text}");

        let errors = b.js_errors.clone();
        b.close().await;
        assert!(errors.is_empty(), "pages logged errors: {errors:#?}");
    });
}

#[test]
fn a_cross_site_post_without_the_csrf_token_is_refused() {
    let (_g, s) = start(Backend::Sqlite, CONFIG);
    let id = pending(&s, "x1", "alice");
    // The attacker's page, on another loopback port: a form that posts to
    // the console's approve action with the victim's cookie, without the
    // session's CSRF token (it cannot read it).
    let evil = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let evil_addr = evil.local_addr().expect("addr");
    let page = format!(
        "<!doctype html><html><body><form method=post action='http://{}/console/grants/{id}/approve'>\
         <input type=hidden name=csrf value=guessed><button id=go type=submit>win a prize</button></form></body></html>",
        s.addr
    );
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in evil.incoming().flatten().take(4) {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    runtime().block_on(async {
        let mut b = Browser::start(1280, 900).await;
        sign_in(&mut b, s.addr, "t-bob").await;
        assert!(b.has(&format!("#grant-{id} button.approve")).await);
        b.goto(&format!("http://{evil_addr}/")).await;
        b.click("#go").await;
        let text = b.text().await;
        assert!(
            text.contains("Refused") && text.contains("another site"),
            "{text}"
        );
        b.close().await;
    });
    assert_eq!(
        grant(&s, &id)["state"],
        "pending",
        "the forged approval counted"
    );
    let r = get(s.addr, &format!("/v1/grants/{id}"), Some("t-admin")).json();
    assert_eq!(r["approvals"], json!([]), "{r}");
}

#[test]
fn a_person_signs_in_through_the_identity_provider_and_approves_with_the_keyboard() {
    let idp = TestIdp::start("jitgate-console");
    idp.set_user(json!({
        "sub": "bob@example.com",
        "email": "bob@example.com",
        "groups": ["saas-owners"],
    }));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let callback = format!("http://127.0.0.1:{port}/console/callback");
    let map = "\n[[identity-providers.map]]\nclaim = \"groups\"\nvalue = \"saas-owners\"\nroles = [\"approver\"]\ngroups = [\"saas-owners\"]\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{CONFIG}{}",
            idp.provider_config("corp", &callback, &idp.jwks_url_line(), map)
        ),
    );
    let s = Server::start_listening(&cfg, &format!("127.0.0.1:{port}"), &[]);
    let id = pending(&s, "o1", "alice");
    runtime().block_on(async {
        let mut b = Browser::start(1280, 900).await;
        b.goto(&format!("http://{}/console/sign-in", s.addr)).await;
        b.click("a[href='/console/sign-in/corp']").await;
        // The provider consented and sent the browser back: bob's queue.
        b.find(&format!("#grant-{id}")).await;
        let text = b.text().await;
        assert!(text.contains("bob@example.com"), "{text}");
        // With the keyboard only: Tab to the Approve button, press Enter.
        let mut reached = false;
        for _ in 0..30 {
            let el = b.client.active_element().await.expect("focus");
            let is_approve = b
                .client
                .execute(
                    "return document.activeElement !== null && document.activeElement.matches('button.approve');",
                    vec![],
                )
                .await
                .expect("focus check");
            if is_approve == json!(true) {
                reached = true;
                el.send_keys("\u{e007}").await.expect("Enter");
                break;
            }
            el.send_keys("\u{e004}").await.expect("Tab");
        }
        assert!(reached, "Tab never reached the Approve button");
        b.find("p.flash").await;
        let text = b.text().await;
        assert!(text.contains(&format!("Approved {id}")), "{text}");
        let errors = b.js_errors.clone();
        b.close().await;
        assert!(errors.is_empty(), "{errors:#?}");
    });
    let g = grant(&s, &id);
    assert_eq!(g["state"], "active", "{g}");
    assert_eq!(g["approvals"][0]["approver"], "bob@example.com", "{g}");
    assert_eq!(idp.challenges().len(), 1, "one PKCE challenge was sent");
}
