//! The checks most access policies repeat, written once so they are written
//! right: MFA freshness with clock skew, bounded time-zone offsets, TTL caps.

use crate::types::Request;

/// How old the subject's last MFA is, relative to the request's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaAge {
    /// The identity provider reported no MFA.
    Missing,
    /// The MFA time is after `now`: a skewed or forged claim.
    InFuture,
    /// Seconds between the MFA and `now`.
    Age(u64),
}

impl MfaAge {
    /// MFA present, not in the future, and at most `max_age` seconds old.
    pub fn within(self, max_age: u64) -> bool {
        matches!(self, MfaAge::Age(a) if a <= max_age)
    }
}

impl Request {
    /// Age of the subject's MFA at `now`.
    pub fn mfa_age(&self) -> MfaAge {
        match self.subject.mfa_at {
            None => MfaAge::Missing,
            Some(at) if at > self.now => MfaAge::InFuture,
            Some(at) => MfaAge::Age(self.now - at),
        }
    }
}

/// `min(requested, cap)`: a policy never grants more than was asked for nor
/// more than its own cap.
pub fn clamp_ttl(requested: u32, cap: u32) -> u32 {
    requested.min(cap)
}

/// Why a time-zone offset attribute was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TzOffsetError {
    /// Not a base-10 integer.
    NotAnInteger,
    /// An integer outside −840..=840 minutes (UTC−14:00 … UTC+14:00).
    OutOfRange(i64),
}

impl core::fmt::Display for TzOffsetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TzOffsetError::NotAnInteger => f.write_str("is not an integer"),
            TzOffsetError::OutOfRange(v) => write!(f, "{v} is outside -840..=840"),
        }
    }
}

/// Parse a time-zone offset in minutes; an absent value means UTC.
///
/// Real offsets span UTC−12:00 to UTC+14:00, so anything beyond ±14 h is a
/// malformed attribute, and a policy should deny rather than guess.
pub fn parse_tz_offset(value: Option<&str>) -> Result<i32, TzOffsetError> {
    let Some(raw) = value else { return Ok(0) };
    let parsed: i64 = raw.parse().map_err(|_| TzOffsetError::NotAnInteger)?;
    if (-840..=840).contains(&parsed) {
        Ok(parsed as i32)
    } else {
        Err(TzOffsetError::OutOfRange(parsed))
    }
}
