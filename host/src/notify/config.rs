//! `[notify]` and `[[notifications]]` in jitgate.toml (docs/notifications.md).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[notify]`: settings shared by every channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotifySettings {
    /// Base URL of the console; notices link to `<console-url>/grants/<id>`.
    /// Without it, notices carry no link.
    pub console_url: Option<String>,
    /// `grant-expiring` is sent this many seconds before `expires-at`.
    /// Default 900 (15 minutes); grants shorter than that get none.
    #[serde(default = "default_lead")]
    pub expiring_lead_seconds: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            console_url: None,
            expiring_lead_seconds: default_lead(),
        }
    }
}

fn default_lead() -> u32 {
    900
}

impl NotifySettings {
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.console_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.parse::<hyper::Uri>().is_ok_and(|u| u.host().is_some())
                && !url
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || "<>|`\"".contains(c));
            if !ok {
                return Err(format!(
                    "notify.console-url: `{}` is not an http(s) URL with a host",
                    super::clean(url)
                ));
            }
        }
        if self.expiring_lead_seconds == 0 {
            return Err("notify.expiring-lead-seconds: must be at least 1".into());
        }
        Ok(())
    }
}

/// Which transport a channel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// A Slack incoming webhook (`url` / `url-env`).
    Slack,
    /// E-mail over SMTP (`smtp-host`, `from`, `recipients`).
    Email,
    /// The notice JSON POSTed and HMAC-signed like a provisioning webhook.
    Webhook,
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the loopback interface.
    None,
}

/// One `[[notifications]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name (part of event ids). Default: the kind.
    pub name: Option<String>,
    /// `slack`, `email` or `webhook`.
    pub kind: ChannelKind,
    /// Which notices this channel gets. Default: all six.
    pub events: Option<Vec<String>>,
    /// slack / webhook: the URL (prefer `url-env` for Slack: the URL is the secret).
    pub url: Option<String>,
    /// slack / webhook: environment variable holding the URL.
    pub url_env: Option<String>,
    /// webhook: environment variable holding the HMAC secret (≥ 16 bytes).
    pub secret_env: Option<String>,
    /// slack / webhook: a PEM file of extra CA certificates to trust.
    pub ca_file: Option<std::path::PathBuf>,
    /// email: the SMTP relay.
    pub smtp_host: Option<String>,
    /// email: its port. Default 587 (starttls), 465 (tls), 25 (none).
    pub smtp_port: Option<u16>,
    /// email: `starttls` (default), `tls` or `none` (loopback only).
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// email: SMTP user name (with `smtp-password-env`).
    pub smtp_username: Option<String>,
    /// email: environment variable holding the SMTP password.
    pub smtp_password_env: Option<String>,
    /// email: the sender address.
    pub from: Option<String>,
    /// email: who is told. Keys are subject names (`alice`) or
    /// `group:<name>` for approver groups; values are addresses. A key
    /// `"*"` catches requesters not listed.
    #[serde(default)]
    pub recipients: BTreeMap<String, Vec<String>>,
}
