//! Calendar arithmetic on the request's `now`, without a time-zone database.
//!
//! A policy has no clock and no tzdata; the caller passes the requester's
//! offset from UTC as an attribute, and this turns `now + offset` into a
//! weekday and a time of day. That is all "business hours" rules need.

use crate::types::Timestamp;

/// Day of the week.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::WEDNESDAY_10_UTC;
///
/// assert_eq!(LocalTime::at(WEDNESDAY_10_UTC, 0).weekday, Weekday::Wednesday);
/// // 15 hours east of 10:00 UTC it is already Thursday.
/// assert_eq!(LocalTime::at(WEDNESDAY_10_UTC, 14 * 60).weekday, Weekday::Thursday);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Saturday or Sunday.
    ///
    /// ```
    /// use jitgate_sdk::Weekday;
    ///
    /// assert!(Weekday::Sunday.is_weekend());
    /// assert!(!Weekday::Friday.is_weekend());
    /// ```
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// A wall-clock time at some offset from UTC.
///
/// ```
/// use jitgate_sdk::prelude::*;
/// use jitgate_sdk::testing::RequestBuilder;
///
/// fn in_business_hours(t: LocalTime) -> bool {
///     !t.weekday.is_weekend() && (7..19).contains(&t.hour)
/// }
///
/// let req = RequestBuilder::new("file-recovery").attribute("tz-offset-minutes", "540").build();
/// let offset = parse_tz_offset(req.attribute("tz-offset-minutes")).unwrap();
/// let local = LocalTime::at(req.now, offset);
/// // Wednesday 10:00 UTC is 19:00 in Tokyo (UTC+09:00): closed.
/// assert_eq!((local.weekday, local.hour, local.minute), (Weekday::Wednesday, 19, 0));
/// assert!(!in_business_hours(local));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Day of the week.
    pub weekday: Weekday,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl LocalTime {
    /// The local time at `now` shifted by `offset_minutes` (east of UTC positive).
    ///
    /// Any `offset_minutes` is accepted; bound it first with
    /// [`parse_tz_offset`](crate::parse_tz_offset) when it comes from a request.
    ///
    /// ```
    /// use jitgate_sdk::prelude::*;
    ///
    /// // 2026-11-27T18:59:59Z, a Friday.
    /// let now: Timestamp = 1_795_805_999;
    /// let t = LocalTime::at(now, 0);
    /// assert_eq!((t.weekday, t.hour, t.minute, t.second), (Weekday::Friday, 18, 59, 59));
    /// // UTC+06:00 has crossed midnight into Saturday.
    /// let t = LocalTime::at(now, 360);
    /// assert_eq!((t.weekday, t.hour), (Weekday::Saturday, 0));
    /// // UTC-05:00 is Friday afternoon.
    /// assert_eq!(LocalTime::at(now, -300).hour, 13);
    /// ```
    pub fn at(now: Timestamp, offset_minutes: i32) -> LocalTime {
        let local = now as i128 + offset_minutes as i128 * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        // 1970-01-01 was a Thursday (index 3 counting from Monday = 0).
        let weekday = match (days + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        };
        LocalTime {
            weekday,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_thursday_midnight() {
        let t = LocalTime::at(0, 0);
        assert_eq!((t.weekday, t.hour, t.minute), (Weekday::Thursday, 0, 0));
    }

    #[test]
    fn known_date_and_offsets() {
        // 2026-11-27T18:59:59Z is a Friday.
        let now = 1_795_805_999;
        let t = LocalTime::at(now, 0);
        assert_eq!(
            (t.weekday, t.hour, t.minute, t.second),
            (Weekday::Friday, 18, 59, 59)
        );
        // +01:00 crosses 19:00 on the same Friday.
        let t = LocalTime::at(now, 60);
        assert_eq!((t.weekday, t.hour, t.minute), (Weekday::Friday, 19, 59));
        // +06:00 crosses midnight into Saturday.
        let t = LocalTime::at(now, 360);
        assert_eq!((t.weekday, t.hour), (Weekday::Saturday, 0));
        // -14:00 stays on Friday morning.
        let t = LocalTime::at(now, -840);
        assert_eq!((t.weekday, t.hour), (Weekday::Friday, 4));
    }

    #[test]
    fn negative_offset_before_epoch_day_boundary() {
        let t = LocalTime::at(0, -60);
        assert_eq!((t.weekday, t.hour), (Weekday::Wednesday, 23));
    }
}
