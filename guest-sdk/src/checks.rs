//! The checks most access policies repeat, written once so they are written
//! right: MFA freshness with clock skew, bounded time-zone offsets, TTL caps.

use crate::types::Request;

/// How old the subject's last MFA is, relative to the request's `now`.
///
/// Returned by [`Request::mfa_age`]. Match on it when the three cases need
/// different answers; use [`MfaAge::within`] when they do not.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// fn judge(req: &Request) -> Verdict {
///     match req.mfa_age() {
///         MfaAge::Missing => Verdict::deny("sign in again with MFA"),
///         MfaAge::InFuture => Verdict::deny("the MFA time is in the future; refusing a skewed claim"),
///         MfaAge::Age(secs) if secs > 900 => Verdict::deny("MFA older than 15 minutes; sign in again"),
///         MfaAge::Age(_) => Verdict::not_applicable(),
///     }
/// }
///
/// let req = RequestBuilder::new("file-recovery").mfa_at(None).build();
/// assert_eq!(judge(&req).reason(), Some("sign in again with MFA"));
/// let req = RequestBuilder::new("file-recovery").build(); // MFA 60 s ago
/// assert_eq!(judge(&req), Verdict::not_applicable());
/// ```
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
    ///
    /// ```
    /// use jitgate_sdk::MfaAge;
    ///
    /// assert!(MfaAge::Age(900).within(900)); // the bound is inclusive
    /// assert!(!MfaAge::Age(901).within(900));
    /// assert!(!MfaAge::Missing.within(900));
    /// assert!(!MfaAge::InFuture.within(u64::MAX));
    /// ```
    pub fn within(self, max_age: u64) -> bool {
        matches!(self, MfaAge::Age(a) if a <= max_age)
    }
}

impl Request {
    /// Age of the subject's last MFA ([`Subject::mfa_at`](crate::Subject::mfa_at))
    /// at the request's `now`.
    ///
    /// [`MfaAge::Missing`] when the identity provider reported no MFA,
    /// [`MfaAge::InFuture`] when `mfa_at` is later than `now` (no tolerance:
    /// a clock running ahead or a forged claim must not count as fresh), else
    /// [`MfaAge::Age`] with `now - mfa_at` in seconds. Comparing against `now`
    /// rather than a clock keeps the decision reproducible.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    /// use jitgate_sdk::testing::{RequestBuilder, WEDNESDAY_10_UTC};
    ///
    /// // The builder's subject did MFA 60 seconds before `now`.
    /// let req = RequestBuilder::new("file-recovery").build();
    /// assert_eq!(req.mfa_age(), MfaAge::Age(60));
    ///
    /// let stale = RequestBuilder::new("file-recovery")
    ///     .mfa_at(Some(WEDNESDAY_10_UTC - 2 * 3600))
    ///     .build();
    /// assert_eq!(stale.mfa_age(), MfaAge::Age(7200));
    /// assert!(!stale.mfa_age().within(900));
    ///
    /// let skewed = RequestBuilder::new("file-recovery")
    ///     .mfa_at(Some(WEDNESDAY_10_UTC + 5))
    ///     .build();
    /// assert_eq!(skewed.mfa_age(), MfaAge::InFuture);
    /// ```
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
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::{RequestBuilder, expect_allow};
///
/// assert_eq!(clamp_ttl(7200, 3600), 3600);
/// assert_eq!(clamp_ttl(900, 3600), 900);
///
/// let req = RequestBuilder::new("file-recovery").requested_ttl(86_400).build();
/// let terms = expect_allow(Verdict::allow(clamp_ttl(req.requested_ttl, 3600), "capped"));
/// assert_eq!(terms.ttl, 3600);
/// ```
pub fn clamp_ttl(requested: u32, cap: u32) -> u32 {
    requested.min(cap)
}

/// Why a time-zone offset attribute was refused, by [`parse_tz_offset`].
///
/// Its [`Display`](core::fmt::Display) reads as the end of a sentence about the value.
///
/// ```
/// use jitgate_sdk::prelude::*;
///
/// let err = parse_tz_offset(Some("900")).unwrap_err();
/// assert_eq!(err, TzOffsetError::OutOfRange(900));
/// assert_eq!(format!("tz-offset-minutes {err}"), "tz-offset-minutes 900 is outside -840..=840");
/// assert_eq!(parse_tz_offset(Some("+01:00")), Err(TzOffsetError::NotAnInteger));
/// ```
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
/// malformed attribute, and a policy should deny rather than guess. The value
/// is minutes east of UTC, as [`LocalTime::at`](crate::LocalTime::at) takes it.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// let req = RequestBuilder::new("file-recovery")
///     .attribute("tz-offset-minutes", "-300")
///     .build();
/// assert_eq!(parse_tz_offset(req.attribute("tz-offset-minutes")), Ok(-300));
/// assert_eq!(parse_tz_offset(None), Ok(0)); // absent: UTC
/// assert!(parse_tz_offset(Some("-841")).is_err());
/// assert!(parse_tz_offset(Some("five")).is_err());
/// ```
pub fn parse_tz_offset(value: Option<&str>) -> Result<i32, TzOffsetError> {
    let Some(raw) = value else { return Ok(0) };
    let parsed: i64 = raw.parse().map_err(|_| TzOffsetError::NotAnInteger)?;
    if (-840..=840).contains(&parsed) {
        Ok(parsed as i32)
    } else {
        Err(TzOffsetError::OutOfRange(parsed))
    }
}
