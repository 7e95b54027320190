//! Checks of calendars: real time zones, times and dates, spans that open before they
//! close, and day ranges that run forward. Returns the calendars that passed, as model.

use chrono::{NaiveDate, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;

use super::Report;
use crate::ast::{self, Item, Literal};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::model;

pub(super) fn check(machine: &ast::MachineDecl, report: &mut Report) -> Vec<model::Calendar> {
    machine
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Calendar(c) => calendar(c, report),
            _ => None,
        })
        .collect()
}

fn calendar(c: &ast::CalendarDecl, report: &mut Report) -> Option<model::Calendar> {
    let errors_before = report.diagnostics.len();
    let timezone = timezone(&c.timezone, report);
    let mut hours = Vec::new();
    for h in &c.hours {
        let days = days(h, report);
        for span in &h.spans {
            if let Some((open, close)) = time_span(span, report) {
                let opening = |&day| (model::OpeningHours { day, open, close }, span.span);
                hours.extend(days.iter().map(opening));
            }
        }
    }
    let closed: Vec<NaiveDate> = c
        .closed
        .iter()
        .flat_map(|cl| &cl.dates)
        .filter_map(|d| date(d, report))
        .collect();
    overlaps(c, &hours, report);
    let clean = report.diagnostics[errors_before..]
        .iter()
        .all(|d| !d.is_error());
    Some(model::Calendar {
        name: c.name.name.clone(),
        timezone: timezone?,
        hours: hours.into_iter().map(|(h, _)| h).collect(),
        closed,
        span: c.span,
    })
    .filter(|_| clean)
}

fn timezone(tz: &Literal, report: &mut Report) -> Option<Tz> {
    if let Ok(zone) = tz.text.parse::<Tz>() {
        return Some(zone);
    }
    let help = match Tz::from_str_insensitive(&tz.text) {
        Ok(zone) => format!("did you mean \"{}\"?", zone.name()),
        Err(_) => "use an IANA time zone name, such as \"Europe/Berlin\" or \"UTC\"".to_owned(),
    };
    report.push(
        Diagnostic::new(
            Code::UnknownTimezone,
            format!("unknown time zone \"{}\"", tz.text),
            Label::new(tz.span, "not an IANA time zone"),
        )
        .with_help(help),
    );
    None
}

/// The days a line of hours covers. A backwards range (`fri-mon`) is an error rather
/// than a wrap over the weekend, because it is as often a typo as it is intended.
fn days(h: &ast::HoursDecl, report: &mut Report) -> Vec<Weekday> {
    let first = h.first.day.num_days_from_monday();
    let Some(last) = h.last else {
        return vec![h.first.day];
    };
    let end = last.day.num_days_from_monday();
    if end < first {
        report.push(
            Diagnostic::new(
                Code::InvertedDays,
                format!(
                    "day range `{}-{}` runs backwards",
                    day_name(h.first.day),
                    day_name(last.day)
                ),
                Label::new(h.first.span.to(last.span), "ends before it starts"),
            )
            .with_help(format!(
                "ranges run from monday to sunday; to wrap over the weekend, write two lines: `{}` and `{}`",
                range_text(h.first.day, Weekday::Sun),
                range_text(Weekday::Mon, last.day)
            )),
        );
        return Vec::new();
    }
    (first..=end)
        .filter_map(|n| Weekday::try_from(n as u8).ok())
        .collect()
}

fn day_name(day: Weekday) -> String {
    day.to_string().to_lowercase()
}

/// `fri-sun`, or `sun` alone for a range of one day.
fn range_text(first: Weekday, last: Weekday) -> String {
    if first == last {
        day_name(first)
    } else {
        format!("{}-{}", day_name(first), day_name(last))
    }
}

/// The day's full name, for messages: `wednesday`.
fn full_day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// Returns `(open, close)` with `close = None` for `24:00`.
fn time_span(span: &ast::TimeSpan, report: &mut Report) -> Option<(NaiveTime, Option<NaiveTime>)> {
    // An opening time is never `24:00`, so its inner option is always `Some`.
    let open = time(&span.start, false, report).flatten();
    let close = time(&span.end, true, report);
    let (open, close) = (open?, close?);
    if close.is_some_and(|close| close <= open) {
        let empty = close == Some(open);
        let (what, label, help) = if empty {
            (
                "empty",
                "opens and closes at the same time",
                "a span must close after it opens, such as `09:00-17:00`; remove it if the day is closed",
            )
        } else {
            (
                "inverted",
                "closes before it opens",
                "write the opening time first; a span cannot cross midnight, so split it at `24:00` and `00:00`",
            )
        };
        report.push(
            Diagnostic::new(
                Code::BadTimeSpan,
                format!("span `{}-{}` is {what}", span.start.text, span.end.text),
                Label::new(span.span, label),
            )
            .with_help(help),
        );
        return None;
    }
    Some((open, close))
}

/// Parses `HH:MM`; `24:00` is accepted only as a closing time. `Some(None)` is `24:00`.
fn time(lit: &Literal, closing: bool, report: &mut Report) -> Option<Option<NaiveTime>> {
    let well_formed = lit.text.len() == 5 && lit.text.as_bytes()[2] == b':';
    if well_formed && closing && lit.text == "24:00" {
        return Some(None);
    }
    let parsed = well_formed
        .then(|| NaiveTime::parse_from_str(&lit.text, "%H:%M").ok())
        .flatten();
    if lit.text == "24:00" {
        // `24:00` is a real time, the end of the day, so "not a valid time" would be
        // wrong: it is only in the wrong place.
        report.push(
            Diagnostic::new(
                Code::BadTime,
                "a span cannot open at `24:00`",
                Label::new(lit.span, "the end of the day"),
            )
            .with_help("`24:00` only closes a span, such as `18:00-24:00`; a span opening at midnight starts at `00:00`"),
        );
    } else if parsed.is_none() {
        report.push(
            Diagnostic::new(
                Code::BadTime,
                format!("`{}` is not a valid time", lit.text),
                Label::new(lit.span, "expected `HH:MM`"),
            )
            .with_help("times are two-digit hours 00-23 and minutes 00-59, such as `09:30`; `24:00` may close a span"),
        );
    }
    parsed.map(Some)
}

fn date(lit: &Literal, report: &mut Report) -> Option<NaiveDate> {
    let well_formed = lit.text.len() == 10;
    let parsed = well_formed
        .then(|| NaiveDate::parse_from_str(&lit.text, "%Y-%m-%d").ok())
        .flatten();
    if parsed.is_none() {
        report.push(
            Diagnostic::new(
                Code::BadDate,
                format!("`{}` is not a valid date", lit.text),
                Label::new(lit.span, "expected a real `YYYY-MM-DD` date"),
            )
            .with_help(
                "write dates as `YYYY-MM-DD` with a month 01-12 and a day that exists in it",
            ),
        );
    }
    parsed
}

/// Overlapping spans are harmless to the runtime (open is open) but usually a slip.
/// Reports the first overlap of each calendar.
fn overlaps(
    c: &ast::CalendarDecl,
    hours: &[(model::OpeningHours, ast::Span)],
    report: &mut Report,
) {
    let minutes = |t: NaiveTime| t.hour() * 60 + t.minute();
    let bounds = |h: &model::OpeningHours| (minutes(h.open), h.close.map_or(24 * 60, minutes));
    for (i, (a, a_span)) in hours.iter().enumerate() {
        let (a_open, a_close) = bounds(a);
        let overlapping = hours[i + 1..].iter().find(|(b, _)| {
            let (b_open, b_close) = bounds(b);
            b.day == a.day && a_open < b_close && b_open < a_close
        });
        if let Some((_, b_span)) = overlapping {
            report.push(
                Diagnostic::new(
                    Code::OverlappingHours,
                    format!(
                        "opening hours of calendar `{}` overlap on {}",
                        c.name.name,
                        full_day_name(a.day)
                    ),
                    Label::new(*b_span, "overlaps an earlier span"),
                )
                .with_secondary(Label::new(*a_span, "earlier span"))
                .with_help("merge the overlapping spans into one"),
            );
            return;
        }
    }
}
