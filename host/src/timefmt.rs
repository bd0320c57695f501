//! The one time format of every answer (HTTP and CLI JSON): RFC 3339, UTC,
//! milliseconds, `Z` — `2026-12-06T14:03:11.123Z`.
//!
//! Stored forms keep their own units (grants and audit records hold Unix
//! milliseconds, requests Unix seconds): the audit chain hashes what was
//! stored, and a replica still running an older build must read every
//! stored grant. Times become text only on the way out, through
//! [`rfc3339_ms`] (with the `service` feature, `jitgate::answer` renders each
//! record's answer form).

use serde::Serializer;

/// Unix milliseconds as RFC 3339 UTC with exactly three fractional
/// digits. A time outside years 0000–9999 (which RFC 3339 cannot
/// express; no clock or accepted input produces one) is clamped to the
/// nearest end, so the answer is always well-formed.
pub fn rfc3339_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let t = match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) if t.year() >= 0 => t,
        Ok(_) => return "0000-01-01T00:00:00.000Z".into(),
        Err(_) if ms < 0 => return "0000-01-01T00:00:00.000Z".into(),
        Err(_) => return "9999-12-31T23:59:59.999Z".into(),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Unix seconds (a request's times, a policy set's `issued-at`) in the
/// same format.
pub fn rfc3339_secs(secs: u64) -> String {
    rfc3339_ms(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

/// Serde adapter for answer fields holding Unix milliseconds.
pub fn serialize_ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(*ms))
}

/// Serde adapter for optional answer fields holding Unix milliseconds.
pub fn serialize_opt_ms<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serialize_ms(ms, s),
        None => s.serialize_none(),
    }
}

/// Whether `s` is in the answer format (what the tests and clients may
/// rely on): `YYYY-MM-DDTHH:MM:SS.mmmZ` and a valid time.
pub fn is_answer_format(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    shape && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// The Unix milliseconds of a time in the answer format (the inverse of
/// [`rfc3339_ms`]); `None` for anything else.
pub fn parse_ms(s: &str) -> Option<i64> {
    if !is_answer_format(s) {
        return None;
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The Unix milliseconds of any RFC 3339 time (`2026-12-06T09:00:00Z`,
/// `2026-12-06T10:00:00+01:00`), as people type them in forms and
/// command lines; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_milliseconds_in_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_204_858_881), "2026-12-02T09:47:38.881Z");
        assert_eq!(rfc3339_ms(1_796_204_858_001), "2026-12-02T09:47:38.001Z");
        assert_eq!(rfc3339_secs(1_795_600_800), "2026-11-25T10:00:00.000Z");
        for ms in [0, 1, 999, 1_796_204_858_881, 253_402_300_799_999] {
            let s = rfc3339_ms(ms);
            assert!(is_answer_format(&s), "{s}");
            let back =
                time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                    .expect("parses");
            assert_eq!(back.unix_timestamp_nanos() / 1_000_000, i128::from(ms));
            assert_eq!(parse_ms(&s), Some(ms));
        }
    }

    #[test]
    fn out_of_range_is_clamped_not_malformed() {
        assert_eq!(rfc3339_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-62_167_219_200_001), "0000-01-01T00:00:00.000Z");
        assert!(is_answer_format(&rfc3339_ms(-1)));
        assert_eq!(rfc3339_secs(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn answer_format_check_is_strict() {
        for bad in [
            "2026-12-02T10:27:38Z",
            "2026-12-02T10:27:38.88Z",
            "2026-12-02T10:27:38.881+00:00",
            "2026-12-02 10:27:38.881Z",
            "2026-13-02T10:27:38.881Z",
            "1796204858881",
        ] {
            assert!(!is_answer_format(bad), "{bad}");
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
