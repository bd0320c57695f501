//! The OpenAPI 3.1 description of `/v1` (issue 16 item 4): generated from
//! the code, committed as docs/openapi.json, served at
//! `GET /v1/openapi.json` without a token, and true to what the API
//! answers.

use jitgate_tests::app::App;
use jitgate_tests::server::{Backend, body};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const REGENERATE: &str = "cargo run -p jitgate -- openapi > docs/openapi.json";

#[test]
fn committed_document_matches_the_code() {
    let generated = jitgate::api::openapi::json();
    let path = jitgate_tests::root().join("docs/openapi.json");
    if std::env::var_os("JITGATE_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/openapi.json is not what the code generates (first difference at line {}: \
             committed {:?}, generated {:?}); regenerate it with `{REGENERATE}` \
             (or run this test with JITGATE_WRITE_OPENAPI=1)",
            first + 1,
            committed.lines().nth(first),
            generated.lines().nth(first),
        );
    }
}

/// The property names of schema `name`, and those it requires.
fn schema_keys(doc: &Value, name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let s = &doc["components"]["schemas"][name];
    let props = s["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let required = s["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (props, required)
}

/// `answer` has only properties `name` describes, and every one it requires.
fn fits(doc: &Value, name: &str, answer: &Value) {
    let (props, required) = schema_keys(doc, name);
    assert!(!props.is_empty(), "no schema {name} in the document");
    let keys: BTreeSet<String> = answer
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let undocumented: Vec<_> = keys.difference(&props).collect();
    assert!(
        undocumented.is_empty(),
        "{name}: {undocumented:?} not in the schema; answer {answer}"
    );
    let missing: Vec<_> = required.difference(&keys).collect();
    assert!(
        missing.is_empty(),
        "{name}: required {missing:?} missing from {answer}"
    );
}

#[test]
fn served_without_a_token_and_true_to_the_answers() {
    let app = App::new(Backend::Sqlite, "");
    let r = app.get("/v1/openapi.json", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, jitgate::api::openapi::json(), "served = generated");
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");

    // Every operation: its roles, its error shape, and a route behind it.
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() >= 18, "{} paths", paths.len());
    for (path, item) in &paths {
        assert!(path.starts_with("/v1/"), "{path}");
        for (method, op) in item.as_object().into_iter().flatten() {
            let what = format!("{method} {path}");
            let roles = op["x-jitgate-roles"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(!roles.is_empty(), "{what}: no x-jitgate-roles");
            assert!(
                op["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("Roles: ")),
                "{what}: roles not in the description"
            );
            let responses = op["responses"].as_object().cloned().unwrap_or_default();
            let errors: Vec<_> = responses.keys().filter(|c| c.starts_with('4')).collect();
            if path != "/v1/openapi.json" {
                assert!(!errors.is_empty(), "{what}: no error answers");
                for code in errors {
                    assert_eq!(
                        responses[code]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {code}"
                    );
                }
            }
            let open = op["security"] == json!([{}]);
            assert_eq!(
                responses.contains_key("401"),
                !open || path.contains("ticket-sources"),
                "{what}: 401 documented iff a token (or a signature) is needed"
            );
            // Routed: the fallback's "no such endpoint" never answers it.
            let concrete = path.replace("{id}", "x").replace("{name}", "x");
            let r = app.send(&method.to_uppercase(), &concrete, Some("t-audit"), None);
            assert!(!r.body.contains("no such endpoint"), "{what} is not routed");
        }
    }

    // The error shape as it is sent.
    let refused = app.get("/v1/grants", None);
    assert_eq!(refused.status, 401);
    fits(&doc, "ErrorBody", &refused.json());
    fits(&doc, "ErrorDetail", &refused.json()["error"]);
    let bad = app.get("/v1/grants?colour=red", Some("t-admin"));
    assert_eq!(bad.status, 400);
    fits(&doc, "ErrorDetail", &bad.json()["error"]);

    // The main bodies as they are answered.
    let d = app.post(
        "/v1/decisions",
        Some("t-pipe"),
        &body("o1", "alice", "file-recovery", 600),
    );
    assert_eq!(d.status, 200, "{}", d.body);
    fits(&doc, "Decision", &d.json());
    let g = app.post(
        "/v1/requests",
        Some("t-pipe"),
        &body("o2", "alice", "file-recovery", 600),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    let g = g.json();
    fits(&doc, "Grant", &g);
    fits(&doc, "Request", &g["request"]);
    fits(&doc, "Subject", &g["request"]["subject"]);
    let id = g["id"].as_str().unwrap_or_default();
    let page = app.get("/v1/grants", Some("t-admin")).json();
    fits(&doc, "GrantPage", &page);
    let e = app
        .get(&format!("/v1/grants/{id}/evidence"), Some("t-audit"))
        .json();
    fits(&doc, "Evidence", &e);
    fits(&doc, "AuditRecordAnswer", &e["audit"][0]);
    fits(
        &doc,
        "AuditPage",
        &app.get("/v1/audit", Some("t-audit")).json(),
    );
    fits(
        &doc,
        "VerifyReport",
        &app.get("/v1/audit/verify", Some("t-audit")).json(),
    );
    let p = app.get("/v1/policies", Some("t-audit")).json();
    fits(&doc, "PolicyStatus", &p);
    fits(&doc, "SetInfo", &p["set"]);
    fits(&doc, "PolicyMeta", &p["policies"][0]);
    fits(
        &doc,
        "Reviews",
        &app.get("/v1/reviews", Some("t-audit")).json(),
    );
}
