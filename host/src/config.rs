//! `jitgate.toml`: one file, every default safe, unknown keys refused.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! store = "jitgate.db"                 # SQLite file, or a URL shared by replicas:
//! # store = "postgres://jitgate@db.internal:5432/jitgate"
//! policies = "target/policies"
//! global-ttl-cap = 28800               # seconds
//! approval-timeout = 3600              # seconds a request may wait for approval
//! reverify-on-reload = false           # decide active grants again on a new policy set
//! isolation = "per-decision"           # or "per-worker" (warm instances; trusted policies only)
//!
//! [sandbox]                            # per-evaluation budget
//! timeout-ms = 50
//! fuel = 10000000
//! max-memory-bytes = 16777216         # every memory and table of an instance, summed
//! max-module-bytes = 4194304           # larger modules are refused before compiling
//! # workers = 2                         # decision threads (default: half the CPUs, within the instance pool)
//! # queue = 64                          # decisions waiting for a thread; more get 503 + Retry-After
//!
//! [tasks.break-glass]
//! cap = 3600
//! break-glass = true                   # every grant opens a review item
//! [tasks.file-recovery]
//! revoke-on-ticket-close = true        # force it on for this task
//!
//! [[tokens]]
//! name = "alice@example.com"
//! sha256 = "<hex sha256 of the bearer token>"
//! roles = ["requester"]                # requester | pipeline | approver | admin | auditor
//! groups = ["helpdesk-tier2"]
//! subject-roles = ["helpdesk"]         # a requester's job roles
//! # subject-kind = "service"           # set on its own requests (default: the request says)
//!
//! [provisioner]
//! kind = "webhook"                     # or "log" (default)
//! url = "http://127.0.0.1:9000/jitgate"
//! secret-env = "JITGATE_WEBHOOK_SECRET"
//! timeout-ms = 10000                   # one delivery, response body included (≤ 10000)
//! max-response-bytes = 65536           # of the response body read
//! ca-file = "/etc/jitgate/ca.pem"       # extra CA for an https:// url (default: system roots)
//!
//! [http]                               # the server's connection limits
//! header-read-timeout-ms = 10000       # request line + headers (also idle keep-alive)
//! body-read-timeout-ms = 10000         # reading a request body
//! request-timeout-ms = 30000           # whole request, handler included (503 past it)
//! max-connections = 1024               # open connections; more wait in the backlog
//! # tls-cert = "/etc/jitgate/tls/cert.pem"   # serve HTTPS (rustls, TLS 1.2/1.3): PEM chain, leaf first…
//! # tls-key = "/etc/jitgate/tls/key.pem"     # …and its PEM private key; both or neither
//!
//! [limits]                             # floods
//! auth-failure-burst = 20              # failed authentications per client address…
//! auth-failure-per-minute = 60         # …refilled at this rate; beyond: 429 + Retry-After
//! auth-failure-window-secs = 60        # one audit record per address per window
//! invalid-body-excerpt-bytes = 256     # of an invalid body kept in its audit record
//!
//! [[identity-providers]]               # OIDC bearer JWTs (crate::identity has every key)
//! name = "entra"
//! issuer = "https://login.microsoftonline.com/<tenant>/v2.0"
//! audience = "api://jitgate"
//! jwks-file = "/etc/jitgate/entra-jwks.json"   # or jwks-url = "https://…"
//! [[identity-providers.map]]
//! claim = "groups"
//! value = "helpdesk-tier2"
//! roles = ["requester"]
//!
//! [identity-aliases]                   # one person's names: no approving your own request under another
//! "alice@example.com" = ["alice", "a.smith@example.com"]
//!
//! [audit]                              # signed checkpoints of the chain head (off by default)
//! checkpoint-dir = "/var/lib/jitgate-checkpoints"   # outside the store: another disk or host
//! checkpoint-key = "/etc/jitgate/audit.key"         # from `jitgate keygen`
//! checkpoint-interval-minutes = 15                  # also one at start-up
//!
//! [trust]                              # signed policy sets (docs/policies.md)
//! public-keys = ["/etc/jitgate/policy-signer.pub"]   # from `jitgate keygen`
//! min-signatures = 1                   # distinct trusted keys that must sign
//!
//! [[ticket-sources]]                   # see crate::ticket and docs/tickets.md
//! name = "jira"                        # POST /v1/ticket-sources/jira/events
//! kind = "jira"                        # jira | servicenow | zendesk | generic
//! secret-env = "JIRA_WEBHOOK_SECRET"
//! ```
//!
//! A password in `store` (`postgres://user:PASSWORD@…`, `?password=…`, or
//! `password=…` in key/value form) is never shown: logs, stdout and the
//! config-load audit record use [`crate::store::redacted`].
//!
//! One file past 500 lines: every key, its default and its check are kept together.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::engine::EngineConfig;
use crate::service::{Principal, Role, ServiceConfig};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Listen address. Default 127.0.0.1:8080 (loopback: nothing is exposed by default).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where state lives: a SQLite file path (default `jitgate.db`, one
    /// process), or `postgres://user@host:port/db` for several replicas
    /// sharing one state. A string, not a path, because it may be a URL;
    /// [`crate::store::open`] decides which.
    #[serde(default = "default_store")]
    pub store: String,
    /// Folder of policy modules. Default `target/policies`.
    #[serde(default = "default_policies")]
    pub policies: PathBuf,
    /// Compiled-module cache folder.
    pub cache_dir: Option<PathBuf>,
    /// No grant lasts longer, seconds. Default 28800.
    #[serde(default = "default_cap")]
    pub global_ttl_cap: u32,
    /// Pending requests lapse after this many seconds. Default 3600.
    #[serde(default = "default_timeout")]
    pub approval_timeout: u32,
    /// Decide every active grant again when a new policy set is swapped
    /// in, revoking those it no longer allows. Default false.
    #[serde(default)]
    pub reverify_on_reload: bool,
    /// Per-task settings.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskConfig>,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Where grant events go.
    #[serde(default)]
    pub provisioner: ProvisionerConfig,
    /// `[[provisioners]]`: targets that apply access (LDAP, SCIM,
    /// PostgreSQL, webhook); see [`crate::provision::config`].
    #[serde(default)]
    pub provisioners: Vec<crate::provision::config::ProvisionerSpec>,
    /// `[[entitlements]]`: what an entitlement is at its target.
    #[serde(default)]
    pub entitlements: Vec<crate::provision::config::EntitlementSpec>,
    /// `per-decision` (default: a fresh instance per policy evaluation) or
    /// `per-worker` (one warm instance per policy per thread; only for
    /// policies trusted to be pure).
    #[serde(default)]
    pub isolation: IsolationConfig,
    /// Per-evaluation budget.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// Audit chain anchoring.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The HTTP server's timeouts and connection cap.
    #[serde(default)]
    pub http: HttpConfig,
    /// Flood limits: failed authentications, invalid bodies.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[[ticket-sources]]`: the ticket systems whose webhooks are believed
    /// (see [`crate::ticket::TicketSourceConfig`]).
    #[serde(default)]
    pub ticket_sources: Vec<crate::ticket::TicketSourceConfig>,
    /// OpenID Connect identity providers whose bearer JWTs authenticate
    /// people (see [`crate::identity`]); static tokens stay for pipelines.
    #[serde(default)]
    pub identity_providers: Vec<crate::identity::IdentityProviderConfig>,
    /// `[trust]`: when present, only policy sets signed by these keys load.
    pub trust: Option<TrustConfig>,
    /// `[identity-aliases]`: canonical name → the other names of the same
    /// person (see [`crate::grant::IdentityAliases`]); separation of duties
    /// compares all of them.
    #[serde(default)]
    pub identity_aliases: BTreeMap<String, Vec<String>>,
    /// `[notify]`: settings shared by the notification channels
    /// (docs/notifications.md).
    #[serde(default)]
    pub notify: crate::notify::NotifySettings,
    /// `[[notifications]]`: Slack, e-mail and webhook channels people are
    /// told through (docs/notifications.md).
    #[serde(default)]
    pub notifications: Vec<crate::notify::ChannelConfig>,
}

/// `[trust]`: the keys policy sets must be signed with. Present, it cannot
/// be empty: a `[trust]` block without a key is an error, never "trust
/// everything".
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrustConfig {
    /// Public key files (SPKI PEM, `jitgate keygen --public`).
    #[serde(default)]
    pub public_keys: Vec<PathBuf>,
    /// Distinct trusted keys that must sign a set. Default 1.
    #[serde(default = "default_min_signatures")]
    pub min_signatures: usize,
}

fn default_min_signatures() -> usize {
    1
}

/// `[http]`: the server's timeouts and connection cap, and its TLS
/// certificate. Every default is safe for a service on an untrusted network.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// A client must send its request line and headers within this, ms; an
    /// idle keep-alive connection is closed after it too. Default 10000.
    #[serde(default = "default_header_read_ms")]
    pub header_read_timeout_ms: u64,
    /// A request body must arrive within this, ms. Default 10000.
    #[serde(default = "default_body_read_ms")]
    pub body_read_timeout_ms: u64,
    /// Whole request (body, decision, store), ms; past it: 503. Default 30000.
    #[serde(default = "default_request_ms")]
    pub request_timeout_ms: u64,
    /// Open connections at once; further ones wait in the listen backlog
    /// until a slot frees. Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// PEM certificate chain (leaf first) to serve HTTPS with; with
    /// `tls-key`, `serve` speaks only TLS 1.2/1.3 on its port. A relative
    /// path is relative to the working directory, like every path here.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls-cert`'s leaf.
    pub tls_key: Option<PathBuf>,
}

impl HttpConfig {
    /// Whether `serve` speaks HTTPS (both `tls-cert` and `tls-key` set; a
    /// config with one of them does not pass [`Config::check`]). The
    /// console sets `Secure` on its cookies when this holds.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_ms: default_header_read_ms(),
            body_read_timeout_ms: default_body_read_ms(),
            request_timeout_ms: default_request_ms(),
            max_connections: default_max_connections(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

fn default_header_read_ms() -> u64 {
    10_000
}
fn default_body_read_ms() -> u64 {
    10_000
}
fn default_request_ms() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    1024
}

/// `[limits]`: what a flood of bad requests may cost.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LimitsConfig {
    /// Failed authentications a client address may make in a burst before
    /// it is answered 429. Default 20.
    #[serde(default = "default_auth_burst")]
    pub auth_failure_burst: u32,
    /// Rate at which that allowance refills, per minute. Default 60.
    #[serde(default = "default_auth_per_minute")]
    pub auth_failure_per_minute: u32,
    /// Failed authentications are audited as one record per client address
    /// per window of this many seconds (with the count). Default 60.
    #[serde(default = "default_auth_window")]
    pub auth_failure_window_secs: u32,
    /// Bytes of an invalid request body kept (escaped) in its audit record,
    /// beside its sha256 and size. Default 256.
    #[serde(default = "default_excerpt")]
    pub invalid_body_excerpt_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            auth_failure_burst: default_auth_burst(),
            auth_failure_per_minute: default_auth_per_minute(),
            auth_failure_window_secs: default_auth_window(),
            invalid_body_excerpt_bytes: default_excerpt(),
        }
    }
}

fn default_auth_burst() -> u32 {
    20
}
fn default_auth_per_minute() -> u32 {
    60
}
fn default_auth_window() -> u32 {
    60
}
fn default_excerpt() -> usize {
    256
}
/// `[audit]`: signed checkpoints of the chain head written by `serve`.
/// `checkpoint-dir` and `checkpoint-key` go together; with neither, serve
/// writes none (`jitgate audit checkpoint` still can).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuditConfig {
    /// Folder the checkpoints are written to (created if missing).
    pub checkpoint_dir: Option<PathBuf>,
    /// Ed25519 secret key (PKCS#8 PEM, `jitgate keygen`).
    pub checkpoint_key: Option<PathBuf>,
    /// Minutes between checkpoints (1 to 10080). Default 15.
    pub checkpoint_interval_minutes: Option<u32>,
}

impl AuditConfig {
    /// Default minutes between checkpoints.
    pub const DEFAULT_INTERVAL_MINUTES: u32 = 15;

    /// (folder, key, interval) when serve should write checkpoints.
    pub fn checkpoints(&self) -> Option<(&Path, &Path, std::time::Duration)> {
        let minutes = self
            .checkpoint_interval_minutes
            .unwrap_or(Self::DEFAULT_INTERVAL_MINUTES);
        Some((
            self.checkpoint_dir.as_deref()?,
            self.checkpoint_key.as_deref()?,
            std::time::Duration::from_secs(u64::from(minutes) * 60),
        ))
    }
}

/// `isolation` in the config file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationConfig {
    /// Fresh instance per evaluation.
    #[default]
    PerDecision,
    /// Warm instance per policy per thread.
    PerWorker,
}

/// `[sandbox]`: the per-evaluation budget; unset keys keep the safe defaults
/// (50 ms, 10,000,000 fuel, 16 MiB).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SandboxConfig {
    /// Wall-clock bound per evaluation, milliseconds.
    pub timeout_ms: Option<u64>,
    /// Instruction budget per evaluation.
    pub fuel: Option<u64>,
    /// Cap on every memory and table of one instance, summed, bytes.
    pub max_memory_bytes: Option<usize>,
    /// Modules larger than this are refused before compiling, bytes.
    /// Default 4 MiB.
    pub max_module_bytes: Option<usize>,
    /// Threads that run decisions, off the async workers. Default: one per
    /// two CPUs, no more than the instance pool can serve.
    pub workers: Option<usize>,
    /// Decisions that may wait for a thread; beyond that the answer is 503
    /// with `Retry-After`, and nothing is stored. Default 64 per worker.
    pub queue: Option<usize>,
}

/// Per-task settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TaskConfig {
    /// TTL cap, seconds.
    pub cap: Option<u32>,
    /// Break-glass task: reviewed afterwards.
    #[serde(default)]
    pub break_glass: bool,
    /// Always end grants with their ticket.
    #[serde(default)]
    pub revoke_on_ticket_close: bool,
}

/// One bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TokenConfig {
    /// Principal name (a requester's subject id).
    pub name: String,
    /// Hex sha256 of the token; the token itself is never stored.
    pub sha256: String,
    /// API roles.
    pub roles: BTreeSet<Role>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A requester's job roles.
    #[serde(default)]
    pub subject_roles: Vec<String>,
    /// The kind of subject this token's holder is (`human` or `service`),
    /// set on the requests it makes for itself. Default: the request says.
    pub subject_kind: Option<crate::request::SubjectKind>,
    /// A pipeline whose request bodies may carry ticket facts (state,
    /// priority, assignee, opened-at); they are recorded in the ticket
    /// registry as events of this pipeline (source = `name`). Default false:
    /// ticket facts come from the registry only.
    #[serde(default)]
    pub trusted_context: bool,
}

/// Provisioner choice.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProvisionerConfig {
    /// `log` (default) or `webhook`.
    #[serde(default)]
    pub kind: ProvisionerKind,
    /// Webhook URL.
    pub url: Option<String>,
    /// Environment variable holding the webhook's HMAC secret.
    pub secret_env: Option<String>,
    /// Deadline for one webhook delivery, response body included, ms.
    /// Default 10000, which is also the most (see
    /// [`crate::provision::MAX_TIMEOUT`]: no other replica can claim an
    /// event while it is being sent).
    pub timeout_ms: Option<u64>,
    /// Bytes of a webhook response body read at most. Default 65536.
    pub max_response_bytes: Option<usize>,
    /// A PEM file of CA certificates trusted for an `https://` webhook, in
    /// addition to the system's roots (a private CA). Default none.
    pub ca_file: Option<PathBuf>,
}

/// Built-in provisioners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisionerKind {
    /// Log events.
    #[default]
    Log,
    /// Signed HTTP POST.
    Webhook,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_store() -> String {
    "jitgate.db".into()
}
fn default_policies() -> PathBuf {
    PathBuf::from("target/policies")
}
fn default_cap() -> u32 {
    28_800
}
fn default_timeout() -> u32 {
    3600
}

impl Default for Config {
    fn default() -> Self {
        // An empty document yields every default.
        toml::from_str("").unwrap_or_else(|_| Config {
            listen: default_listen(),
            store: default_store(),
            policies: default_policies(),
            cache_dir: None,
            global_ttl_cap: default_cap(),
            approval_timeout: default_timeout(),
            reverify_on_reload: false,
            tasks: BTreeMap::new(),
            tokens: Vec::new(),
            provisioner: ProvisionerConfig::default(),
            provisioners: Vec::new(),
            entitlements: Vec::new(),
            isolation: IsolationConfig::default(),
            sandbox: SandboxConfig::default(),
            audit: AuditConfig::default(),
            http: HttpConfig::default(),
            limits: LimitsConfig::default(),
            ticket_sources: Vec::new(),
            identity_providers: Vec::new(),
            trust: None,
            identity_aliases: BTreeMap::new(),
            notify: Default::default(),
            notifications: Vec::new(),
        })
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (TOML errors name the key and line).
    pub message: String,
}

impl Config {
    /// Parse and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        cfg.check().map_err(err)?;
        Ok(cfg)
    }

    /// Cross-field checks.
    pub fn check(&self) -> Result<(), String> {
        if self.global_ttl_cap == 0 {
            return Err("global-ttl-cap: must be at least 1 second".into());
        }
        if self.sandbox.timeout_ms == Some(0) {
            return Err("sandbox.timeout-ms: must be at least 1".into());
        }
        if self.sandbox.fuel == Some(0) {
            return Err("sandbox.fuel: must be at least 1".into());
        }
        if self.sandbox.max_memory_bytes.is_some_and(|m| m < (1 << 20)) {
            return Err("sandbox.max-memory-bytes: must be at least 1 MiB (a policy's stack alone takes that)".into());
        }
        if self.sandbox.max_module_bytes == Some(0) {
            return Err("sandbox.max-module-bytes: must be at least 1".into());
        }
        if self.sandbox.workers == Some(0) {
            return Err("sandbox.workers: must be at least 1".into());
        }
        if self.sandbox.queue == Some(0) {
            return Err("sandbox.queue: must be at least 1".into());
        }
        if self.approval_timeout == 0 {
            return Err("approval-timeout: must be at least 1 second".into());
        }
        for (name, t) in &self.tasks {
            if t.cap == Some(0) {
                return Err(format!("tasks.{name}.cap: must be at least 1 second"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "tokens[{i}].sha256: must be 64 hex digits (the sha256 of the token)"
                ));
            }
            if !seen.insert(t.sha256.to_ascii_lowercase()) {
                return Err(format!(
                    "tokens[{i}].sha256: the same token is configured twice"
                ));
            }
            if t.roles.is_empty() {
                return Err(format!("tokens[{i}].roles: give at least one role"));
            }
        }
        match (&self.audit.checkpoint_dir, &self.audit.checkpoint_key) {
            (Some(_), None) => {
                return Err("audit.checkpoint-key: required with audit.checkpoint-dir".into());
            }
            (None, Some(_)) => {
                return Err("audit.checkpoint-dir: required with audit.checkpoint-key".into());
            }
            _ => {}
        }
        if let Some(m) = self.audit.checkpoint_interval_minutes
            && !(1..=10_080).contains(&m)
        {
            return Err(format!(
                "audit.checkpoint-interval-minutes: {m} is out of range (1 to 10080, a week)"
            ));
        }
        let most = crate::provision::MAX_TIMEOUT.as_millis() as u64;
        if self
            .provisioner
            .timeout_ms
            .is_some_and(|t| t == 0 || t > most)
        {
            return Err(format!(
                "provisioner.timeout-ms: must be 1 to {most} (a delivery must end well within the 30 s outbox lease)"
            ));
        }
        if self.provisioner.max_response_bytes == Some(0) {
            return Err("provisioner.max-response-bytes: must be at least 1".into());
        }
        for (key, v) in [
            (
                "http.header-read-timeout-ms",
                self.http.header_read_timeout_ms,
            ),
            ("http.body-read-timeout-ms", self.http.body_read_timeout_ms),
            ("http.request-timeout-ms", self.http.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        if self.http.max_connections == 0 {
            return Err("http.max-connections: must be at least 1".into());
        }
        match (&self.http.tls_cert, &self.http.tls_key) {
            (Some(_), None) => {
                return Err("http.tls-key: required with http.tls-cert".into());
            }
            (None, Some(_)) => {
                return Err("http.tls-cert: required with http.tls-key".into());
            }
            _ => {}
        }
        if self.limits.auth_failure_burst == 0 {
            return Err("limits.auth-failure-burst: must be at least 1".into());
        }
        if self.limits.auth_failure_per_minute == 0 {
            return Err("limits.auth-failure-per-minute: must be at least 1".into());
        }
        if self.limits.auth_failure_window_secs == 0 {
            return Err("limits.auth-failure-window-secs: must be at least 1".into());
        }
        if self.limits.invalid_body_excerpt_bytes > 64 * 1024 {
            return Err("limits.invalid-body-excerpt-bytes: at most 65536".into());
        }
        crate::ticket::check_sources(&self.ticket_sources)?;
        for (i, t) in self.tokens.iter().enumerate() {
            if !t.trusted_context {
                continue;
            }
            if !t.roles.contains(&Role::Pipeline) {
                return Err(format!(
                    "tokens[{i}].trusted-context: only for a token with the `pipeline` role"
                ));
            }
            // The pipeline's name is the source of its ticket events: it must
            // not speak for a ticket system, nor share a name with an
            // untrusted token.
            if self.ticket_sources.iter().any(|s| s.name == t.name) {
                return Err(format!(
                    "tokens[{i}].trusted-context: `{}` is also a ticket source's name",
                    t.name
                ));
            }
            if self
                .tokens
                .iter()
                .any(|o| o.name == t.name && !o.trusted_context)
            {
                return Err(format!(
                    "tokens[{i}].trusted-context: another token named `{}` is not trusted",
                    t.name
                ));
            }
        }
        crate::identity::check_providers(&self.identity_providers)?;
        crate::grant::IdentityAliases::new(&self.identity_aliases)?;
        if let Some(t) = &self.trust {
            if t.public_keys.is_empty() {
                return Err(
                    "trust.public-keys: a [trust] block needs at least one public key \
                     (verification is never switched off by omission)"
                        .into(),
                );
            }
            if t.min_signatures == 0 {
                return Err("trust.min-signatures: must be at least 1".into());
            }
            if t.min_signatures > t.public_keys.len() {
                return Err(format!(
                    "trust.min-signatures: {} exceeds the {} public keys listed",
                    t.min_signatures,
                    t.public_keys.len()
                ));
            }
        }
        crate::provision::config::check(&self.provisioners, &self.entitlements)?;
        if self.provisioner.kind == ProvisionerKind::Webhook {
            if self.provisioner.url.is_none() {
                return Err("provisioner.url: required for kind = \"webhook\"".into());
            }
            if self.provisioner.secret_env.is_none() {
                return Err("provisioner.secret-env: required for kind = \"webhook\"".into());
            }
        }
        Ok(())
    }

    /// The trust anchors of `[trust]`, keys read; `None` without the block.
    pub fn trust(&self) -> Result<Option<crate::policy_set::Trust>, String> {
        self.trust
            .as_ref()
            .map(|t| {
                crate::policy_set::Trust::from_files(&t.public_keys, t.min_signatures)
                    .map_err(|e| format!("trust.public-keys: {e}"))
            })
            .transpose()
    }

    /// The engine settings this config implies.
    pub fn engine_config(&self) -> EngineConfig {
        let mut sandbox = crate::SandboxLimits::default();
        if let Some(t) = self.sandbox.timeout_ms {
            sandbox.timeout = std::time::Duration::from_millis(t);
        }
        if let Some(f) = self.sandbox.fuel {
            sandbox.fuel = f;
        }
        if let Some(m) = self.sandbox.max_memory_bytes {
            sandbox.max_memory_bytes = m;
        }
        if let Some(m) = self.sandbox.max_module_bytes {
            sandbox.max_module_bytes = m;
        }
        EngineConfig {
            sandbox,
            workers: self.sandbox.workers,
            queue: self.sandbox.queue,
            isolation: match self.isolation {
                IsolationConfig::PerDecision => crate::Isolation::PerDecision,
                IsolationConfig::PerWorker => crate::Isolation::PerWorker,
            },
            global_ttl_cap: self.global_ttl_cap,
            task_caps: self
                .tasks
                .iter()
                .filter_map(|(k, t)| t.cap.map(|c| (k.clone(), c)))
                .collect(),
            force_revoke_on_ticket_close: self
                .tasks
                .iter()
                .filter(|(_, t)| t.revoke_on_ticket_close)
                .map(|(k, _)| k.clone())
                .collect(),
            cache_dir: self.cache_dir.clone(),
            ..EngineConfig::default()
        }
    }

    /// The service settings this config implies.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            approval_timeout_secs: self.approval_timeout,
            break_glass_tasks: self
                .tasks
                .iter()
                .filter(|(_, t)| t.break_glass)
                .map(|(k, _)| k.clone())
                .collect(),
            invalid_body_excerpt_bytes: self.limits.invalid_body_excerpt_bytes,
            // Checked by `check`; an unusable table adds no alias.
            identity_aliases: crate::grant::IdentityAliases::new(&self.identity_aliases)
                .unwrap_or_default(),
            reverify_on_reload: self.reverify_on_reload,
        }
    }

    /// The HTTP server's limits this config implies.
    pub fn http_limits(&self) -> crate::api::server::HttpLimits {
        use std::time::Duration;
        crate::api::server::HttpLimits {
            header_read_timeout: Duration::from_millis(self.http.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(self.http.body_read_timeout_ms),
            request_timeout: Duration::from_millis(self.http.request_timeout_ms),
            max_connections: self.http.max_connections,
        }
    }

    /// The authentication-failure limits this config implies.
    pub fn auth_limits(&self) -> crate::api::guard::AuthLimits {
        crate::api::guard::AuthLimits {
            burst: self.limits.auth_failure_burst,
            per_minute: self.limits.auth_failure_per_minute,
            window: std::time::Duration::from_secs(u64::from(self.limits.auth_failure_window_secs)),
        }
    }

    /// Names of the pipelines whose tokens say `trusted-context = true`.
    pub fn trusted_context(&self) -> BTreeSet<String> {
        self.tokens
            .iter()
            .filter(|t| t.trusted_context)
            .map(|t| t.name.clone())
            .collect()
    }

    /// The checked `[[ticket-sources]]` with their secrets read from the
    /// environment by `lookup`.
    pub fn ticket_sources(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<crate::ticket::TicketSource>, String> {
        self.ticket_sources
            .iter()
            .enumerate()
            .map(|(i, s)| crate::ticket::TicketSource::from_env(i, s, &lookup))
            .collect()
    }

    /// Token hash → principal.
    pub fn principals(&self) -> BTreeMap<String, Principal> {
        self.tokens
            .iter()
            .map(|t| {
                (
                    t.sha256.to_ascii_lowercase(),
                    Principal {
                        name: t.name.clone(),
                        roles: t.roles.clone(),
                        groups: t.groups.clone(),
                        subject_roles: t.subject_roles.clone(),
                        kind: t.subject_kind,
                        ..Principal::default()
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.global_ttl_cap, 28_800);
        assert_eq!(c.provisioner.kind, ProvisionerKind::Log);
    }

    #[test]
    fn store_is_a_sqlite_path_or_a_postgres_url() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.store, "jitgate.db");
        assert!(!crate::store::is_postgres(&c.store));
        let c: Config = toml::from_str("store = \"postgres://jg:secret@db:5432/jitgate\"").unwrap();
        assert!(crate::store::is_postgres(&c.store));
        assert_eq!(
            crate::store::redacted(&c.store),
            "postgres://jg@db:5432/jitgate"
        );
        assert!(crate::store::is_postgres("postgresql://db/jitgate"));
        assert!(!crate::store::is_postgres("/var/lib/postgres.db"));
    }

    /// Issue 9 item 8: `?password=` (and the other places libpq reads a
    /// password from) reached stdout and the config-load audit record.
    #[test]
    fn store_password_in_query_userinfo_or_key_value_is_redacted() {
        use crate::store::redacted;
        for (store, want) in [
            (
                "postgres://jg:s3cret@db:5432/jitgate",
                "postgres://jg@db:5432/jitgate",
            ),
            (
                "postgres://jg@db/jitgate?password=s3cret",
                "postgres://jg@db/jitgate?password=REDACTED",
            ),
            (
                "postgresql://db/jitgate?sslmode=disable&PASSWORD=s3cret&application_name=x",
                "postgresql://db/jitgate?sslmode=disable&PASSWORD=REDACTED&application_name=x",
            ),
            (
                "postgres://jg:a:b@db/j?sslpassword=s3cret&password=s3cret",
                "postgres://jg@db/j?sslpassword=REDACTED&password=REDACTED",
            ),
            (
                "host=db user=jg password = 's3 cr\\'et' dbname=j",
                "host=db user=jg password = REDACTED dbname=j",
            ),
            ("host=db password=s3cret", "host=db password=REDACTED"),
            ("jitgate.db", "jitgate.db"),
            ("/srv/mypassword=x.db", "/srv/mypassword=x.db"),
        ] {
            let got = redacted(store);
            assert_eq!(got, want, "{store}");
            assert!(!got.contains("s3"), "{got}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = toml::from_str::<Config>("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listn"), "{e}");
        let e = toml::from_str::<Config>("[tasks.x]\ncapp = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capp"), "{e}");
        let e = toml::from_str::<Config>("[[tokens]]\nname='a'\nsha256='x'\nroles=['root']\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("root"), "{e}");
    }

    #[test]
    fn checks_name_the_key() {
        let c: Config =
            toml::from_str("[[tokens]]\nname='a'\nsha256='abc'\nroles=['admin']\n").unwrap();
        assert!(c.check().unwrap_err().starts_with("tokens[0].sha256"));
        let c: Config = toml::from_str("[provisioner]\nkind='webhook'\n").unwrap();
        assert!(c.check().unwrap_err().starts_with("provisioner.url"));
        let c: Config = toml::from_str("[tasks.bg]\ncap=0\n").unwrap();
        assert!(c.check().unwrap_err().starts_with("tasks.bg.cap"));
        for (toml, key) in [
            ("[audit]\ncheckpoint-dir = 'cps'\n", "audit.checkpoint-key"),
            ("[audit]\ncheckpoint-key = 'k'\n", "audit.checkpoint-dir"),
            (
                "[audit]\ncheckpoint-dir = 'c'\ncheckpoint-key = 'k'\ncheckpoint-interval-minutes = 0\n",
                "audit.checkpoint-interval-minutes",
            ),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            assert!(c.check().unwrap_err().starts_with(key), "{toml}");
        }
        let c: Config =
            toml::from_str("[audit]\ncheckpoint-dir = 'c'\ncheckpoint-key = 'k'\n").unwrap();
        assert_eq!(
            c.audit.checkpoints().map(|(_, _, every)| every.as_secs()),
            Some(15 * 60)
        );
        let c: Config = toml::from_str("[sandbox]\nmax-memory-bytes = 1000\n").unwrap();
        assert!(
            c.check()
                .unwrap_err()
                .starts_with("sandbox.max-memory-bytes")
        );
    }

    #[test]
    fn limits_default_safe_and_bad_ones_are_named() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.http.header_read_timeout_ms, 10_000);
        assert_eq!(c.http.body_read_timeout_ms, 10_000);
        assert_eq!(c.http.request_timeout_ms, 30_000);
        assert_eq!(c.http.max_connections, 1024);
        assert_eq!(c.limits.auth_failure_burst, 20);
        assert_eq!(c.limits.auth_failure_per_minute, 60);
        assert_eq!(c.limits.auth_failure_window_secs, 60);
        assert_eq!(c.limits.invalid_body_excerpt_bytes, 256);
        for (doc, key) in [
            ("[http]\nmax-connections = 0\n", "http.max-connections"),
            (
                "[http]\nheader-read-timeout-ms = 0\n",
                "http.header-read-timeout-ms",
            ),
            (
                "[limits]\nauth-failure-burst = 0\n",
                "limits.auth-failure-burst",
            ),
            (
                "[provisioner]\ntimeout-ms = 60000\n",
                "provisioner.timeout-ms",
            ),
        ] {
            let c: Config = toml::from_str(doc).unwrap();
            assert!(c.check().unwrap_err().starts_with(key), "{doc}");
        }
        for (doc, key) in [
            ("[http]\ntls-cert = 'c.pem'\n", "http.tls-key:"),
            ("[http]\ntls-key = 'k.pem'\n", "http.tls-cert:"),
        ] {
            let c: Config = toml::from_str(doc).unwrap();
            assert!(!c.http.tls());
            let e = c.check().unwrap_err();
            assert!(e.starts_with(key), "{doc}: {e}");
        }
        let c: Config = toml::from_str("[http]\ntls-cert = 'c.pem'\ntls-key = 'k.pem'\n").unwrap();
        c.check().unwrap();
        assert!(c.http.tls());
        assert!(!Config::default().http.tls());
        let e = toml::from_str::<Config>("[http]\nmax-conections = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max-conections"), "{e}");
    }

    #[test]
    fn trusted_context_is_for_pipelines_that_speak_for_no_ticket_source() {
        let token = |name: &str, roles: &str, trusted: bool| {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
                "{name}{roles}{trusted}"
            )));
            format!(
                "[[tokens]]\nname = '{name}'\nsha256 = '{hash}'\nroles = [{roles}]\ntrusted-context = {trusted}\n"
            )
        };
        let jira = "[[ticket-sources]]\nname = 'jira'\nkind = 'jira'\nsecret-env = 'J'\n";
        let ok: Config = toml::from_str(&format!(
            "{jira}{}{}",
            token("ci", "'pipeline'", true),
            token("alice", "'requester'", false)
        ))
        .unwrap();
        ok.check().unwrap();
        assert_eq!(ok.trusted_context(), BTreeSet::from(["ci".to_string()]));
        for (doc, why) in [
            (token("alice", "'requester'", true), "`pipeline` role"),
            (
                format!("{jira}{}", token("jira", "'pipeline'", true)),
                "ticket source",
            ),
            (
                format!(
                    "{}{}",
                    token("ci", "'pipeline'", true),
                    token("ci", "'pipeline'", false)
                ),
                "not trusted",
            ),
        ] {
            let c: Config = toml::from_str(&doc).unwrap();
            let e = c.check().unwrap_err();
            assert!(e.starts_with("tokens[") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn ticket_sources_are_read_and_checked() {
        let c: Config = toml::from_str(
            "[[ticket-sources]]\nname = 'jira'\nkind = 'jira'\nsecret-env = 'JIRA_SECRET'\n\
             states = { 'Waiting for customer' = 'on-hold' }\n\
             [[ticket-sources]]\nname = 'snow'\nkind = 'servicenow'\nsecret-env = 'SNOW'\n\
             secret-header = 'X-Snow-Secret'\nreconcile-interval = 60\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.ticket_sources.len(), 2);
        assert_eq!(c.ticket_sources[1].reconcile_interval, 60);
        assert!(Config::default().ticket_sources.is_empty());
        let c: Config = toml::from_str(
            "[[ticket-sources]]\nname = 'a'\nkind = 'generic'\nsecret-env = 'A'\n\
             [[ticket-sources]]\nname = 'b'\nkind = 'zendesk'\nsecret-env = 'B'\n\
             states = { hold = 'waiting' }\n",
        )
        .unwrap();
        let e = c.check().unwrap_err();
        assert!(e.starts_with("ticket-sources[1].states"), "{e}");
        let e = toml::from_str::<Config>(
            "[[ticket-sources]]\nname = 'a'\nkind = 'generic'\nsecret-env = 'A'\nsecret = 'x'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("secret"), "{e}");
    }

    #[test]
    fn token_subject_kind_and_identity_aliases_are_read_and_checked() {
        let c: Config = toml::from_str(
            "[[tokens]]\nname='ci'\nsha256='AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'\nroles=['requester']\nsubject-kind='service'\n\
             [[tokens]]\nname='amy'\nsha256='cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc'\nroles=['requester']\n\
             [identity-aliases]\n'alice@example.com' = ['alice', 'a.smith']\n",
        )
        .unwrap();
        c.check().unwrap();
        let p = c.principals();
        let (ci, amy) = (&p[&"a".repeat(64)], &p[&"c".repeat(64)]);
        assert_eq!(ci.kind, Some(crate::request::SubjectKind::Service));
        assert_eq!(amy.kind, None, "default: the request says");
        assert_eq!(
            c.service_config().identity_aliases.others("ALICE"),
            ["a.smith", "alice@example.com"]
        );
        let e = toml::from_str::<Config>(
            "[[tokens]]\nname='a'\nsha256='x'\nroles=[]\nsubject-kind='robot'\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("robot"), "{e}");
        let c: Config =
            toml::from_str("[identity-aliases]\nalice = ['ops']\nbob = ['Ops']\n").unwrap();
        let e = c.check().unwrap_err();
        assert!(e.starts_with("identity-aliases.bob:"), "{e}");
    }

    #[test]
    fn trust_block_without_key_is_a_configuration_error() {
        for doc in [
            "[trust]\n",
            "[trust]\npublic-keys = []\n",
            "[trust]\nmin-signatures = 1\n",
        ] {
            let c: Config = toml::from_str(doc).unwrap();
            let e = c.check().unwrap_err();
            assert!(e.starts_with("trust.public-keys"), "{doc}: {e}");
        }
        let c: Config =
            toml::from_str("[trust]\npublic-keys = ['a.pub']\nmin-signatures = 2\n").unwrap();
        assert!(c.check().unwrap_err().starts_with("trust.min-signatures"));
        let c: Config =
            toml::from_str("[trust]\npublic-keys = ['a.pub']\nmin-signatures = 0\n").unwrap();
        assert!(c.check().unwrap_err().starts_with("trust.min-signatures"));
        let e = toml::from_str::<Config>("[trust]\npublic-key = ['a.pub']\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("public-key"), "{e}");
        let c: Config = toml::from_str("[trust]\npublic-keys = ['/nonexistent/a.pub']\n").unwrap();
        c.check().unwrap();
        assert!(c.trust().unwrap_err().starts_with("trust.public-keys"));
        assert!(Config::default().trust().unwrap().is_none());
    }

    #[test]
    fn isolation_and_sandbox_reach_the_engine() {
        let c: Config =
            toml::from_str("isolation = \"per-worker\"\n[sandbox]\ntimeout-ms = 20\nfuel = 500\n")
                .unwrap();
        let e = c.engine_config();
        assert_eq!(e.isolation, crate::Isolation::PerWorker);
        assert_eq!(e.sandbox.timeout, std::time::Duration::from_millis(20));
        assert_eq!(e.sandbox.fuel, 500);
        assert!(toml::from_str::<Config>("isolation = \"per-thread\"").is_err());
    }

    #[test]
    fn module_size_and_decision_pool_reach_the_engine() {
        let c: Config =
            toml::from_str("[sandbox]\nmax-module-bytes = 1000\nworkers = 3\nqueue = 7\n").unwrap();
        c.check().unwrap();
        let e = c.engine_config();
        assert_eq!(e.sandbox.max_module_bytes, 1000);
        assert_eq!((e.workers, e.queue), (Some(3), Some(7)));
        for key in ["max-module-bytes", "workers", "queue"] {
            let c: Config = toml::from_str(&format!("[sandbox]\n{key} = 0\n")).unwrap();
            let err = c.check().unwrap_err();
            assert!(err.starts_with(&format!("sandbox.{key}:")), "{err}");
        }
    }
}
