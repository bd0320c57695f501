//! Webhook authentication, over the raw bytes, before any parsing.
//!
//! Every comparison of attacker-supplied proof with what the secret implies
//! goes through `Mac::verify_slice` (constant time): a byte-by-byte compare
//! that stops at the first difference lets an attacker learn a valid
//! signature one byte at a time from response times.

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{KeyInit, Mac};

use super::config::{TicketSource, WebhookAuth};
use super::{AuthError, TicketError};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Largest webhook body accepted, bytes. Jira issue payloads with long
/// descriptions and changelogs reach a few hundred KiB; more than this is
/// refused before a byte is hashed.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// How far a signed timestamp may lie from now, either way, ms: older is a
/// replay, newer a pre-signed event kept for later.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// Jira's signature header.
pub const JIRA_SIGNATURE: &str = "x-hub-signature";
/// Jira's delivery id (not covered by the signature).
pub const JIRA_WEBHOOK_ID: &str = "x-atlassian-webhook-identifier";
/// Zendesk's signature header.
pub const ZENDESK_SIGNATURE: &str = "x-zendesk-webhook-signature";
/// Zendesk's signed timestamp header.
pub const ZENDESK_TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";
/// jitgate's signature header.
pub const JITGATE_SIGNATURE: &str = "x-jitgate-signature";
/// jitgate's signed timestamp header (Unix ms).
pub const JITGATE_TIMESTAMP: &str = "x-jitgate-timestamp";

/// A body whose sender proved it holds the source's secret: the only input
/// [`TicketSource::parse`] takes, so nothing can parse an unverified body.
#[derive(Debug)]
pub struct Verified<'a> {
    pub(crate) body: &'a [u8],
    /// Jira's `X-Atlassian-Webhook-Identifier`, checked like any field.
    pub(crate) delivery_id: Option<String>,
}

impl Verified<'_> {
    /// The verified bytes.
    pub fn body(&self) -> &[u8] {
        self.body
    }
}

/// The one value of header `name`: a repeated signature header is refused,
/// since which copy a proxy forwards or a reader picks is not defined.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut all = headers.get_all(name).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(AuthError::RepeatedHeader(name.to_string()));
    }
    v.to_str().map(Some).map_err(|_| AuthError::Malformed {
        header: name.to_string(),
        message: "is not visible ASCII".into(),
    })
}

fn required<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, AuthError> {
    single(headers, name)?.ok_or_else(|| AuthError::MissingHeader(name.to_string()))
}

fn mac(secret: &[u8]) -> Result<HmacSha256, AuthError> {
    // HMAC takes keys of any length; this cannot fail, but a failure must
    // not become a pass.
    HmacSha256::new_from_slice(secret).map_err(|_| AuthError::BadSignature)
}

/// `sha256=<64 hex digits>` → the 32 bytes.
fn sha256_hex(header: &str, v: &str) -> Result<Vec<u8>, AuthError> {
    let hex_part = v.strip_prefix("sha256=").ok_or(AuthError::Malformed {
        header: header.into(),
        message: "must be `sha256=<hex>`".into(),
    })?;
    if hex_part.len() != 64 {
        return Err(AuthError::Malformed {
            header: header.into(),
            message: "must hold 64 hex digits".into(),
        });
    }
    hex::decode(hex_part).map_err(|_| AuthError::Malformed {
        header: header.into(),
        message: "must hold 64 hex digits".into(),
    })
}

/// Equal in constant time, lengths included: both sides are reduced to
/// MACs under the secret, compared by `verify_slice`.
fn ct_eq(secret: &[u8], given: &[u8], expected: &[u8]) -> Result<(), AuthError> {
    let mut a = mac(secret)?;
    a.update(given);
    let mut b = mac(secret)?;
    b.update(expected);
    a.verify_slice(&b.finalize().into_bytes())
        .map_err(|_| AuthError::BadSignature)
}

fn window(header: &str, ts_ms: u64, now_ms: u64) -> Result<(), AuthError> {
    let skew = ts_ms.abs_diff(now_ms);
    if skew > MAX_SKEW_MS {
        return Err(AuthError::OutOfWindow {
            header: header.into(),
            skew_ms: skew,
            future: ts_ms > now_ms,
        });
    }
    Ok(())
}

impl TicketSource {
    /// Check that `body` was sent by this source's system: its signature
    /// (or shared secret) over the raw bytes, and for zendesk and generic a
    /// signed timestamp within [`MAX_SKEW_MS`] of `now_ms` (Unix ms).
    /// Nothing of the body is read before this succeeds.
    pub fn verify<'a>(
        &self,
        headers: &HeaderMap,
        body: &'a [u8],
        now_ms: u64,
    ) -> Result<Verified<'a>, TicketError> {
        if body.len() > MAX_EVENT_BYTES {
            return Err(TicketError::TooLarge {
                bytes: body.len(),
                max: MAX_EVENT_BYTES,
            });
        }
        let mut delivery_id = None;
        match &self.auth {
            WebhookAuth::Jira => {
                let sig = sha256_hex(JIRA_SIGNATURE, required(headers, JIRA_SIGNATURE)?)?;
                let mut m = mac(&self.secret)?;
                m.update(body);
                m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;
                // Read only after the body is proven; checked by the parser.
                delivery_id = single(headers, JIRA_WEBHOOK_ID)?.map(str::to_owned);
            }
            WebhookAuth::SharedSecretHeader(name) => {
                let given = required(headers, name)?;
                ct_eq(&self.secret, given.as_bytes(), &self.secret)?;
            }
            WebhookAuth::Basic => {
                let v = required(headers, "authorization")?;
                let (scheme, rest) = v.split_once(' ').ok_or(AuthError::Malformed {
                    header: "authorization".into(),
                    message: "must be `Basic <base64>`".into(),
                })?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return Err(AuthError::Malformed {
                        header: "authorization".into(),
                        message: "must be `Basic <base64>`".into(),
                    }
                    .into());
                }
                let given = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .map_err(|_| AuthError::Malformed {
                        header: "authorization".into(),
                        message: "is not base64".into(),
                    })?;
                ct_eq(&self.secret, &given, &self.secret)?;
            }
            WebhookAuth::Zendesk => {
                let sig_b64 = required(headers, ZENDESK_SIGNATURE)?;
                let ts = required(headers, ZENDESK_TIMESTAMP)?;
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(sig_b64)
                    .map_err(|_| AuthError::Malformed {
                        header: ZENDESK_SIGNATURE.into(),
                        message: "is not base64".into(),
                    })?;
                let mut m = mac(&self.secret)?;
                m.update(ts.as_bytes());
                m.update(body);
                m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;
                // The window is checked after the signature, so "stale" is
                // only ever said of a genuine event: a replay.
                let ts_ms = super::parse::rfc3339_ms(ts).map_err(|m| AuthError::Malformed {
                    header: ZENDESK_TIMESTAMP.into(),
                    message: m,
                })?;
                window(ZENDESK_TIMESTAMP, ts_ms, now_ms)?;
            }
            WebhookAuth::Generic => {
                let sig = sha256_hex(JITGATE_SIGNATURE, required(headers, JITGATE_SIGNATURE)?)?;
                let ts = required(headers, JITGATE_TIMESTAMP)?;
                let mut m = mac(&self.secret)?;
                m.update(ts.as_bytes());
                m.update(b".");
                m.update(body);
                m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;
                let ts_ms =
                    if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
                        None
                    } else {
                        ts.parse::<u64>().ok()
                    }
                    .ok_or(AuthError::Malformed {
                        header: JITGATE_TIMESTAMP.into(),
                        message: "must be Unix milliseconds".into(),
                    })?;
                window(JITGATE_TIMESTAMP, ts_ms, now_ms)?;
            }
        }
        Ok(Verified { body, delivery_id })
    }
}
