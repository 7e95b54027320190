//! Processing windows: `calendar business_hours { timezone "Europe/Berlin" ... }`.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// A calendar of a `.fsm` file: opening hours in a time zone, and closed dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar {
    pub name: &'static str,
    pub timezone: Tz,
    /// One entry per day and span, day ranges expanded, in file order.
    pub hours: &'static [OpeningHours],
    /// Local dates on which the calendar stays closed all day.
    pub closed: &'static [NaiveDate],
}

/// `mon 09:00-13:00`: open from `open` (inclusive) to `close` (exclusive) local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpeningHours {
    pub day: Weekday,
    pub open: NaiveTime,
    /// `None` stands for `24:00`, the end of the day.
    pub close: Option<NaiveTime>,
}

impl OpeningHours {
    fn contains(&self, time: NaiveTime) -> bool {
        self.open <= time && self.close.is_none_or(|close| time < close)
    }
}

impl Calendar {
    /// Whether the calendar is open at `at`: the local date is not closed and the local
    /// time of day falls in one of that weekday's spans.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone).naive_local();
        self.is_open_local(local)
    }

    fn is_open_local(&self, local: NaiveDateTime) -> bool {
        let date = local.date();
        !self.closed.contains(&date)
            && self
                .hours
                .iter()
                .any(|h| h.day == date.weekday() && h.contains(local.time()))
    }

    /// The first instant at or after `after` when the calendar is open: `after` itself
    /// when it is open now. Local opening times that a daylight-saving change skips open
    /// when the clocks resume; times that occur twice open at their first occurrence.
    /// `None` only for a calendar without opening hours.
    pub fn next_open(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(after) {
            return Some(after);
        }
        let start = after.with_timezone(&self.timezone).date_naive();
        // Every weekday with hours recurs within a week, so a search that goes past each
        // closed date and one more week finds the opening if there is one.
        let horizon = 8 + self.closed.len() as u64;
        (0..=horizon)
            .filter_map(|offset| start.checked_add_days(Days::new(offset)))
            .filter(|date| !self.closed.contains(date))
            .find_map(|date| self.first_opening_on(date, after))
    }

    /// The earliest opening of a span on local `date` that falls after `after`.
    fn first_opening_on(&self, date: NaiveDate, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.hours
            .iter()
            .filter(|h| h.day == date.weekday())
            .filter_map(|h| self.resolve(date.and_time(h.open)))
            .filter(|&at| at > after && self.is_open(at))
            .min()
    }

    /// The instant of a local time, moved past a daylight-saving gap when it falls in one.
    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Real gaps are at most a few hours and end on a whole minute.
        (0..=24 * 60).find_map(|minutes| {
            let shifted = local.checked_add_signed(chrono::TimeDelta::minutes(minutes))?;
            match self.timezone.from_local_datetime(&shifted) {
                LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        })
    }
}
