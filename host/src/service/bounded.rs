//! Bounded evidence of what a client sent: an invalid body is audited by
//! its sha256 and size plus a short escaped excerpt, not stored whole, so a
//! client cannot put 64 KiB into the append-only log per request (and the
//! record holds only strings and integers, whatever numbers the body had).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `{"sha256", "bytes", "excerpt"}` for `body`: the digest and size of its
/// serialisation (the digest is the one a grant's `body-hash` would have),
/// and its first `excerpt` bytes (cut at a character boundary) with
/// everything outside printable ASCII escaped, `\u{..}` style.
pub fn body_evidence(body: &Value, excerpt: usize) -> Value {
    let text = serde_json::to_string(body).unwrap_or_default();
    let mut end = excerpt.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = String::with_capacity(end + 16);
    for c in text[..end].chars() {
        if c == ' ' || c.is_ascii_graphic() {
            shown.push(c);
        } else {
            shown.extend(c.escape_default());
        }
    }
    json!({
        "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        "bytes": text.len(),
        "excerpt": shown,
        "truncated": end < text.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_invalid_body_is_kept_as_digest_size_and_escaped_excerpt() {
        let body =
            json!({"id": "x", "junk": 0.953_097_925_525_095_3, "pad": "é\u{1b}]0;".repeat(20_000)});
        let e = body_evidence(&body, 256);
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(e["bytes"], text.len());
        assert_eq!(e["sha256"], hex::encode(Sha256::digest(text.as_bytes())));
        assert_eq!(e["truncated"], true);
        let shown = e["excerpt"].as_str().unwrap();
        assert!(shown.len() < 256 * 10, "bounded: {}", shown.len());
        assert!(shown.is_ascii() && !shown.contains('\u{1b}'), "{shown}");
        assert!(
            // JSON already escapes control characters; the rest is escaped here.
            shown.contains("\\u001b") && shown.contains("\\u{e9}"),
            "{shown}"
        );
        // The body's numbers are kept only as text.
        let numbers: Vec<_> = e
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_number())
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(numbers, vec!["bytes"]);
    }

    #[test]
    fn a_short_body_is_shown_whole() {
        let e = body_evidence(&json!({"a": 1}), 256);
        assert_eq!(e["excerpt"], "{\"a\":1}");
        assert_eq!(e["truncated"], false);
        assert_eq!(body_evidence(&json!({"a": 1}), 0)["excerpt"], "");
    }
}
