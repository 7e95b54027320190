//! Processing windows compiled from `.fsm` calendars: open hours, closed dates, and
//! daylight-saving changes, checked through the generated `CALENDARS`.

use chrono::{DateTime, TimeZone as _, Utc};
use statemachine::{Calendar, Machine as _};

use super::order;

mod shifts {
    statemachine::machine!("integration/generated/shifts.fsm");
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn business_hours() -> &'static Calendar {
    order::Machine::calendar("business_hours").expect("order.fsm declares business_hours")
}

/// One row: at `at`, the calendar is `open`, and it next opens at `next` (UTC).
fn check(calendar: &Calendar, at: &str, open: bool, next: &str) {
    let at = utc(at);
    assert_eq!(calendar.is_open(at), open, "is_open({at})");
    assert_eq!(calendar.next_open(at), Some(utc(next)), "next_open({at})");
}

#[test]
fn business_hours_open_and_close_in_berlin_time() {
    let c = business_hours();
    // Friday 2026-03-27, CET (UTC+1): open until 18:00 local.
    check(c, "2026-03-27T16:59:00Z", true, "2026-03-27T16:59:00Z");
    check(c, "2026-03-27T17:00:00Z", false, "2026-03-28T08:00:00Z");
    // Opening time itself is open; a minute before is not.
    check(c, "2026-03-27T07:00:00Z", true, "2026-03-27T07:00:00Z");
    check(c, "2026-03-27T06:59:00Z", false, "2026-03-27T07:00:00Z");
}

#[test]
fn the_next_opening_after_the_spring_change_is_in_summer_time() {
    // Saturday 2026-03-28 13:00 CET closes; clocks go forward on Sunday 29 March; Monday
    // opens at 08:00 CEST, which is 06:00 UTC rather than 07:00.
    check(
        business_hours(),
        "2026-03-28T12:00:00Z",
        false,
        "2026-03-30T06:00:00Z",
    );
}

#[test]
fn the_next_opening_after_the_autumn_change_is_in_winter_time() {
    let c = business_hours();
    // Friday 2026-10-23 18:00 CEST; Saturday opens 09:00 CEST (07:00 UTC).
    check(c, "2026-10-23T16:00:00Z", false, "2026-10-24T07:00:00Z");
    // Clocks go back on Sunday 25 October; Monday opens 08:00 CET (07:00 UTC).
    check(c, "2026-10-24T11:00:00Z", false, "2026-10-26T07:00:00Z");
}

#[test]
fn closed_dates_stay_closed_all_day() {
    let c = business_hours();
    // Friday 25 and Saturday 26 December 2026 are closed: from Thursday evening the next
    // opening is Monday 28 December, 08:00 CET.
    check(c, "2026-12-24T17:00:00Z", false, "2026-12-28T07:00:00Z");
    check(c, "2026-12-25T09:00:00Z", false, "2026-12-28T07:00:00Z");
    // New Year's Day (a Friday) is closed; Saturday 2 January opens at 09:00 CET.
    check(c, "2026-12-31T17:00:00Z", false, "2027-01-02T08:00:00Z");
}

#[test]
fn an_opening_skipped_by_the_clocks_opens_when_they_resume() {
    let night = shifts::Machine::calendar("night").expect("declared");
    // 02:30 does not exist in Berlin on 2026-03-29: clocks jump from 02:00 to 03:00 CEST
    // (01:00 UTC), which is when the window opens; it closes at 04:00 CEST.
    check(night, "2026-03-28T23:00:00Z", false, "2026-03-29T01:00:00Z");
    assert!(night.is_open(utc("2026-03-29T01:59:00Z")));
    assert!(!night.is_open(utc("2026-03-29T02:00:00Z")));
}

#[test]
fn an_opening_that_happens_twice_opens_the_first_time() {
    let night = shifts::Machine::calendar("night").expect("declared");
    // 02:30 happens twice in Berlin on 2026-10-25: first in CEST (00:30 UTC).
    check(night, "2026-10-24T23:00:00Z", false, "2026-10-25T00:30:00Z");
    // In the repeated hour it is still (or again) open, until 04:00 CET (03:00 UTC).
    assert!(night.is_open(utc("2026-10-25T01:45:00Z")));
    assert!(!night.is_open(utc("2026-10-25T03:00:00Z")));
}

#[test]
fn time_zones_with_awkward_names_compile_and_work() {
    let late = shifts::Machine::calendar("late").expect("declared");
    assert_eq!(late.timezone.name(), "America/Port-au-Prince");
    // Open until the end of the day: 23:59 local in July is 03:59 UTC (EDT, UTC-4).
    assert!(late.is_open(utc("2026-07-02T03:59:00Z")));
    check(late, "2026-07-02T04:00:00Z", false, "2026-07-03T02:00:00Z");

    let fixed = shifts::Machine::calendar("fixed").expect("declared");
    // Etc/GMT+5 is UTC-5 all year. Friday 3 July 2026 is closed.
    check(fixed, "2026-07-02T22:00:00Z", false, "2026-07-06T14:00:00Z");

    let south = shifts::Machine::calendar("south").expect("declared");
    // Two spans on Saturdays in Buenos Aires (UTC-3): 12:00 local waits for 14:00.
    check(south, "2026-07-04T15:00:00Z", false, "2026-07-04T17:00:00Z");
    assert_eq!(
        chrono_tz::America::Argentina::Buenos_Aires
            .with_ymd_and_hms(2026, 7, 4, 14, 0, 0)
            .single()
            .map(|t| t.with_timezone(&Utc)),
        Some(utc("2026-07-04T17:00:00Z"))
    );
}
