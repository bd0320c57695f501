//! Request bodies for the property suite (`tests/e2e/props.rs`), written as
//! raw JSON text, not through serde: duplicate keys, number literals that do
//! not survive a round trip through `f64`, lone surrogates, unbalanced
//! nesting and byte-level damage all have to reach the server as sent.
//!
//! Every union lists its plain, valid choice first: proptest shrinks towards
//! earlier choices, so a failing body shrinks to the valid template with
//! only the culprit field left strange.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use std::fmt::Write as _;

/// A JSON value as text to be written.
#[derive(Clone, Debug)]
pub enum J {
    /// Written as is: numbers, `true`/`false`/`null`, deliberately broken text.
    Raw(String),
    /// A string, escaped; `ascii` writes everything outside ASCII as `\u`
    /// escapes (surrogate pairs above the BMP).
    Str(String, bool),
    /// Integer Unix seconds, this many seconds from the moment it is sent.
    Secs(i64),
    /// The same as RFC 3339 text.
    Rfc3339(i64),
    /// `depth` nested arrays (or objects `{"k":…}`), closed or not.
    Deep(usize, bool, bool),
    /// An array.
    Arr(Vec<J>),
    /// An object; keys may repeat.
    Obj(Vec<(String, J)>),
}

fn s(v: &str) -> J {
    J::Str(v.to_string(), false)
}

fn escape(out: &mut String, v: &str, ascii: bool) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl J {
    /// Write as JSON text, with times relative to `now` (Unix seconds).
    pub fn render(&self, now: u64, out: &mut String) {
        match self {
            J::Raw(t) => out.push_str(t),
            J::Str(v, ascii) => escape(out, v, *ascii),
            J::Secs(off) => {
                let _ = write!(out, "{}", now as i64 + off);
            }
            J::Rfc3339(off) => {
                let t = u64::try_from(now as i64 + off).unwrap_or(0);
                escape(out, &jitgate::request::format_rfc3339(t), false);
            }
            J::Deep(depth, obj, closed) => {
                let (open, close) = if *obj { ("{\"k\":", "}") } else { ("[", "]") };
                out.push_str(&open.repeat(*depth));
                out.push('1');
                if *closed {
                    out.push_str(&close.repeat(*depth));
                }
            }
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(now, out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape(out, k, false);
                    out.push(':');
                    v.render(now, out);
                }
                out.push('}');
            }
        }
    }
}

/// Numbers at and past every bound a field could have, and decimals that
/// `f64` does not round-trip.
const NUMBERS: &[&str] = &[
    "1",
    "0",
    "-0",
    "-1",
    "0.0",
    "-0.0",
    "1.0",
    "1e0",
    "1E2",
    "5",
    "6",
    "255",
    "256",
    "3600",
    "28800",
    "28801",
    "4294967295",
    "4294967296",
    "253402300799",
    "253402300800",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e309",
    "1E400",
    "-1e400",
    "1e-400",
    "4.9e-324",
    "2.2250738585072014e-308",
    "0.95309792552509531",
    "0.30000000000000004",
    "0.1",
    "1.5",
];

/// A number literal.
pub fn number() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(NUMBERS).prop_map(String::from),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        // 17+ significant digits: many of these parse to an f64 whose
        // shortest form is a different literal.
        2 => (any::<u64>(), -330i32..330, any::<bool>()).prop_map(|(m, e, neg)| {
            let m = m % 100_000_000_000_000_000;
            let sign = if neg { "-" } else { "" };
            if e == 0 { format!("{sign}0.{m:017}") } else { format!("{sign}{}.{:016}e{e}", m / 10_000_000_000_000_000, m % 10_000_000_000_000_000) }
        }),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
    ]
    .boxed()
}

/// Characters that have broken parsers, stores, terminals and log lines.
const CHARS: &[char] = &[
    'a',
    '\0',
    '\u{1}',
    '\t',
    '\n',
    '\r',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{301}',
    '\u{200b}',
    '\u{2028}',
    '\u{202e}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10ffff}',
    'é',
    'ß',
    'İ',
    '😀',
    '"',
    '\\',
    '/',
    '%',
    '\'',
    '<',
    ' ',
    '$',
    '{',
    ':',
    '_',
    '-',
    '.',
];

/// Lengths at the 1 KiB string and 4 KiB justification bounds, and past
/// them.
const LENGTHS: &[usize] = &[1, 1023, 1024, 1025, 4095, 4096, 4097];

/// A strange string: any characters, interesting ones likely.
pub fn weird_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::collection::vec(prop_oneof![3 => select(CHARS), 1 => any::<char>()], 0..24)
            .prop_map(|cs| cs.into_iter().collect::<String>()),
        1 => select(&["", " ", "   ", "\t\n", "alice\0", "\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}", "\u{1b}[2J\u{1b}[31mFAKE", "a\nreq-2 granted", "NaN", "null", "../../etc/passwd", "'; DROP TABLE grants;--"][..])
            .prop_map(String::from),
        1 => (select(&["x", "é", "😀", "\0", " "][..]), select(LENGTHS)).prop_map(|(c, n)| c.repeat(n)),
    ]
    .boxed()
}

/// Strings that `\u`-escape into something no JSON parser may accept, or
/// that are not strings at all.
const BROKEN_STRINGS: &[&str] = &[
    "\"\\ud800\"",
    "\"\\udfff\"",
    "\"\\ud83d\\u0041\"",
    "\"\\x41\"",
    "\"a\nb\"",
    "\"\\u00\"",
    "\"unterminated",
    "'single'",
];

/// A value for a string field: one of `valid` first, then strange ones.
pub fn text(valid: &'static [&'static str]) -> BoxedStrategy<J> {
    prop_oneof![
        10 => select(valid).prop_map(s),
        3 => (weird_string(), any::<bool>()).prop_map(|(v, ascii)| J::Str(v, ascii)),
        1 => select(BROKEN_STRINGS).prop_map(|t| J::Raw(t.to_string())),
        1 => any_json(),
    ]
    .boxed()
}

/// A value for a timestamp field: recent integer seconds first, then RFC
/// 3339 text, extreme numbers, odd texts and wrong types.
pub fn timestamp() -> BoxedStrategy<J> {
    prop_oneof![
        8 => (-86_400 * 30..0i64).prop_map(J::Secs),
        2 => (-86_400 * 30..86_400i64).prop_map(J::Rfc3339),
        1 => (-86_400 * 365 * 100..86_400 * 365 * 100i64).prop_map(J::Secs),
        3 => number().prop_map(J::Raw),
        2 => select(&[
            "9999-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2026-11-25T10:00:00.123456789+14:00",
            "2026-11-25T10:00:00-23:59",
            "2026-12-31T23:59:60Z",
            "2026-11-25t10:00:00z",
            "2026-11-25T10:00:00",
            "2026-02-30T10:00:00Z",
            "+2026-11-25T10:00:00Z",
            "",
            "now",
        ][..]).prop_map(s),
        // The edges of the accepted range, and past them: where a time that
        // is accepted but cannot be written as RFC 3339 would hide.
        2 => select(&["253402300799", "253402300800", "18446744073709551615", "0"][..])
            .prop_map(|n| J::Raw(n.to_string())),
        1 => any_json(),
    ]
    .boxed()
}

fn list(valid: &'static [&'static str]) -> BoxedStrategy<J> {
    prop_oneof![
        6 => prop::collection::vec(select(valid).prop_map(s), 0..4).prop_map(J::Arr),
        2 => prop::collection::vec(text(valid), 0..6).prop_map(J::Arr),
        1 => (text(valid), select(&[63usize, 64, 65, 1000][..]))
            .prop_map(|(v, n)| J::Arr(vec![v; n])),
        1 => any_json(),
    ]
    .boxed()
}

/// Any JSON value, nested a little, with strange leaves; and now and then
/// nesting at and past the parser's depth limit.
pub fn any_json() -> BoxedStrategy<J> {
    let leaf = prop_oneof![
        3 => number().prop_map(J::Raw),
        1 => select(&["null", "true", "false"][..]).prop_map(|t| J::Raw(t.to_string())),
        2 => (weird_string(), any::<bool>()).prop_map(|(v, ascii)| J::Str(v, ascii)),
        1 => (
            select(&[1usize, 2, 8, 100, 120, 124, 125, 126, 127, 128, 129, 200, 10_000][..]),
            any::<bool>(),
            prop::bool::weighted(0.9)
        ).prop_map(|(d, o, c)| J::Deep(d, o, c)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            prop::collection::vec((weird_string(), inner), 0..5).prop_map(J::Obj),
        ]
    })
    .boxed()
}

fn field(name: &str, value: BoxedStrategy<J>) -> BoxedStrategy<Option<(String, J)>> {
    let name = name.to_string();
    // Mostly present: a missing required field is only one of the mistakes.
    prop::option::weighted(0.93, value)
        .prop_map(move |v| v.map(|v| (name.clone(), v)))
        .boxed()
}

/// Keys added beside the known ones: unknown, near-miss and repeated ones.
const EXTRA_KEYS: &[&str] = &[
    "junk", "now", "id", "task", "ticket", "subject", "Id", "id ", "mfa-at", "ttl",
];

fn extras() -> BoxedStrategy<Vec<(String, J)>> {
    prop_oneof![
        6 => Just(Vec::new()),
        3 => prop::collection::vec((select(EXTRA_KEYS).prop_map(String::from), any_json()), 1..3),
        1 => prop::collection::vec((weird_string(), any_json()), 1..3),
    ]
    .boxed()
}

/// `subject`: an object of its fields, or something else.
pub fn subject() -> BoxedStrategy<J> {
    let fields = (
        field(
            "id",
            text(&["alice", "carol", "bob", "pipeline", "Alice", "alice "]),
        ),
        field("kind", text(&["human", "service", "Human", "robot"])),
        field("roles", list(&["helpdesk", "sre", "it-admin", "admin"])),
        field(
            "groups",
            list(&["oncall", "helpdesk-tier2", "break-glass", "saas-owners"]),
        ),
        field("mfa-at", timestamp()),
        extras(),
    )
        .prop_map(|(a, b, c, d, e, x)| {
            J::Obj([a, b, c, d, e].into_iter().flatten().chain(x).collect())
        });
    prop_oneof![12 => fields, 1 => any_json()].boxed()
}

/// `ticket`: an object of its fields, `null`, or something else.
pub fn ticket() -> BoxedStrategy<J> {
    let fields = (
        field("id", text(&["INC-1", "INC-2", "T-9"])),
        field("state", text(&["open", "in-progress", "on-hold", "resolved", "closed", "Open", "gone"])),
        field(
            "priority",
            prop_oneof![6 => (1u8..=5).prop_map(|p| J::Raw(p.to_string())), 2 => number().prop_map(J::Raw), 1 => any_json()].boxed(),
        ),
        field("assignee", prop_oneof![6 => text(&["alice", "carol", "bob"]), 1 => Just(J::Raw("null".into()))].boxed()),
        field("opened-at", timestamp()),
        extras(),
    )
        .prop_map(|(a, b, c, d, e, x)| {
            J::Obj([a, b, c, d, e].into_iter().flatten().chain(x).collect())
        });
    prop_oneof![12 => fields, 1 => Just(J::Raw("null".into())), 1 => any_json()].boxed()
}

/// `attributes`: a map of strings (keys may repeat), or something else.
pub fn attributes() -> BoxedStrategy<J> {
    let entry = (
        text(&["tz-offset-minutes", "site", "change", "reason"]),
        prop_oneof![4 => text(&["60", "0", "-720", "ams"]), 1 => any_json()],
    )
        .prop_map(|(k, v)| match k {
            J::Str(k, _) => (k, v),
            // A non-string key is not JSON at all; keep a string one.
            _ => ("k".to_string(), v),
        });
    prop_oneof![
        6 => prop::collection::vec(entry.clone(), 0..4).prop_map(J::Obj),
        1 => (entry, select(&[64usize, 65, 500][..])).prop_map(|((k, v), n)| {
            J::Obj((0..n).map(|i| (if n == 500 { k.clone() } else { format!("{k}{i}") }, v.clone())).collect())
        }),
        1 => any_json(),
    ]
    .boxed()
}

/// A request id: mostly fresh ones (so that valid bodies are stored, not
/// refused as reuses), sometimes one of a few that collide.
fn request_id() -> BoxedStrategy<J> {
    prop_oneof![
        8 => (0u32..1_000_000).prop_map(|n| J::Str(format!("p-{n}"), false)),
        2 => select(&["p-1", "p-2", "p-3"][..]).prop_map(s),
    ]
    .boxed()
}

fn recent(max_ago: i64) -> BoxedStrategy<J> {
    (-max_ago..0i64).prop_map(J::Secs).boxed()
}

fn opt(v: BoxedStrategy<J>) -> BoxedStrategy<Option<J>> {
    v.prop_map(Some).boxed()
}

/// Strange, or missing now and then.
fn strange(v: BoxedStrategy<J>) -> BoxedStrategy<Option<J>> {
    prop::option::weighted(0.9, v).boxed()
}

/// One field of a request: under which object, its name, its plain valid
/// values, its strange ones, and how often it is the strange one.
struct Slot {
    parent: Option<&'static str>,
    name: &'static str,
    valid: fn() -> BoxedStrategy<Option<J>>,
    strange: fn() -> BoxedStrategy<Option<J>>,
    weight: u32,
}

const TASKS: &[&str] = &[
    "file-recovery",
    "saas-admin",
    "incident-triage",
    "break-glass",
    "business-hours",
    "nope",
];

/// Every field of the request body (`host/src/request/mod.rs`), in the
/// order written. A valid body of these is an allowed file-recovery
/// request by alice (or, for another task, a decided one).
const SLOTS: &[Slot] = &[
    Slot {
        parent: None,
        name: "id",
        valid: || opt(request_id()),
        strange: || strange(text(&["p-1"])),
        weight: 4,
    },
    Slot {
        parent: Some("subject"),
        name: "id",
        valid: || opt(Just(s("alice")).boxed()),
        strange: || {
            strange(text(&[
                "alice", "carol", "bob", "pipeline", "Alice", "alice ",
            ]))
        },
        weight: 2,
    },
    Slot {
        parent: Some("subject"),
        name: "kind",
        valid: || opt(select(&["human", "service"][..]).prop_map(s).boxed()),
        strange: || strange(text(&["human", "Human", "robot"])),
        weight: 1,
    },
    Slot {
        parent: Some("subject"),
        name: "roles",
        valid: || opt(Just(J::Arr(vec![s("helpdesk")])).boxed()),
        strange: || strange(list(&["helpdesk", "sre", "it-admin", "admin"])),
        weight: 2,
    },
    Slot {
        parent: Some("subject"),
        name: "groups",
        valid: || opt(Just(J::Arr(vec![s("helpdesk-tier2")])).boxed()),
        strange: || {
            strange(list(&[
                "oncall",
                "helpdesk-tier2",
                "break-glass",
                "saas-owners",
            ]))
        },
        weight: 2,
    },
    Slot {
        parent: Some("subject"),
        name: "mfa-at",
        valid: || opt(recent(600)),
        strange: || strange(timestamp()),
        weight: 4,
    },
    Slot {
        parent: None,
        name: "task",
        valid: || opt(Just(s("file-recovery")).boxed()),
        strange: || strange(text(TASKS)),
        weight: 2,
    },
    Slot {
        parent: None,
        name: "resource",
        valid: || opt(Just(s("fileserver-01")).boxed()),
        strange: || strange(text(&["okta", "prod-db"])),
        weight: 1,
    },
    Slot {
        parent: None,
        name: "entitlement",
        valid: || opt(Just(s("operator")).boxed()),
        strange: || strange(text(&["okta:admin", "backup-operator"])),
        weight: 1,
    },
    Slot {
        parent: None,
        name: "justification",
        valid: || opt(Just(s("restore the deleted finance share")).boxed()),
        strange: || strange(text(&["incident 42 needs a look", "short", ""])),
        weight: 2,
    },
    Slot {
        parent: None,
        name: "requested-ttl",
        valid: || opt((1u32..3600).prop_map(|t| J::Raw(t.to_string())).boxed()),
        strange: || strange(prop_oneof![number().prop_map(J::Raw), any_json()].boxed()),
        weight: 3,
    },
    Slot {
        parent: Some("ticket"),
        name: "id",
        valid: || {
            opt((0u32..1000)
                .prop_map(|n| J::Str(format!("INC-{n}"), false))
                .boxed())
        },
        strange: || strange(text(&["INC-1", "T-9"])),
        weight: 2,
    },
    Slot {
        parent: Some("ticket"),
        name: "state",
        valid: || opt(select(&["open", "in-progress"][..]).prop_map(s).boxed()),
        strange: || strange(text(&["on-hold", "resolved", "closed", "Open", "gone"])),
        weight: 1,
    },
    Slot {
        parent: Some("ticket"),
        name: "priority",
        valid: || opt((1u8..=5).prop_map(|p| J::Raw(p.to_string())).boxed()),
        strange: || strange(prop_oneof![number().prop_map(J::Raw), any_json()].boxed()),
        weight: 2,
    },
    Slot {
        parent: Some("ticket"),
        name: "assignee",
        valid: || opt(Just(s("alice")).boxed()),
        strange: || {
            strange(prop_oneof![text(&["carol", "bob"]), Just(J::Raw("null".into()))].boxed())
        },
        weight: 1,
    },
    Slot {
        parent: Some("ticket"),
        name: "opened-at",
        valid: || opt(recent(86_400)),
        strange: || strange(timestamp()),
        weight: 4,
    },
    Slot {
        parent: None,
        name: "attributes",
        valid: || opt(Just(J::Obj(vec![("tz-offset-minutes".into(), s("60"))])).boxed()),
        strange: || strange(attributes()),
        weight: 3,
    },
];

/// Write the slots' values (`None`: left out) as one body, then `extra`
/// entries (unknown or repeated keys).
fn assemble(values: Vec<Option<J>>, extra: Vec<(String, J)>) -> J {
    let mut top: Vec<(String, J)> = Vec::new();
    for (slot, v) in SLOTS.iter().zip(values) {
        let Some(v) = v else { continue };
        match slot.parent {
            None => top.push((slot.name.to_string(), v)),
            Some(parent) => {
                if !top.iter().any(|(k, _)| k == parent) {
                    top.push((parent.to_string(), J::Obj(Vec::new())));
                }
                if let Some((_, J::Obj(entries))) = top.iter_mut().find(|(k, _)| k == parent) {
                    entries.push((slot.name.to_string(), v));
                }
            }
        }
    }
    top.extend(extra);
    J::Obj(top)
}

/// The valid body with one field strange (or missing), or none.
fn one_strange() -> BoxedStrategy<J> {
    let body = |strange_at: Option<usize>, extra: BoxedStrategy<Vec<(String, J)>>| {
        let parts: Vec<BoxedStrategy<Option<J>>> = SLOTS
            .iter()
            .enumerate()
            .map(|(j, slot)| {
                if Some(j) == strange_at {
                    (slot.strange)()
                } else {
                    (slot.valid)()
                }
            })
            .collect();
        (parts, extra).prop_map(|(v, x)| assemble(v, x)).boxed()
    };
    let none = || Just(Vec::new()).boxed();
    let mut alternatives = vec![(12u32, body(None, none())), (3, body(None, extras()))];
    for (i, slot) in SLOTS.iter().enumerate() {
        alternatives.push((slot.weight, body(Some(i), none())));
    }
    prop::strategy::Union::new_weighted(alternatives).boxed()
}

/// Every field strange at once, whole objects replaced.
fn all_strange() -> BoxedStrategy<J> {
    (
        (
            field("id", text(&["p-1", "p-2", "p-3"])),
            field("subject", subject()),
            field("task", text(TASKS)),
            field("resource", text(&["fileserver-01", "okta", "prod-db"])),
            field("entitlement", text(&["operator", "okta:admin", "backup-operator"])),
        ),
        (
            field("justification", text(&["restore the deleted finance share", "short"])),
            field(
                "requested-ttl",
                prop_oneof![6 => (1u32..4000).prop_map(|t| J::Raw(t.to_string())), 3 => number().prop_map(J::Raw), 1 => any_json()].boxed(),
            ),
            field("ticket", ticket()),
            field("attributes", attributes()),
            extras(),
        ),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i, x))| {
            J::Obj([a, b, c, d, e, f, g, h, i].into_iter().flatten().chain(x).collect())
        })
        .boxed()
}

/// A request body as a JSON tree: mostly the valid body with one field
/// strange (so that the strangeness reaches the store), else every field
/// strange, or no request at all.
pub fn request_body() -> BoxedStrategy<J> {
    prop_oneof![
        12 => one_strange(),
        6 => all_strange(),
        1 => any_json(),
        1 => select(&["", "   ", "{", "{}", "[]", "null", "\"x\"", "{\"id\":}", "\u{feff}{}"][..]).prop_map(|t| J::Raw(t.to_string())),
    ]
    .boxed()
}

/// Byte-level damage to the written text.
#[derive(Clone, Debug)]
pub enum Damage {
    /// Cut the text here.
    Truncate(Index),
    /// Insert these bytes here (not necessarily UTF-8).
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes here.
    Delete(Index, usize),
    /// Repeat up to this many bytes from here.
    Repeat(Index, usize),
}

/// Bytes spliced into a body: JSON syntax, NUL, and invalid UTF-8.
const SPLICES: &[&[u8]] = &[
    b",",
    b"\"",
    b"}",
    b"]",
    b"\\",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"1e999",
    b"\"id\":\"x\",",
];

fn damage() -> BoxedStrategy<Vec<Damage>> {
    let one = prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        (
            any::<Index>(),
            prop_oneof![
                select(SPLICES).prop_map(<[u8]>::to_vec),
                prop::collection::vec(any::<u8>(), 1..4),
            ]
        )
            .prop_map(|(i, b)| Damage::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Damage::Delete(i, n)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Damage::Repeat(i, n)),
    ];
    prop_oneof![12 => Just(Vec::new()), 1 => prop::collection::vec(one, 1..3)].boxed()
}

fn apply(mut bytes: Vec<u8>, damage: &[Damage]) -> Vec<u8> {
    for d in damage {
        let at = |i: &Index| i.index(bytes.len() + 1);
        match d {
            Damage::Truncate(i) => {
                let n = at(i);
                bytes.truncate(n);
            }
            Damage::Insert(i, b) => {
                let n = at(i);
                bytes.splice(n..n, b.iter().copied());
            }
            Damage::Delete(i, len) => {
                let n = at(i);
                let end = (n + len).min(bytes.len());
                bytes.drain(n..end);
            }
            Damage::Repeat(i, len) => {
                let n = at(i);
                let end = (n + len).min(bytes.len());
                let copy = bytes[n..end].to_vec();
                bytes.splice(n..n, copy);
            }
        }
    }
    bytes
}

/// Where a body goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// `POST /v1/requests`.
    Requests,
    /// `POST /v1/decisions`.
    Decisions,
}

impl Endpoint {
    /// Its path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Requests => "/v1/requests",
            Endpoint::Decisions => "/v1/decisions",
        }
    }
}

/// What to do to a grant the call created active, right away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `POST /v1/grants/{id}/revoke` as admin.
    Revoke,
    /// The pipeline reports the grant's ticket closed.
    CloseTicket,
}

/// One generated call.
#[derive(Clone, Debug)]
pub struct Case {
    /// Where.
    pub endpoint: Endpoint,
    /// Bearer token: a requester (`t-alice`, `t-carol`), the pipeline, the
    /// admin, an unknown one, or none.
    pub token: Option<&'static str>,
    /// The body as a tree.
    pub body: J,
    /// Damage done to its text.
    pub damage: Vec<Damage>,
    /// If it creates an active grant, end it at once this way.
    pub end: Option<End>,
}

impl Case {
    /// The bytes sent, with times relative to `now`.
    pub fn bytes(&self, now: u64) -> Vec<u8> {
        let mut text = String::new();
        self.body.render(now, &mut text);
        apply(text.into_bytes(), &self.damage)
    }
}

/// One call.
pub fn case() -> BoxedStrategy<Case> {
    (
        prop_oneof![7 => Just(Endpoint::Requests), 3 => Just(Endpoint::Decisions)],
        prop_oneof![
            8 => Just(Some("t-alice")),
            4 => Just(Some("t-pipe")),
            2 => Just(Some("t-admin")),
            2 => Just(Some("t-carol")),
            1 => Just(Some("t-nope")),
            1 => Just(None),
        ],
        request_body(),
        damage(),
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(End::Revoke)),
            1 => Just(Some(End::CloseTicket)),
        ],
    )
        .prop_map(|(endpoint, token, body, damage, end)| Case {
            endpoint,
            token,
            body,
            damage,
            end,
        })
        .boxed()
}
