//! The access request as the host receives it (JSON, YAML fixtures, library
//! callers), and the checks it must pass before any policy sees it.
//!
//! This mirrors the WIT `request` record with serde attached: field names are
//! the contract's kebab-case names, timestamps are accepted as integer Unix
//! seconds or RFC 3339 text, attributes as a JSON object (order kept,
//! duplicates refused so that a policy and an auditor cannot read different
//! values for the same key).

mod builder;
mod validate;

pub use builder::RequestBuilder;
pub use validate::{Limits as RequestLimits, RequestError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = u64;

/// The latest accepted timestamp, 9999-12-31T23:59:59Z. Every timestamp a
/// client sends must lie in years 1970–9999: that is the range RFC 3339
/// text can express, so whatever is accepted is stored as text and reads
/// back (an `opened-at` of `u64::MAX` once stored a time no reader could
/// parse, and one such grant halted every expiry sweep).
pub const MAX_TIMESTAMP: Timestamp = 253_402_300_799;

/// Check that `ts` lies in years 1970–9999.
pub fn check_timestamp(ts: Timestamp) -> Result<Timestamp, String> {
    if ts > MAX_TIMESTAMP {
        Err(format!(
            "{ts} is after 9999-12-31T23:59:59Z ({MAX_TIMESTAMP}); times must lie in years 1970-9999"
        ))
    } else {
        Ok(ts)
    }
}

/// Where the ticket stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketState {
    /// Created, not started.
    Open,
    /// Being worked on.
    InProgress,
    /// Parked.
    OnHold,
    /// Work done.
    Resolved,
    /// Archived.
    Closed,
}

impl TicketState {
    /// The state's name as requests and fixtures spell it (`in-progress`).
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::InProgress => "in-progress",
            TicketState::OnHold => "on-hold",
            TicketState::Resolved => "resolved",
            TicketState::Closed => "closed",
        }
    }

    /// `resolved` or `closed`.
    pub fn is_finished(self) -> bool {
        matches!(self, TicketState::Resolved | TicketState::Closed)
    }
}

/// The ticket the access is for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Ticket {
    /// Ticketing system id.
    pub id: String,
    /// Current state.
    pub state: TicketState,
    /// 1 (highest) … 5.
    pub priority: u8,
    /// Assignee, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// When it was opened.
    #[serde(with = "timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub opened_at: Timestamp,
}

/// Person or workload.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// A person.
    Human,
    /// A non-human identity.
    Service,
}

/// Who asks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Subject {
    /// Stable identifier.
    pub id: String,
    /// Person or workload.
    pub kind: SubjectKind,
    /// Job roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Last MFA.
    #[serde(
        default,
        with = "opt_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub mfa_at: Option<Timestamp>,
}

/// One access request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Request {
    /// Caller's id for this request.
    pub id: String,
    /// Who asks.
    pub subject: Subject,
    /// Kind of work.
    pub task: String,
    /// Target system.
    pub resource: String,
    /// What to grant.
    pub entitlement: String,
    /// The requester's reason, in its own words (shown to approvers).
    pub justification: String,
    /// Requested duration, seconds.
    pub requested_ttl: u32,
    /// The ticket, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// Decision time (chosen by the host or pinned by a fixture).
    #[serde(with = "timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, read_only))]
    pub now: Timestamp,
    /// Extra context.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub attributes: Attributes,
}

/// Key/value context in arrival order, keys unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(pub Vec<(String, String)>);

impl Attributes {
    /// No attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Attributes, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate attribute `{k}`"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(Attributes(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse RFC 3339 text into Unix seconds (sub-second part dropped).
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))?;
    let ts = u64::try_from(t.unix_timestamp()).map_err(|_| format!("`{s}` is before 1970"))?;
    check_timestamp(ts)
}

/// Format Unix seconds as RFC 3339 (UTC, milliseconds: the answer format
/// of [`crate::timefmt`]).
pub fn format_rfc3339(ts: Timestamp) -> String {
    crate::timefmt::rfc3339_secs(ts)
}

/// A timestamp as integer seconds or RFC 3339 text.
#[derive(Deserialize)]
#[serde(untagged)]
enum TsRepr {
    Secs(u64),
    Text(String),
}

impl TsRepr {
    fn into_ts<E: serde::de::Error>(self) -> Result<Timestamp, E> {
        match self {
            TsRepr::Secs(s) => check_timestamp(s).map_err(E::custom),
            TsRepr::Text(t) => parse_rfc3339(&t).map_err(E::custom),
        }
    }
}

/// Serde adapter: integer seconds or RFC 3339 in, RFC 3339 out.
pub mod timestamp {
    use super::*;
    /// Serialize as RFC 3339.
    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*ts))
    }
    /// Accept integer seconds or RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        TsRepr::deserialize(d)?.into_ts()
    }
}

/// Serde adapter for an optional timestamp.
pub mod opt_timestamp {
    use super::*;
    /// Serialize as RFC 3339 or null.
    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(t) => s.serialize_str(&format_rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
    /// Accept null, integer seconds or RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<TsRepr>::deserialize(d)?
            .map(TsRepr::into_ts)
            .transpose()
    }
}

/// Parse JSON text into a value, refusing duplicate object keys at any
/// depth: with last-one-wins, a policy, a log and an auditor could each read
/// a different value for the same field. The error names the field path
/// (e.g. `ticket.state`).
pub fn parse_json_strict(bytes: &[u8]) -> Result<serde_json::Value, RequestError> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let value = StrictValue
        .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track))
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let field = track.path().to_string();
            RequestError::new(if field == "." { "body" } else { &field }, e.to_string())
        })?;
    Ok(value)
}

/// A `serde_json::Value` that refuses duplicate keys (see [`parse_json_strict`]).
struct StrictValue;

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = a.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(out.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = m.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{k}`: every key may appear once"
                )));
            }
            let v = m.next_value_seed(StrictValue)?;
            out.insert(k, v);
        }
        Ok(out.into())
    }
}

/// Parse a request from JSON, naming the offending field on error.
pub fn from_json(text: &str) -> Result<Request, RequestError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(field_error)
}

/// Parse a request from an already-parsed JSON value (no re-serialising),
/// naming the offending field on error.
pub fn from_value(value: serde_json::Value) -> Result<Request, RequestError> {
    serde_path_to_error::deserialize(value).map_err(field_error)
}

fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> RequestError {
    let field = e.path().to_string();
    RequestError::new(
        if field == "." { "request" } else { &field },
        e.inner().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = r#"{
        "id": "r1",
        "subject": {"id": "alice", "kind": "human", "roles": ["helpdesk"], "mfa-at": "2026-11-25T09:59:00Z"},
        "task": "file-recovery", "resource": "fs1", "entitlement": "op",
        "justification": "restore finance share", "requested-ttl": 600,
        "ticket": {"id": "INC-1", "state": "in-progress", "priority": 2, "opened-at": 1795597200},
        "now": "2026-11-25T10:00:00Z",
        "attributes": {"tz-offset-minutes": "60", "site": "ams"}
    }"#;

    #[test]
    fn parses_both_time_forms_and_keeps_attribute_order() {
        let r = from_json(REQ).unwrap();
        assert_eq!(r.now, 1_795_600_800);
        assert_eq!(r.subject.mfa_at, Some(1_795_600_740));
        assert_eq!(r.ticket.as_ref().unwrap().opened_at, 1_795_597_200);
        assert_eq!(r.attributes.0[0].0, "tz-offset-minutes");
        assert_eq!(r.attributes.get("site"), Some("ams"));
    }

    #[test]
    fn round_trips_through_json() {
        let r = from_json(REQ).unwrap();
        let again = from_json(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(r, again);
    }

    #[test]
    fn unknown_field_is_named() {
        let bad = REQ.replace("\"task\"", "\"tsk\": 1, \"task\"");
        let e = from_json(&bad).unwrap_err();
        assert!(e.message.contains("tsk"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let bad = REQ.replace("\"priority\": 2", "\"priority\": \"high\"");
        let e = from_json(&bad).unwrap_err();
        assert_eq!(e.field, "ticket.priority");
    }

    #[test]
    fn duplicate_attribute_is_refused() {
        let bad = REQ.replace("\"site\": \"ams\"", "\"site\": \"ams\", \"site\": \"nyc\"");
        let e = from_json(&bad).unwrap_err();
        assert_eq!(e.field, "attributes");
        assert!(e.message.contains("duplicate attribute `site`"), "{e}");
    }

    #[test]
    fn opened_at_of_u64_max_is_refused_at_parse_naming_the_field() {
        let bad = REQ.replace(
            "\"opened-at\": 1795597200",
            "\"opened-at\": 18446744073709551615",
        );
        let e = from_json(&bad).unwrap_err();
        assert_eq!(e.field, "ticket.opened-at");
        assert!(e.message.contains("9999"), "{e}");
    }

    #[test]
    fn every_accepted_time_reads_back() {
        for ts in [0, 1, 1_795_597_200, MAX_TIMESTAMP] {
            let text = REQ.replace("\"opened-at\": 1795597200", &format!("\"opened-at\": {ts}"));
            let r = from_json(&text).unwrap();
            let again = from_json(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(again.ticket.unwrap().opened_at, ts);
        }
        let past = REQ.replace(
            "\"opened-at\": 1795597200",
            "\"opened-at\": \"10000-01-01T00:00:00Z\"",
        );
        assert_eq!(from_json(&past).unwrap_err().field, "ticket.opened-at");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_naming_the_path() {
        let v =
            parse_json_strict(br#"{"a":{"b":1,"c":[{"d":1}]},"e":0.95309792552509531}"#).unwrap();
        assert_eq!(v["a"]["c"][0]["d"], 1);
        let e = parse_json_strict(br#"{"id":"x","id":"y"}"#).unwrap_err();
        assert!(e.message.contains("duplicate key `id`"), "{e}");
        let e = parse_json_strict(br#"{"ticket":{"state":"open","state":"closed"}}"#).unwrap_err();
        assert!(e.field.starts_with("ticket"), "{e:?}");
        assert!(e.message.contains("duplicate key `state`"), "{e}");
        assert!(parse_json_strict(b"{} trailing").is_err());
        assert!(parse_json_strict(b"[1,2").is_err());
    }

    #[test]
    fn bad_time_is_named() {
        let bad = REQ.replace("\"2026-11-25T10:00:00Z\"", "\"yesterday\"");
        let e = from_json(&bad).unwrap_err();
        assert_eq!(e.field, "now");
    }
}
