//! `[[ticket-sources]]` in `jitgate.toml`, and the checked form a running
//! server uses ([`TicketSource`]).
//!
//! One file past 500 lines: every `[[ticket-sources]]` key with its default
//! and its check, per system, so the config reference and the code agree.
//!
//! ```toml
//! [[ticket-sources]]
//! name = "jira"                        # URL segment: POST /v1/ticket-sources/jira/events
//! kind = "jira"                        # jira | servicenow | zendesk | generic
//! secret-env = "JIRA_WEBHOOK_SECRET"   # the webhook secret (never in the file)
//! states = { "Waiting for customer" = "on-hold", "Closed" = "closed" }
//! priorities = { "P1" = 1 }            # jira, zendesk: the system's priority names → 1..5
//! resolved-revokes = true              # default
//! assignee-field = "emailAddress"      # default per kind
//! base-url = "https://example.atlassian.net"   # for pulling; needs credentials-env
//! credentials-env = "JIRA_API_CREDENTIALS"
//! reconcile-interval = 300             # seconds
//!
//! [[ticket-sources]]
//! name = "snow"
//! kind = "servicenow"
//! secret-env = "SNOW_WEBHOOK_SECRET"
//! auth = "shared-secret"               # or "basic": the secret is `user:password`
//! secret-header = "X-Jitgate-Secret"   # default
//! ```
//!
//! One file past 500 lines: the `[[ticket-sources]]` schema and every check on it: keys and their validation stay together.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::request::TicketState;

/// Which ticket system a source speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketSourceKind {
    /// Jira Cloud / Jira Service Management webhooks.
    Jira,
    /// ServiceNow incident table, sent by a business rule.
    Servicenow,
    /// Zendesk ticket event webhooks.
    Zendesk,
    /// jitgate's own body, signed like jitgate's outgoing webhooks.
    Generic,
}

impl TicketSourceKind {
    /// The `kind` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketSourceKind::Jira => "jira",
            TicketSourceKind::Servicenow => "servicenow",
            TicketSourceKind::Zendesk => "zendesk",
            TicketSourceKind::Generic => "generic",
        }
    }

    /// Where the assignee's jitgate subject is read when `assignee-field`
    /// is not set.
    pub fn default_assignee_field(self) -> &'static str {
        match self {
            TicketSourceKind::Jira => "emailAddress",
            TicketSourceKind::Servicenow => "assigned_to",
            TicketSourceKind::Zendesk => "assignee_email",
            TicketSourceKind::Generic => "assignee",
        }
    }
}

/// How a ServiceNow business rule proves it is the sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceNowAuth {
    /// The secret in a header (`secret-header`).
    #[default]
    SharedSecret,
    /// `Authorization: Basic`; the secret is `user:password`.
    Basic,
}

/// The header a ServiceNow shared secret arrives in by default.
pub const DEFAULT_SECRET_HEADER: &str = "X-Jitgate-Secret";

/// Seconds between reconciliations by default.
pub const DEFAULT_RECONCILE_INTERVAL: u64 = 300;

/// Longest source name: it is a URL path segment and a label in audit
/// records and metrics.
pub const MAX_SOURCE_NAME: usize = 64;

/// One `[[ticket-sources]]` entry, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TicketSourceConfig {
    /// Unique; names the endpoint `POST /v1/ticket-sources/{name}/events`.
    pub name: String,
    /// Which system.
    pub kind: TicketSourceKind,
    /// Environment variable holding the webhook secret.
    pub secret_env: String,
    /// The system's status name → jitgate state, over the default mapping.
    /// Checked by [`check_sources`] (values are kept as text so that a typo
    /// is reported as `ticket-sources[i].states."<name>"`).
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    /// The system's priority name → 1 (highest) … 5, over the defaults
    /// (jira and zendesk only; the others send numbers).
    #[serde(default)]
    pub priorities: BTreeMap<String, u8>,
    /// A ticket turning resolved ends its grants (closed always does).
    #[serde(default = "default_true")]
    pub resolved_revokes: bool,
    /// Which field of the system's assignee names the jitgate subject
    /// (default per kind, [`TicketSourceKind::default_assignee_field`]).
    pub assignee_field: Option<String>,
    /// The system's API root, for pulling a ticket's current facts.
    pub base_url: Option<String>,
    /// Environment variable holding the API credentials.
    pub credentials_env: Option<String>,
    /// Seconds between re-checks of the tickets of active grants.
    #[serde(default = "default_reconcile")]
    pub reconcile_interval: u64,
    /// servicenow: `shared-secret` (default) or `basic`.
    pub auth: Option<ServiceNowAuth>,
    /// servicenow with `shared-secret`: the header carrying it.
    pub secret_header: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_reconcile() -> u64 {
    DEFAULT_RECONCILE_INTERVAL
}

/// How a source authenticates its webhooks, resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    /// `X-Hub-Signature: sha256=<hex>` over the body.
    Jira,
    /// The secret, compared in constant time, in this header (lowercase).
    SharedSecretHeader(String),
    /// `Authorization: Basic`, compared in constant time with the secret.
    Basic,
    /// Zendesk's base64 signature over timestamp + body.
    Zendesk,
    /// jitgate's `X-Jitgate-Signature` over `timestamp.body`.
    Generic,
}

/// A checked ticket source with its secret: what verifies and parses that
/// source's webhooks.
#[derive(Clone)]
pub struct TicketSource {
    /// The source's name.
    pub name: String,
    /// Which system.
    pub kind: TicketSourceKind,
    /// A resolved ticket ends its grants.
    pub resolved_revokes: bool,
    /// Where the assignee is read.
    pub assignee_field: String,
    /// Status overrides, checked.
    pub states: BTreeMap<String, TicketState>,
    /// Priority names → 1..5 (defaults merged with overrides).
    pub priorities: BTreeMap<String, u8>,
    /// Webhook authentication.
    pub auth: WebhookAuth,
    /// The system's web root (`base-url`), for links to its tickets.
    pub base_url: Option<String>,
    pub(crate) secret: Vec<u8>,
}

impl std::fmt::Debug for TicketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs and panics.
        f.debug_struct("TicketSource")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Jira's stock priority names (Cloud, and the older Server scheme).
const JIRA_PRIORITIES: &[(&str, u8)] = &[
    ("Highest", 1),
    ("High", 2),
    ("Medium", 3),
    ("Low", 4),
    ("Lowest", 5),
    ("Blocker", 1),
    ("Critical", 2),
    ("Major", 3),
    ("Minor", 4),
    ("Trivial", 5),
];

/// Zendesk's four priorities (matched case-insensitively: events send
/// `HIGH`, triggers and the API `high`).
const ZENDESK_PRIORITIES: &[(&str, u8)] = &[("urgent", 1), ("high", 2), ("normal", 3), ("low", 4)];

/// Parse a jitgate state name as written in `states`.
pub fn parse_state(s: &str) -> Option<TicketState> {
    Some(match s {
        "open" => TicketState::Open,
        "in-progress" => TicketState::InProgress,
        "on-hold" => TicketState::OnHold,
        "resolved" => TicketState::Resolved,
        "closed" => TicketState::Closed,
        _ => return None,
    })
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

impl TicketSourceConfig {
    /// Check this entry; errors start with `ticket-sources[index].<key>`.
    pub fn check(&self, index: usize) -> Result<(), String> {
        self.compile(index, Vec::new()).map(drop)
    }

    fn compile(&self, index: usize, secret: Vec<u8>) -> Result<TicketSource, String> {
        let key = |k: &str| format!("ticket-sources[{index}].{k}");
        let kind = self.kind;
        let name = &self.name;
        if name.is_empty()
            || name.len() > MAX_SOURCE_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || name.starts_with('.')
        {
            return Err(format!(
                "{}: must be 1 to {MAX_SOURCE_NAME} letters, digits, `-`, `_` or `.` (it is a URL path segment)",
                key("name")
            ));
        }
        if self.secret_env.trim().is_empty() {
            return Err(format!(
                "{}: name the environment variable holding the webhook secret",
                key("secret-env")
            ));
        }
        let mut states = BTreeMap::new();
        for (status, state) in &self.states {
            if status.is_empty() || status.chars().any(char::is_control) {
                return Err(format!(
                    "{}: status names must be non-empty and free of control characters",
                    key("states")
                ));
            }
            let Some(s) = parse_state(state) else {
                return Err(format!(
                    "{}.{status:?}: `{state}` is not a jitgate state (open, in-progress, on-hold, resolved, closed)",
                    key("states")
                ));
            };
            states.insert(status.clone(), s);
        }
        let mut priorities: BTreeMap<String, u8> = match kind {
            TicketSourceKind::Jira => JIRA_PRIORITIES,
            TicketSourceKind::Zendesk => ZENDESK_PRIORITIES,
            _ => &[],
        }
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        if !self.priorities.is_empty()
            && matches!(
                kind,
                TicketSourceKind::Servicenow | TicketSourceKind::Generic
            )
        {
            return Err(format!(
                "{}: only for kind = \"jira\" or \"zendesk\" ({} sends priorities as 1..5)",
                key("priorities"),
                kind.as_str()
            ));
        }
        for (p, v) in &self.priorities {
            if !(1..=5).contains(v) {
                return Err(format!(
                    "{}.{p:?}: {v} is out of range (1 highest to 5)",
                    key("priorities")
                ));
            }
            let p = if kind == TicketSourceKind::Zendesk {
                p.to_ascii_lowercase()
            } else {
                p.clone()
            };
            priorities.insert(p, *v);
        }
        let assignee_field = match &self.assignee_field {
            None => kind.default_assignee_field().to_string(),
            Some(f) => {
                if f.is_empty()
                    || f.len() > 64
                    || !f
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                {
                    return Err(format!(
                        "{}: must be one field name (letters, digits, `_`, `-`)",
                        key("assignee-field")
                    ));
                }
                f.clone()
            }
        };
        if kind == TicketSourceKind::Generic && self.assignee_field.is_some() {
            return Err(format!(
                "{}: kind = \"generic\" always reads `assignee`",
                key("assignee-field")
            ));
        }
        match (&self.base_url, &self.credentials_env) {
            (Some(_), _) if kind == TicketSourceKind::Generic => {
                return Err(format!(
                    "{}: kind = \"generic\" has no API to pull from",
                    key("base-url")
                ));
            }
            (Some(u), Some(c)) => {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || u.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(format!(
                        "{}: must be an https:// (or, for tests, http://) URL",
                        key("base-url")
                    ));
                }
                if c.trim().is_empty() {
                    return Err(format!(
                        "{}: name the environment variable holding the API credentials",
                        key("credentials-env")
                    ));
                }
            }
            (Some(_), None) => {
                return Err(format!(
                    "{}: required with base-url",
                    key("credentials-env")
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{}: required with credentials-env",
                    key("base-url")
                ));
            }
            (None, None) => {}
        }
        if self.reconcile_interval == 0 || self.reconcile_interval > 86_400 {
            return Err(format!(
                "{}: {} is out of range (1 to 86400 seconds)",
                key("reconcile-interval"),
                self.reconcile_interval
            ));
        }
        let auth = match kind {
            TicketSourceKind::Servicenow => match self.auth.unwrap_or_default() {
                ServiceNowAuth::SharedSecret => {
                    let h = self
                        .secret_header
                        .as_deref()
                        .unwrap_or(DEFAULT_SECRET_HEADER);
                    if !is_header_name(h) || h.eq_ignore_ascii_case("authorization") {
                        return Err(format!(
                            "{}: `{h}` is not a usable header name",
                            key("secret-header")
                        ));
                    }
                    WebhookAuth::SharedSecretHeader(h.to_ascii_lowercase())
                }
                ServiceNowAuth::Basic => {
                    if self.secret_header.is_some() {
                        return Err(format!(
                            "{}: not used with auth = \"basic\"",
                            key("secret-header")
                        ));
                    }
                    WebhookAuth::Basic
                }
            },
            other => {
                if self.auth.is_some() {
                    return Err(format!(
                        "{}: only for kind = \"servicenow\" ({} has its own signature scheme)",
                        key("auth"),
                        other.as_str()
                    ));
                }
                if self.secret_header.is_some() {
                    return Err(format!(
                        "{}: only for kind = \"servicenow\"",
                        key("secret-header")
                    ));
                }
                match other {
                    TicketSourceKind::Jira => WebhookAuth::Jira,
                    TicketSourceKind::Zendesk => WebhookAuth::Zendesk,
                    _ => WebhookAuth::Generic,
                }
            }
        };
        Ok(TicketSource {
            name: name.clone(),
            kind,
            resolved_revokes: self.resolved_revokes,
            assignee_field,
            states,
            priorities,
            auth,
            base_url: self.base_url.clone(),
            secret,
        })
    }
}

/// Check every `[[ticket-sources]]` entry and that names are unique.
/// Errors start with the key, e.g. `ticket-sources[1].name`.
pub fn check_sources(sources: &[TicketSourceConfig]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (i, s) in sources.iter().enumerate() {
        s.check(i)?;
        if !seen.insert(s.name.as_str()) {
            return Err(format!(
                "ticket-sources[{i}].name: `{}` is configured twice",
                s.name
            ));
        }
    }
    Ok(())
}

/// Shortest webhook secret accepted, bytes: an HMAC key an attacker can
/// guess makes every signature forgeable.
pub const MIN_SECRET_BYTES: usize = 16;

impl TicketSource {
    /// Where a person opens ticket `id` in its system (`base-url` set),
    /// the id percent-encoded: it came from a request or a webhook.
    pub fn browse_url(&self, id: &str) -> Option<String> {
        let base = self.base_url.as_deref()?.trim_end_matches('/');
        let id: String =
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).collect();
        Some(match self.kind {
            TicketSourceKind::Jira => format!("{base}/browse/{id}"),
            TicketSourceKind::Servicenow => {
                format!("{base}/nav_to.do?uri=incident.do%3Fsysparm_query%3Dnumber%3D{id}")
            }
            TicketSourceKind::Zendesk => format!("{base}/agent/tickets/{id}"),
            TicketSourceKind::Generic => format!("{base}/{id}"),
        })
    }

    /// The checked source `ticket-sources[index]` with its webhook secret.
    pub fn new(index: usize, cfg: &TicketSourceConfig, secret: Vec<u8>) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "ticket-sources[{index}].secret-env: the secret in `{}` must be at least {MIN_SECRET_BYTES} bytes",
                cfg.secret_env
            ));
        }
        if cfg.kind == TicketSourceKind::Servicenow
            && cfg.auth == Some(ServiceNowAuth::Basic)
            && !secret.contains(&b':')
        {
            return Err(format!(
                "ticket-sources[{index}].secret-env: with auth = \"basic\" the secret in `{}` is `user:password`",
                cfg.secret_env
            ));
        }
        cfg.compile(index, secret)
    }

    /// [`TicketSource::new`] with the secret read from `secret-env` by
    /// `lookup` (`|k| std::env::var(k).ok()` in the server).
    pub fn from_env(
        index: usize,
        cfg: &TicketSourceConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let secret = lookup(&cfg.secret_env).ok_or_else(|| {
            format!(
                "ticket-sources[{index}].secret-env: `{}` is not set",
                cfg.secret_env
            )
        })?;
        Self::new(index, cfg, secret.into_bytes())
    }

    /// The override for the system's status `name`, exact spelling first,
    /// then ignoring ASCII case.
    pub fn state_override(&self, name: &str) -> Option<TicketState> {
        self.states.get(name).copied().or_else(|| {
            self.states
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Doc {
        ticket_sources: Vec<TicketSourceConfig>,
    }

    fn parse(toml_text: &str) -> Vec<TicketSourceConfig> {
        toml::from_str::<Doc>(toml_text).unwrap().ticket_sources
    }

    const SECRET: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn defaults_per_kind() {
        let s = parse(
            "[[ticket-sources]]\nname='jira'\nkind='jira'\nsecret-env='J'\n\
             [[ticket-sources]]\nname='snow'\nkind='servicenow'\nsecret-env='S'\n\
             [[ticket-sources]]\nname='zd'\nkind='zendesk'\nsecret-env='Z'\n",
        );
        check_sources(&s).unwrap();
        assert!(s[0].resolved_revokes);
        assert_eq!(s[0].reconcile_interval, 300);
        let j = TicketSource::new(0, &s[0], SECRET.to_vec()).unwrap();
        assert_eq!(j.assignee_field, "emailAddress");
        assert_eq!(j.priorities["Highest"], 1);
        assert_eq!(j.priorities["Lowest"], 5);
        let n = TicketSource::new(1, &s[1], SECRET.to_vec()).unwrap();
        assert_eq!(n.assignee_field, "assigned_to");
        assert_eq!(
            n.auth,
            WebhookAuth::SharedSecretHeader("x-jitgate-secret".into())
        );
        let z = TicketSource::new(2, &s[2], SECRET.to_vec()).unwrap();
        assert_eq!(z.assignee_field, "assignee_email");
        assert_eq!(z.priorities["urgent"], 1);
    }

    #[test]
    fn overrides_are_kept_and_merged() {
        let s = parse(
            "[[ticket-sources]]\nname='jira'\nkind='jira'\nsecret-env='J'\n\
             states = { 'Waiting for customer' = 'on-hold', Closed = 'closed' }\n\
             priorities = { P1 = 1, Medium = 2 }\nresolved-revokes = false\n\
             assignee-field = 'accountId'\nreconcile-interval = 60\n",
        );
        let j = TicketSource::new(0, &s[0], SECRET.to_vec()).unwrap();
        assert_eq!(
            j.state_override("Waiting for customer"),
            Some(TicketState::OnHold)
        );
        assert_eq!(j.state_override("closed"), Some(TicketState::Closed));
        assert_eq!(j.priorities["P1"], 1);
        assert_eq!(j.priorities["Medium"], 2);
        assert!(!j.resolved_revokes);
        assert_eq!(j.assignee_field, "accountId");
    }

    fn err_of(doc: &str) -> String {
        check_sources(&parse(doc)).unwrap_err()
    }

    #[test]
    fn bad_entries_name_the_key() {
        let base = "[[ticket-sources]]\nname='a'\nkind='jira'\nsecret-env='A'\n";
        for (extra, key) in [
            (
                "[[ticket-sources]]\nname='a'\nkind='zendesk'\nsecret-env='B'\n",
                "ticket-sources[1].name",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\nstates = { Done = 'finished' }\n",
                "ticket-sources[1].states.\"Done\"",
            ),
            (
                "[[ticket-sources]]\nname='b/../x'\nkind='jira'\nsecret-env='B'\n",
                "ticket-sources[1].name",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env=''\n",
                "ticket-sources[1].secret-env",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\nsecret-header='X-S'\n",
                "ticket-sources[1].secret-header",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='generic'\nsecret-env='B'\npriorities={P1=1}\n",
                "ticket-sources[1].priorities",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\npriorities={P1=9}\n",
                "ticket-sources[1].priorities.\"P1\"",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\nbase-url='https://x'\n",
                "ticket-sources[1].credentials-env",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\ncredentials-env='C'\n",
                "ticket-sources[1].base-url",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\nreconcile-interval=0\n",
                "ticket-sources[1].reconcile-interval",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='servicenow'\nsecret-env='B'\nsecret-header='Bad Header'\n",
                "ticket-sources[1].secret-header",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='servicenow'\nsecret-env='B'\nauth='basic'\nsecret-header='X-S'\n",
                "ticket-sources[1].secret-header",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='zendesk'\nsecret-env='B'\nauth='basic'\n",
                "ticket-sources[1].auth",
            ),
            (
                "[[ticket-sources]]\nname='b'\nkind='jira'\nsecret-env='B'\nassignee-field='a.b'\n",
                "ticket-sources[1].assignee-field",
            ),
        ] {
            let e = err_of(&format!("{base}{extra}"));
            assert!(e.starts_with(&format!("{key}:")), "{extra}: {e}");
        }
    }

    #[test]
    fn unknown_key_and_unknown_kind_are_refused_at_parse() {
        let e = toml::from_str::<Doc>(
            "[[ticket-sources]]\nname='a'\nkind='jira'\nsecret-env='A'\nsecret='inline'\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("secret"), "{e}");
        let e =
            toml::from_str::<Doc>("[[ticket-sources]]\nname='a'\nkind='github'\nsecret-env='A'\n")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(e.contains("github"), "{e}");
    }

    #[test]
    fn short_or_missing_secret_is_refused() {
        let s = parse("[[ticket-sources]]\nname='a'\nkind='generic'\nsecret-env='A'\n");
        let e = TicketSource::new(0, &s[0], b"short".to_vec()).unwrap_err();
        assert!(e.starts_with("ticket-sources[0].secret-env"), "{e}");
        let e = TicketSource::from_env(0, &s[0], |_| None).unwrap_err();
        assert!(e.contains("`A` is not set"), "{e}");
        let ok = TicketSource::from_env(0, &s[0], |k| {
            (k == "A").then(|| "0123456789abcdef".to_string())
        })
        .unwrap();
        assert!(!format!("{ok:?}").contains("0123456789abcdef"));
    }
}
