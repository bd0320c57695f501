//! Each system's webhook body → [`TicketEvent`]. Every field is hostile:
//! errors name the field path in the system's own spelling.
//!
//! One file past 500 lines: one normalisation per ticket system over shared hostile-field checks, side by side so the systems' mappings can be compared.

use serde_json::{Map, Value};
use std::borrow::Cow;

use super::config::{TicketSource, TicketSourceKind};
use super::verify::{JIRA_WEBHOOK_ID, Verified};
use super::{EventError, Millis, TicketEvent, TicketEventKind};
use crate::request::{MAX_TIMESTAMP, TicketState};

/// Longest identifier accepted (ticket id, event id, assignee, status
/// name), bytes: the request bound (`RequestLimits::max_string`), since
/// these end up in requests, audit records and policy input.
pub const MAX_FIELD_BYTES: usize = 1024;

/// The latest accepted time, ms: 9999-12-31T23:59:59.999Z (see
/// [`MAX_TIMESTAMP`]).
pub const MAX_TIMESTAMP_MS: Millis = MAX_TIMESTAMP * 1000 + 999;

/// Longest time text parsed: no format spelled right needs more.
const MAX_TIME_TEXT: usize = 64;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A hostile value quoted in an error message: escaped, at most 64 chars.
fn quote(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("`{}{more}`", crate::text::terminal_safe(&cut))
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, EventError> {
    v.as_object()
        .ok_or_else(|| EventError::new(or_body(path), "must be a JSON object"))
}

fn or_body(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

/// `key` of `m`; missing and `null` are both `None`.
fn opt<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn req<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value, EventError> {
    opt(m, key).ok_or_else(|| EventError::new(join(path, key), "is required"))
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, EventError> {
    v.as_str()
        .ok_or_else(|| EventError::new(path, "must be a string"))
}

/// An identifier: non-empty, bounded, and free of anything a terminal or
/// log would act on (control characters, ANSI/OSC escapes, bidi overrides,
/// zero-width marks).
fn ident(path: &str, s: &str) -> Result<String, EventError> {
    if s.len() > MAX_FIELD_BYTES {
        return Err(EventError::new(
            path,
            format!(
                "is {} bytes; at most {MAX_FIELD_BYTES} are allowed",
                s.len()
            ),
        ));
    }
    if s.trim().is_empty() {
        return Err(EventError::new(path, "must not be empty"));
    }
    if let Cow::Owned(_) = crate::text::terminal_safe(s) {
        return Err(EventError::new(
            path,
            format!(
                "{} contains control or format characters; identifiers may hold none",
                quote(s)
            ),
        ));
    }
    Ok(s.to_string())
}

/// A string or an integer, as an identifier (Zendesk sends ids as both).
fn ident_value(v: &Value, path: &str) -> Result<String, EventError> {
    match v {
        Value::String(s) => ident(path, s),
        Value::Number(n) if n.is_u64() => Ok(n.to_string()),
        _ => Err(EventError::new(path, "must be a string or a whole number")),
    }
}

fn ms_bound(path: &str, ms: i128) -> Result<Millis, EventError> {
    if ms < 0 {
        return Err(EventError::new(path, "is before 1970"));
    }
    u64::try_from(ms)
        .ok()
        .filter(|ms| *ms <= MAX_TIMESTAMP_MS)
        .ok_or_else(|| {
            EventError::new(
                path,
                format!(
                    "{ms} is after 9999-12-31T23:59:59.999Z; times must lie in years 1970-9999"
                ),
            )
        })
}

/// RFC 3339 text → Unix ms. Also takes Jira's `+0000` offsets (no colon),
/// which Jira writes in `created` and `updated`.
pub(crate) fn rfc3339_ms(s: &str) -> Result<Millis, String> {
    use time::format_description::well_known::Rfc3339;
    if s.len() > MAX_TIME_TEXT {
        return Err(format!("{} is not an RFC 3339 time", quote(s)));
    }
    let parsed = time::OffsetDateTime::parse(s, &Rfc3339).or_else(|e| {
        let b = s.as_bytes();
        let n = b.len();
        if n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit) {
            let fixed = format!("{}:{}", &s[..n - 2], &s[n - 2..]);
            time::OffsetDateTime::parse(&fixed, &Rfc3339)
        } else {
            Err(e)
        }
    });
    let t = parsed.map_err(|e| format!("{} is not an RFC 3339 time: {e}", quote(s)))?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    ms_bound("", ms).map_err(|e| e.message)
}

/// ServiceNow's `YYYY-MM-DD HH:MM:SS` (UTC, as `sys_updated_on` holds it)
/// → Unix ms.
fn servicenow_ms(s: &str) -> Result<Millis, String> {
    let bad = || format!("{} is not a `YYYY-MM-DD HH:MM:SS` UTC time", quote(s));
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = i32::try_from(num(0..4)?).map_err(|_| bad())?;
    let month =
        time::Month::try_from(u8::try_from(num(5..7)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let small = |v: u32| u8::try_from(v).map_err(|_| bad());
    let date =
        time::Date::from_calendar_date(year, month, small(num(8..10)?)?).map_err(|_| bad())?;
    let tod = time::Time::from_hms(
        small(num(11..13)?)?,
        small(num(14..16)?)?,
        small(num(17..19)?)?,
    )
    .map_err(|_| bad())?;
    let t = time::PrimitiveDateTime::new(date, tod).assume_utc();
    ms_bound("", t.unix_timestamp_nanos() / 1_000_000).map_err(|e| e.message)
}

fn time_field(
    v: &Value,
    path: &str,
    parse: fn(&str) -> Result<Millis, String>,
) -> Result<Millis, EventError> {
    parse(string(v, path)?).map_err(|m| EventError::new(path, m))
}

fn priority_number(path: &str, n: u64) -> Result<u8, EventError> {
    u8::try_from(n)
        .ok()
        .filter(|p| (1..=5).contains(p))
        .ok_or_else(|| EventError::new(path, format!("{n} is out of range (1 highest to 5)")))
}

impl TicketSource {
    /// Normalise a verified body of this source's system.
    pub fn parse(&self, v: Verified<'_>) -> Result<TicketEvent, EventError> {
        let root = crate::request::parse_json_strict(v.body)?;
        self.parse_root(obj(&root, "")?, v.delivery_id.as_deref())
    }

    /// Normalise a body already parsed (a webhook's, or a pulled answer in
    /// its system's event envelope: see `pull.rs`).
    pub(super) fn parse_root(
        &self,
        root: &Map<String, Value>,
        delivery_id: Option<&str>,
    ) -> Result<TicketEvent, EventError> {
        match self.kind {
            TicketSourceKind::Jira => self.jira(root, delivery_id),
            TicketSourceKind::Servicenow => self.servicenow(root),
            TicketSourceKind::Zendesk => self.zendesk(root),
            TicketSourceKind::Generic => self.generic(root),
        }
    }

    fn named_priority(&self, path: &str, name: &str) -> Result<u8, EventError> {
        self.priorities
            .get(name)
            .or_else(|| {
                self.priorities
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .copied()
            .ok_or_else(|| {
                EventError::new(
                    path,
                    format!(
                        "{} is not a known priority; map it in this source's `priorities`",
                        quote(name)
                    ),
                )
            })
    }

    fn jira(
        &self,
        root: &Map<String, Value>,
        delivery_id: Option<&str>,
    ) -> Result<TicketEvent, EventError> {
        let event = string(req(root, "", "webhookEvent")?, "webhookEvent")?;
        let kind = match event {
            "jira:issue_created" | "jira:issue_updated" => TicketEventKind::Upsert,
            "jira:issue_deleted" => TicketEventKind::Deleted,
            other => {
                return Err(EventError::new(
                    "webhookEvent",
                    format!(
                        "{} is not an issue event (jira:issue_created, jira:issue_updated, jira:issue_deleted)",
                        quote(other)
                    ),
                ));
            }
        };
        let updated_at = match req(root, "", "timestamp")? {
            Value::Number(n) => match n.as_u64() {
                Some(ms) => ms_bound("timestamp", i128::from(ms))?,
                None => return Err(EventError::new("timestamp", "must be Unix milliseconds")),
            },
            _ => return Err(EventError::new("timestamp", "must be Unix milliseconds")),
        };
        let issue = obj(req(root, "", "issue")?, "issue")?;
        let ticket_id = ident(
            "issue.key",
            string(req(issue, "issue", "key")?, "issue.key")?,
        )?;
        let fields = obj(req(issue, "issue", "fields")?, "issue.fields")?;
        let status = obj(
            req(fields, "issue.fields", "status")?,
            "issue.fields.status",
        )?;
        let name = opt(status, "name")
            .map(|n| string(n, "issue.fields.status.name"))
            .transpose()?;
        let state = match name.and_then(|n| self.state_override(n)) {
            Some(s) => s,
            None => {
                let cat = obj(
                    req(status, "issue.fields.status", "statusCategory")?,
                    "issue.fields.status.statusCategory",
                )?;
                let path = "issue.fields.status.statusCategory.key";
                match string(req(cat, "issue.fields.status.statusCategory", "key")?, path)? {
                    "new" => TicketState::Open,
                    "indeterminate" => TicketState::InProgress,
                    "done" => TicketState::Resolved,
                    other => {
                        return Err(EventError::new(
                            path,
                            format!(
                                "{} is not new, indeterminate or done; map status {} in this source's `states`",
                                quote(other),
                                quote(name.unwrap_or("?"))
                            ),
                        ));
                    }
                }
            }
        };
        let priority = match opt(fields, "priority") {
            None => None,
            Some(p) => {
                let p = obj(p, "issue.fields.priority")?;
                let path = "issue.fields.priority.name";
                let name = string(req(p, "issue.fields.priority", "name")?, path)?;
                Some(self.named_priority(path, name)?)
            }
        };
        let assignee = match opt(fields, "assignee") {
            None => None,
            Some(a) => {
                let a = obj(a, "issue.fields.assignee")?;
                let f = &self.assignee_field;
                let path = format!("issue.fields.assignee.{f}");
                Some(ident(
                    &path,
                    string(req(a, "issue.fields.assignee", f)?, &path)?,
                )?)
            }
        };
        let opened_at = opt(fields, "created")
            .map(|c| time_field(c, "issue.fields.created", rfc3339_ms))
            .transpose()?;
        let event_id = delivery_id.map(|d| ident(JIRA_WEBHOOK_ID, d)).transpose()?;
        Ok(TicketEvent {
            source: self.name.clone(),
            event_id,
            ticket_id,
            kind,
            state,
            priority,
            assignee,
            opened_at,
            updated_at,
        })
    }

    fn servicenow(&self, root: &Map<String, Value>) -> Result<TicketEvent, EventError> {
        let number = ident("number", sn_str(req(root, "", "number")?, "number")?)?;
        let state_v = req(root, "", "state")?;
        let (code, label) = sn_pair(state_v, "state")?;
        let state = code
            .as_deref()
            .and_then(|c| self.state_override(c))
            .or_else(|| label.and_then(|l| self.state_override(l)))
            .or_else(|| code.as_deref().and_then(servicenow_state))
            .or_else(|| label.and_then(servicenow_label))
            .ok_or_else(|| {
                EventError::new(
                    "state",
                    format!(
                        "{} is not a known incident state (1, 2, 3, 6, 7, 8); map it in this source's `states`",
                        quote(code.as_deref().or(label).unwrap_or(""))
                    ),
                )
            })?;
        let priority = match opt(root, "priority") {
            None => None,
            Some(p) => {
                let (code, _) = sn_pair(p, "priority")?;
                match code.as_deref() {
                    None | Some("") => None,
                    Some(c) => {
                        // "2" or "2 - High": the number leads.
                        let digits: &str = c.split(" - ").next().unwrap_or(c).trim();
                        let n = digits.parse::<u64>().map_err(|_| {
                            EventError::new("priority", format!("{} is not 1..5", quote(c)))
                        })?;
                        Some(priority_number("priority", n)?)
                    }
                }
            }
        };
        let f = &self.assignee_field;
        let assignee = match opt(root, f) {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(ident(f, s)?),
            Some(Value::Object(m)) => {
                // `sysparm_display_value=all` or a rule that dot-walks:
                // the user's email or user name if sent, else the sys_id;
                // never the display name, which is not unique.
                let mut found = None;
                for k in ["email", "user_name", "value"] {
                    if let Some(v) = opt(m, k) {
                        let path = format!("{f}.{k}");
                        let s = string(v, &path)?;
                        if !s.is_empty() {
                            found = Some(ident(&path, s)?);
                            break;
                        }
                    }
                }
                found
            }
            Some(_) => return Err(EventError::new(f.as_str(), "must be a string or an object")),
        };
        let opened_at = match opt(root, "opened_at") {
            None => None,
            Some(v) => match sn_str(v, "opened_at")? {
                "" => None,
                s => Some(servicenow_ms(s).map_err(|m| EventError::new("opened_at", m))?),
            },
        };
        let updated_raw = sn_str(req(root, "", "sys_updated_on")?, "sys_updated_on")?;
        let updated_at =
            servicenow_ms(updated_raw).map_err(|m| EventError::new("sys_updated_on", m))?;
        Ok(TicketEvent {
            source: self.name.clone(),
            event_id: Some(format!("{number}@{updated_raw}")),
            ticket_id: number,
            kind: TicketEventKind::Upsert,
            state,
            priority,
            assignee,
            opened_at,
            updated_at,
        })
    }

    fn zendesk(&self, root: &Map<String, Value>) -> Result<TicketEvent, EventError> {
        let ty = string(req(root, "", "type")?, "type")?;
        let Some(what) = ty.strip_prefix("zen:event-type:ticket.") else {
            return Err(EventError::new(
                "type",
                format!(
                    "{} is not a ticket event (zen:event-type:ticket.*)",
                    quote(ty)
                ),
            ));
        };
        let kind = match what {
            "soft_deleted" | "permanently_deleted" => TicketEventKind::Deleted,
            _ => TicketEventKind::Upsert,
        };
        let event_id = opt(root, "id").map(|v| ident_value(v, "id")).transpose()?;
        let detail = obj(req(root, "", "detail")?, "detail")?;
        let ticket_id = ident_value(req(detail, "detail", "id")?, "detail.id")?;
        let status = string(req(detail, "detail", "status")?, "detail.status")?;
        let state = match self.state_override(status) {
            Some(s) => s,
            None => zendesk_state(status).ok_or_else(|| {
                EventError::new(
                    "detail.status",
                    format!(
                        "{} is not new, open, pending, hold, solved or closed; map it in this source's `states`",
                        quote(status)
                    ),
                )
            })?,
        };
        let priority = match opt(detail, "priority") {
            None => None,
            Some(p) => match string(p, "detail.priority")? {
                "" => None,
                name => Some(self.named_priority("detail.priority", name)?),
            },
        };
        let f = &self.assignee_field;
        let path = format!("detail.{f}");
        let assignee = match opt(detail, f) {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(ident_value(v, &path)?),
        };
        let opened_at = opt(detail, "created_at")
            .map(|v| time_field(v, "detail.created_at", rfc3339_ms))
            .transpose()?;
        let detail_updated = opt(detail, "updated_at")
            .map(|v| time_field(v, "detail.updated_at", rfc3339_ms))
            .transpose()?;
        let event_time = opt(root, "time")
            .map(|v| time_field(v, "time", rfc3339_ms))
            .transpose()?;
        // `updated_at` has whole seconds; `time` orders two changes made
        // within one second. Both are Zendesk's clock: the later one is
        // when this state held.
        let updated_at = detail_updated.max(event_time).ok_or_else(|| {
            EventError::new("detail.updated_at", "is required (or a top-level `time`)")
        })?;
        Ok(TicketEvent {
            source: self.name.clone(),
            event_id,
            ticket_id,
            kind,
            state,
            priority,
            assignee,
            opened_at,
            updated_at,
        })
    }

    fn generic(&self, root: &Map<String, Value>) -> Result<TicketEvent, EventError> {
        const KEYS: &[&str] = &[
            "event-id",
            "ticket",
            "state",
            "priority",
            "assignee",
            "opened-at",
            "updated-at",
        ];
        if let Some(k) = root.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(EventError::new(
                ident("body", k).unwrap_or_else(|_| quote(k)),
                format!("unknown field; expected one of {}", KEYS.join(", ")),
            ));
        }
        let event_id = ident("event-id", string(req(root, "", "event-id")?, "event-id")?)?;
        let ticket_id = ident("ticket", string(req(root, "", "ticket")?, "ticket")?)?;
        let s = string(req(root, "", "state")?, "state")?;
        let state = self
            .state_override(s)
            .or_else(|| super::config::parse_state(s))
            .ok_or_else(|| {
                EventError::new(
                    "state",
                    format!(
                        "{} is not open, in-progress, on-hold, resolved or closed",
                        quote(s)
                    ),
                )
            })?;
        let priority = match opt(root, "priority") {
            None => None,
            Some(p) => Some(priority_number(
                "priority",
                p.as_u64()
                    .ok_or_else(|| EventError::new("priority", "must be a whole number 1..5"))?,
            )?),
        };
        let assignee = opt(root, "assignee")
            .map(|a| ident("assignee", string(a, "assignee")?))
            .transpose()?;
        let opened_at = opt(root, "opened-at")
            .map(|v| time_field(v, "opened-at", rfc3339_ms))
            .transpose()?;
        let updated_at = time_field(req(root, "", "updated-at")?, "updated-at", rfc3339_ms)?;
        Ok(TicketEvent {
            source: self.name.clone(),
            event_id: Some(event_id),
            ticket_id,
            kind: TicketEventKind::Upsert,
            state,
            priority,
            assignee,
            opened_at,
            updated_at,
        })
    }
}

/// A ServiceNow value as text: a string, a number, or `{"value": …}`.
fn sn_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, EventError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Object(m) => match opt(m, "value") {
            Some(Value::String(s)) => Ok(s),
            _ => Err(EventError::new(join(path, "value"), "must be a string")),
        },
        _ => Err(EventError::new(path, "must be a string")),
    }
}

/// A ServiceNow choice: `"2"`, `2`, or `{"value": "2", "display_value":
/// "In Progress"}` → (code, label).
fn sn_pair<'a>(v: &'a Value, path: &str) -> Result<(Option<String>, Option<&'a str>), EventError> {
    let bounded = |p: &str, s: &str| -> Result<(), EventError> {
        if s.len() > MAX_FIELD_BYTES {
            return Err(EventError::new(
                p,
                format!(
                    "is {} bytes; at most {MAX_FIELD_BYTES} are allowed",
                    s.len()
                ),
            ));
        }
        Ok(())
    };
    match v {
        Value::String(s) => {
            bounded(path, s)?;
            Ok((Some(s.trim().to_string()), None))
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok((Some(i.to_string()), None)),
            None => Err(EventError::new(path, "must be a whole number")),
        },
        Value::Object(m) => {
            let code = match opt(m, "value") {
                None => None,
                Some(Value::String(s)) => {
                    bounded(&join(path, "value"), s)?;
                    Some(s.trim().to_string())
                }
                Some(Value::Number(n)) if n.is_i64() => Some(n.to_string()),
                Some(_) => return Err(EventError::new(join(path, "value"), "must be a string")),
            };
            let label = match opt(m, "display_value") {
                None => None,
                Some(Value::String(s)) => {
                    bounded(&join(path, "display_value"), s)?;
                    Some(s.as_str())
                }
                Some(_) => {
                    return Err(EventError::new(
                        join(path, "display_value"),
                        "must be a string",
                    ));
                }
            };
            if code.is_none() && label.is_none() {
                return Err(EventError::new(join(path, "value"), "is required"));
            }
            Ok((code, label))
        }
        _ => Err(EventError::new(
            path,
            "must be a string, a number or an object",
        )),
    }
}

/// The incident table's stock state codes.
fn servicenow_state(code: &str) -> Option<TicketState> {
    Some(match code {
        "1" => TicketState::Open,
        "2" => TicketState::InProgress,
        "3" => TicketState::OnHold,
        "6" => TicketState::Resolved,
        "7" | "8" => TicketState::Closed,
        _ => return None,
    })
}

/// The incident table's stock state labels (`display_value`).
fn servicenow_label(label: &str) -> Option<TicketState> {
    Some(match label.to_ascii_lowercase().as_str() {
        "new" => TicketState::Open,
        "in progress" => TicketState::InProgress,
        "on hold" => TicketState::OnHold,
        "resolved" => TicketState::Resolved,
        "closed" | "canceled" | "cancelled" => TicketState::Closed,
        _ => return None,
    })
}

/// Zendesk's statuses: lowercase from triggers and the API, uppercase in
/// event webhooks.
fn zendesk_state(status: &str) -> Option<TicketState> {
    Some(match status.to_ascii_lowercase().as_str() {
        "new" | "open" => TicketState::Open,
        "pending" | "hold" | "on-hold" | "on_hold" => TicketState::OnHold,
        "solved" => TicketState::Resolved,
        "closed" => TicketState::Closed,
        _ => return None,
    })
}
