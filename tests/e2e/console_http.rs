//! The console's HTTP surface in process (no browser): security headers,
//! cookies, CSRF on sign-in and on every action, escaping of what
//! requesters wrote, the server-side reason rule, roles, and the sign-in
//! form as a way around the API's rate limit. Each attack is a test named
//! after it.

use jitgate_tests::app::{App, FullResponse};
use jitgate_tests::server::{Backend, body};
use serde_json::{Value, json};

const HOST: &str = "127.0.0.1:8080";

fn app() -> App {
    App::new(Backend::Sqlite, "[limits]\nauth-failure-burst = 3\n")
}

fn get(app: &App, path: &str, cookie: &str) -> FullResponse {
    app.send_full("GET", path, &[("cookie", cookie), ("host", HOST)], b"")
}

fn post_form(
    app: &App,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    form: &str,
) -> FullResponse {
    let mut h = vec![
        ("cookie", cookie),
        ("host", HOST),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    if let Some(o) = origin {
        h.push(("origin", o));
    }
    app.send_full("POST", path, &h, form.as_bytes())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sign `token`'s holder in through the form; the session cookie header
/// and the session's CSRF token (read from a page's form).
fn sign_in(app: &App, token: &str) -> (String, String) {
    let form = get(app, "/console/sign-in", "");
    assert_eq!(form.status, 200, "{}", form.body);
    let nonce = form.cookie("jitgate_sign_in").expect("sign-in cookie");
    let r = post_form(
        app,
        "/console/sign-in",
        &format!("jitgate_sign_in={nonce}"),
        Some(&format!("http://{HOST}")),
        &format!("csrf={nonce}&token={}", enc(token)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let session = r.cookie("jitgate_session").expect("session cookie");
    let cookie = format!("jitgate_session={session}");
    let page = get(app, "/console/requests", &cookie);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form with the CSRF token")
        .to_string();
    (cookie, csrf)
}

fn pending(app: &App, id: &str, justification: &str) -> String {
    let mut b = body(id, "alice", "saas-admin", 1800);
    b["justification"] = json!(justification);
    let r = app.post("/v1/requests", Some("t-pipe"), &b);
    let g: Value = r.json();
    assert_eq!(g["state"], "pending", "{g}");
    g["id"].as_str().unwrap_or_default().to_string()
}

fn state(app: &App, id: &str) -> Value {
    app.get(&format!("/v1/grants/{id}"), Some("t-admin")).json()["state"].clone()
}

#[test]
fn every_console_answer_forbids_inline_script_framing_and_sniffing() {
    let app = app();
    let (cookie, _) = sign_in(&app, "t-bob");
    for path in [
        "/console/sign-in",
        "/console/approvals",
        "/console/requests",
        "/console/assets/console.js",
    ] {
        let r = get(&app, path, &cookie);
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{path}");
        assert!(!r.body.contains("<script>"), "{path} has an inline script");
        assert!(!r.body.contains(" style=\""), "{path} has an inline style");
    }
}

#[test]
fn the_session_cookie_is_http_only_and_same_site_strict() {
    let app = app();
    let form = get(&app, "/console/sign-in", "");
    let nonce = form.cookie("jitgate_sign_in").expect("nonce");
    let r = post_form(
        &app,
        "/console/sign-in",
        &format!("jitgate_sign_in={nonce}"),
        None,
        &format!("csrf={nonce}&token=t-bob"),
    );
    assert_eq!((r.status, r.header("location")), (303, "/console/"));
    let set = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("jitgate_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP: a Secure cookie would never come back"
    );
    let home = get(&app, "/console/", set.split(';').next().unwrap_or(""));
    assert_eq!(home.header("location"), "/console/approvals");
}

#[test]
fn login_csrf_a_sign_in_post_without_its_form_cookie_is_refused() {
    let app = app();
    let r = post_form(
        &app,
        "/console/sign-in",
        "",
        None,
        "csrf=attacker&token=t-bob",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.cookie("jitgate_session").is_none());
}

#[test]
fn token_guessing_through_the_sign_in_form_is_rate_limited() {
    let app = app();
    let mut last = String::new();
    for i in 0..6 {
        let form = get(&app, "/console/sign-in", "");
        let nonce = form.cookie("jitgate_sign_in").expect("nonce");
        let r = post_form(
            &app,
            "/console/sign-in",
            &format!("jitgate_sign_in={nonce}"),
            None,
            &format!("csrf={nonce}&token=guess-{i}"),
        );
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.cookie("jitgate_session").is_none());
        last = r.body;
    }
    assert!(last.contains("too many failed authentications"), "{last}");
}

#[test]
fn a_forged_approval_with_a_wrong_csrf_token_is_refused_even_from_the_same_origin() {
    let app = app();
    let id = pending(&app, "f1", "restore the deleted finance share");
    let (cookie, csrf) = sign_in(&app, "t-bob");
    let same = format!("http://{HOST}");
    for form in ["", "csrf=", "csrf=0000", &format!("csrf={csrf}x")] {
        let r = post_form(
            &app,
            &format!("/console/grants/{id}/approve"),
            &cookie,
            Some(&same),
            form,
        );
        assert_eq!(r.status, 403, "{form}: {}", r.body);
    }
    let r = post_form(
        &app,
        &format!("/console/grants/{id}/approve"),
        &cookie,
        Some("http://evil.example"),
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 403, "another origin with the right token");
    assert_eq!(state(&app, &id), "pending");
    let r = post_form(
        &app,
        &format!("/console/grants/{id}/approve"),
        &cookie,
        Some(&same),
        &format!("csrf={csrf}"),
    );
    assert_eq!(
        (r.status, r.header("location")),
        (303, "/console/approvals")
    );
    assert_eq!(state(&app, &id), "active");
}

#[test]
fn script_in_a_justification_is_shown_as_text() {
    let app = app();
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)> restore the share";
    let id = pending(&app, "x1", evil);
    let (cookie, _) = sign_in(&app, "t-bob");
    let page = get(&app, "/console/approvals", &cookie);
    assert!(page.body.contains(&format!("grant-{id}")), "{}", page.body);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn a_rejection_without_a_ten_character_reason_is_refused_by_the_server() {
    let app = app();
    let id = pending(&app, "r1", "restore the deleted finance share");
    let (cookie, csrf) = sign_in(&app, "t-bob");
    let path = format!("/console/grants/{id}/reject");
    let r = post_form(
        &app,
        &path,
        &cookie,
        None,
        &format!("csrf={csrf}&reason=too+short"),
    );
    assert_eq!(r.status, 303);
    let page = get(&app, "/console/approvals", &cookie);
    assert!(
        page.body.contains("at least 10 characters"),
        "{}",
        page.body
    );
    assert_eq!(state(&app, &id), "pending");
    let r = post_form(
        &app,
        &path,
        &cookie,
        None,
        &format!("csrf={csrf}&reason={}", enc("ticket does not need it")),
    );
    assert_eq!(r.status, 303);
    assert_eq!(state(&app, &id), "rejected");
}

#[test]
fn pages_need_a_session_and_the_right_role() {
    let app = app();
    for path in [
        "/console/approvals",
        "/console/requests",
        "/console/audit",
        "/console/admin",
    ] {
        let r = get(&app, path, "jitgate_session=forged");
        assert_eq!(
            (r.status, r.header("location")),
            (303, "/console/sign-in"),
            "{path}"
        );
    }
    let (alice, _) = sign_in(&app, "t-alice");
    for path in ["/console/admin", "/console/audit", "/console/reviews"] {
        let r = get(&app, path, &alice);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    // Each refusal is audited under the session's holder, not "anonymous".
    let refused: Vec<String> = app
        .service()
        .store()
        .audit_page(0, 10_000)
        .expect("audit")
        .into_iter()
        .filter(|r| r.draft.kind == "auth-failure")
        .map(|r| r.draft.actor)
        .collect();
    assert!(refused.len() >= 3, "{refused:?}");
    assert!(refused.iter().all(|a| a == "alice"), "{refused:?}");
    let id = pending(&app, "e1", "restore the deleted finance share");
    let r = get(&app, &format!("/console/grants/{id}"), &alice);
    assert_eq!(r.status, 200, "the holder sees her grant: {}", r.body);
    assert!(
        !r.body.contains("Audit records"),
        "a requester reads no evidence"
    );
    let (carol, _) = sign_in(&app, "t-carol");
    let r = get(&app, &format!("/console/grants/{id}"), &carol);
    assert!(
        r.body.contains("You cannot approve this: carol is in none"),
        "{}",
        r.body
    );
    let mut other = body("e2", "carol", "saas-admin", 1800);
    other["justification"] = json!("restore the deleted finance share");
    let theirs: Value = app.post("/v1/requests", Some("t-pipe"), &other).json();
    let theirs = theirs["id"].as_str().unwrap_or_default().to_string();
    let r = get(&app, &format!("/console/grants/{theirs}"), &alice);
    assert_eq!(r.status, 403, "another requester's grant: {}", r.body);
    // Sign-out ends the session server-side.
    let (bob, csrf) = sign_in(&app, "t-bob");
    let r = post_form(
        &app,
        "/console/sign-out",
        &bob,
        None,
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 303);
    let r = get(&app, "/console/approvals", &bob);
    assert_eq!(r.header("location"), "/console/sign-in");
}

/// The grant ids a page's table links to, in order.
fn grant_links(page: &str) -> Vec<String> {
    page.split("<td><a href=\"/console/grants/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The `rel="next"` link of a page, unescaped.
fn next_link(page: &str) -> Option<String> {
    page.split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
}

/// A store of many grants: the auditor's search shows the newest 100 and
/// "Older" goes on after the last one shown, so paging through shows every
/// grant once (grants created in one millisecond included); a filter the
/// store cannot apply (task) still finds older grants.
#[test]
fn the_audit_search_pages_newest_first_and_older_skips_and_repeats_nothing() {
    let app = app();
    let mut made = std::collections::BTreeSet::new();
    for i in 0..130 {
        made.insert(pending(
            &app,
            &format!("s{i}"),
            "restore the deleted finance share",
        ));
    }
    let (audit, _) = sign_in(&app, "t-audit");
    for first in ["/console/audit", "/console/audit?task=saas-admin"] {
        let page = get(&app, first, &audit);
        assert_eq!(page.status, 200, "{}", page.body);
        let mut seen = grant_links(&page.body);
        assert_eq!(seen.len(), 100, "{first}");
        let older = next_link(&page.body).expect("an Older link");
        assert!(older.contains("from-id="), "{older}");
        let page = get(&app, &older, &audit);
        assert_eq!(page.status, 200, "{}", page.body);
        let rest = grant_links(&page.body);
        assert_eq!(rest.len(), 30, "{older}");
        assert_eq!(next_link(&page.body), None, "nothing older");
        seen.extend(rest);
        let distinct: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(distinct.len(), seen.len(), "{first}: a grant shown twice");
        assert_eq!(distinct, made, "{first}: every grant, once");
    }
    let none = get(&app, "/console/audit?task=break-glass", &audit);
    assert!(none.body.contains("0 grant(s)"), "{}", none.body);
    assert_eq!(next_link(&none.body), None);
}

/// The access review shows its rows a page at a time (the totals and the
/// CSV cover all of them); a bad page or page size is refused naming it.
#[test]
fn the_access_review_pages_its_rows_and_refuses_a_bad_page_naming_it() {
    let app = app();
    let mut made = std::collections::BTreeSet::new();
    for i in 0..3 {
        let r = app.post(
            "/v1/requests",
            Some("t-pipe"),
            &body(&format!("a{i}"), "alice", "file-recovery", 600),
        );
        let g: Value = r.json();
        assert_eq!(g["state"], "active", "{g}");
        made.insert(g["id"].as_str().unwrap_or_default().to_string());
    }
    let (audit, _) = sign_in(&app, "t-audit");
    let page = get(&app, "/console/access-review?per-page=2", &audit);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("3 elevated state(s), page 1 of 2"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("The audit chain verified"),
        "{}",
        page.body
    );
    let mut seen = grant_links(&page.body);
    assert_eq!(seen.len(), 2);
    let next = next_link(&page.body).expect("a Next link");
    let page = get(&app, &next, &audit);
    assert!(page.body.contains("page 2 of 2"), "{}", page.body);
    seen.extend(grant_links(&page.body));
    assert_eq!(
        seen.into_iter().collect::<std::collections::BTreeSet<_>>(),
        made
    );
    assert_eq!(next_link(&page.body), None);
    for (query, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("per-page=501", "per-page"),
        ("per-page=-1", "per-page"),
    ] {
        let r = get(&app, &format!("/console/access-review?{query}"), &audit);
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(field), "{query}: {}", r.body);
    }
}

/// An insider with the database file edits an audit record in place after
/// the console read it. Records are checked once, as they are read, so the
/// pages still say verified (and when the chain was last walked from
/// record 1); "Walk the whole chain now" finds the edit, and from then on
/// the evidence page and the access review both say broken.
#[test]
fn an_audit_record_edited_in_place_after_the_console_read_it_is_found_by_walk_the_whole_chain_now()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let store = jitgate_tests::server::TestStore::new(Backend::Sqlite, dir.path());
    let path = store.url.clone();
    let cfg = jitgate_tests::server::write_config_with(dir.path(), &store.url, "");
    let app = App::from_file(&cfg, (dir, store));
    let g: Value = app
        .post(
            "/v1/requests",
            Some("t-pipe"),
            &body("w1", "alice", "file-recovery", 600),
        )
        .json();
    assert_eq!(g["state"], "active", "{g}");
    let id = g["id"].as_str().unwrap_or_default().to_string();
    let (audit, _) = sign_in(&app, "t-audit");
    let evidence = format!("/console/grants/{id}");
    let page = get(&app, &evidence, &audit);
    assert!(
        page.body.contains("The whole chain verified"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Walked from record 1 at"),
        "{}",
        page.body
    );

    rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(
                "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;
                 UPDATE audit SET actor = 'mallory' WHERE seq = 1;",
            )
        })
        .expect("tamper");
    let page = get(&app, &evidence, &audit);
    assert!(
        page.body.contains("The whole chain verified"),
        "read once, before the edit: {}",
        page.body
    );
    let page = get(&app, &format!("{evidence}?verify=chain"), &audit);
    assert!(page.body.contains("The chain is broken"), "{}", page.body);
    assert!(
        page.body.contains("record 1: content does not match"),
        "{}",
        page.body
    );
    let review = get(&app, "/console/access-review", &audit);
    assert!(
        review.body.contains("The audit chain is broken"),
        "{}",
        review.body
    );
    // The review's own "walk now" link works as well.
    let review = get(&app, "/console/access-review?verify=chain", &audit);
    assert_eq!(review.status, 200, "{}", review.body);
    assert!(
        review.body.contains("The audit chain is broken"),
        "{}",
        review.body
    );
}

/// Worst values in the paging fields a browser sends: a page past the end
/// (the largest number there is, and one past it), a cursor id with NUL
/// and escape codes, with markup, and of 10,000 characters. Each gets a
/// page (empty, or the grants before the cursor) or a 400 naming the
/// field; nothing is echoed raw.
#[test]
fn hostile_paging_values_give_a_page_and_echo_nothing_raw() {
    let app = app();
    pending(&app, "h1", "restore the deleted finance share");
    let (audit, _) = sign_in(&app, "t-audit");
    let r = get(
        &app,
        &format!("/console/access-review?page={}", usize::MAX),
        &audit,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(grant_links(&r.body).is_empty(), "{}", r.body);
    let r = get(
        &app,
        "/console/access-review?page=99999999999999999999999",
        &audit,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("page"), "{}", r.body);
    // NUL and escape codes are refused before any page, naming the query.
    let r = get(
        &app,
        "/console/audit?until=2099-01-01T00:00:00Z&from-id=%00%1B%5B31m",
        &audit,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("control character") && r.body.contains("query"),
        "{}",
        r.body
    );
    let long = "x".repeat(10_000);
    for id in ["%22%3E%3Cscript%3Ealert(1)%3C/script%3E", long.as_str()] {
        let r = get(
            &app,
            &format!("/console/audit?until=2099-01-01T00:00:00Z&from-id={id}"),
            &audit,
        );
        assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(500)]);
        assert!(!r.body.contains("<script>"), "markup echoed");
        assert_eq!(grant_links(&r.body).len(), 1, "the grant before the cursor");
    }
}
