//! The canonical JSON form: what the audit chain stores and hashes, and
//! what a request's `body-hash` is taken over.
//!
//! Written out here rather than left to `serde_json::to_vec`, because that
//! depends on how the build configured serde_json: with its
//! `preserve_order` feature (which any crate in an embedder's tree can turn
//! on, by feature unification) maps keep insertion order instead of sorting.
//! The form is serde_json's default output, byte for byte, so hashes stored
//! before this module existed stay valid:
//! * object keys sorted by their UTF-8 bytes, at every depth;
//! * no whitespace;
//! * strings: `"` and `\` escaped, `\b \t \n \f \r` as such, other
//!   characters below U+0020 as `\u00xx` (lower-case hex), everything else
//!   as UTF-8;
//! * integers in decimal; other numbers as the shortest decimal that reads
//!   back as the same `f64` (`1.0`, `1e300`).

use serde_json::{Map, Number, Value};

pub mod typed;
pub use typed::to_string_of;

/// `v` in canonical form.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, v);
    out
}

/// `v` in canonical form, as a string.
pub fn to_string(v: &Value) -> String {
    // Only valid UTF-8 is ever written (strings are copied whole, the rest
    // is ASCII).
    String::from_utf8(to_vec(v)).unwrap_or_default()
}

/// Append `v` in canonical form.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map.iter()),
    }
}

/// Append an object whose entries come in any order: they are written
/// sorted by key. Separate from [`write_value`] so a test can hand it
/// entries in the order a `preserve_order` map would.
pub fn write_object<'a, I>(out: &mut Vec<u8>, entries: I)
where
    I: Iterator<Item = (&'a String, &'a Value)> + Clone,
{
    // `str`'s order is byte order, which is what serde_json's default
    // (BTreeMap) map iterates in: there the entries come sorted and are
    // written as they come, without collecting them.
    if entries.clone().map(|(k, _)| k).is_sorted() {
        write_entries(out, entries);
    } else {
        let mut sorted: Vec<_> = entries.collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_entries(out, sorted.into_iter());
    }
}

fn write_entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Append a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// For each byte: 0 (written as is), the letter after the backslash, or `u` (`\u00xx`).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn write_number(out: &mut Vec<u8>, n: &Number) {
    // Through the value, not `Number`'s Display: with serde_json's
    // `arbitrary_precision` feature that would echo the text a client sent.
    use std::io::Write;
    // Writing into a Vec cannot fail.
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        match n.as_f64() {
            // serde_json writes a finite f64 as its shortest round-trip
            // decimal (ryu); a Value never holds a non-finite one.
            Some(f) if f.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, &f);
            }
            _ => out.extend_from_slice(b"null"),
        }
    }
}

/// A `Map` in canonical form (for callers holding one).
pub fn map_to_vec(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_object(&mut out, map.iter());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What serde_json writes in a default build. Comparing against it only
    /// makes sense when its maps sort, which the `preserve_order` test
    /// below checks separately.
    fn serde_default(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap_or_default()
    }

    fn sorted_build() -> bool {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap_or_default();
        v.as_object()
            .and_then(|m| m.keys().next())
            .is_some_and(|k| k == "a")
    }

    #[test]
    fn equals_serde_json_default_output_on_every_kind_of_value() {
        if !sorted_build() {
            return;
        }
        let odd = "quote \" backslash \\ nl \n tab \t nul \u{0} bs \u{8} ff \u{c} us \u{1f} del \u{7f} é ✓ 😀 \u{2028} /";
        let values = [
            json!(null),
            json!(true),
            json!([false, 0, -1, i64::MIN, i64::MAX, u64::MAX]),
            json!([
                0.5,
                1.0,
                -0.0,
                1e300,
                1e-300,
                0.1,
                0.953_097_925_525_095_3,
                123456789012345680000.0
            ]),
            json!({"z": [1, {"y": odd, "b": null}], "a": {"d": 1, "c": [2.5, odd]}, odd: odd, "": 0, "é": 1, "e": 2, "Z": 3}),
        ];
        for v in &values {
            assert_eq!(
                String::from_utf8_lossy(&to_vec(v)),
                String::from_utf8_lossy(&serde_default(v))
            );
        }
        // Every character, as a string and as a key.
        let all: String = (0..=0x10ffff_u32).filter_map(char::from_u32).collect();
        let v = json!({ all.clone(): all });
        assert_eq!(to_vec(&v), serde_default(&v));
    }

    /// The regression for an embedder whose serde_json keeps insertion
    /// order: the object writer gets the entries in reverse (what such a
    /// map yields for keys inserted z…a) and must still write them sorted.
    #[test]
    fn preserve_order_map_iteration_still_writes_sorted_keys() {
        let v = json!({"b": 1, "a": {"d": 1, "c": 2}, "c": [{"y": 1, "x": 2}]});
        let map = v.as_object().cloned().unwrap_or_default();
        let mut forward = Vec::new();
        write_object(&mut forward, map.iter());
        let mut backward = Vec::new();
        write_object(&mut backward, map.iter().rev());
        let want = br#"{"a":{"c":2,"d":1},"b":1,"c":[{"x":2,"y":1}]}"#;
        assert_eq!(
            String::from_utf8_lossy(&forward),
            String::from_utf8_lossy(want)
        );
        assert_eq!(
            String::from_utf8_lossy(&backward),
            String::from_utf8_lossy(want)
        );
        assert_eq!(map_to_vec(&map), want.to_vec());
    }

    /// Also run by `./dev test` as `JITGATE_EXPECT_PRESERVE_ORDER=1 cargo
    /// test -p jitgate --features serde_json/preserve_order --lib canonical`:
    /// there serde_json itself no longer sorts, and the canonical form must
    /// not change.
    #[test]
    fn canonical_form_does_not_depend_on_serde_json_map_order() {
        let v: Value =
            serde_json::from_str(r#"{"zeta":{"y":1,"x":[{"b":2,"a":1}]},"alpha":0.5,"mid":"é"}"#)
                .unwrap_or_default();
        let want = r#"{"alpha":0.5,"mid":"é","zeta":{"x":[{"a":1,"b":2}],"y":1}}"#;
        assert_eq!(to_string(&v), want);
        if std::env::var_os("JITGATE_EXPECT_PRESERVE_ORDER").is_some() {
            // The build really is the one the test is about.
            assert!(
                !sorted_build(),
                "serde_json still sorts: preserve_order is off"
            );
            assert_ne!(serde_json::to_string(&v).unwrap_or_default(), want);
        }
    }
}
