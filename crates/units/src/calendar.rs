//! systemd calendar events (systemd.time(7)): `Mon..Fri 09:00`, `*-*-01 00:00:00 UTC`, `daily`.
//!
//! An expression is a set of civil times: optional weekdays, then year-month-day, then
//! hour:minute:second, each component `*`, a value, a list `a,b`, a range `a..b` or a repetition
//! `a/step` (`a..b/step`), and an optional time zone. [`CalendarSpec::parse`] reads it with
//! systemd's rules and refuses what systemd refuses; [`Display`](fmt::Display) gives systemd's
//! normalized form (what `systemd-analyze calendar` prints); [`CalendarSpec::next_after`] finds
//! the next elapse.
//!
//! The next elapse is searched for in civil time, field by field from the year down, in the
//! expression's time zone. A civil time the clock skips (a daylight saving gap) does not elapse:
//! the search goes on from where the clock lands, as systemd's `mktime` normalization does, so
//! `*-*-* 02:30` skips the spring-forward day while `*:30` elapses at 03:30. A civil time the clock
//! passes twice (a fold) elapses once, at its first occurrence, as in systemd. Years stop at 2199
//! (systemd's limit), so an expression that never matches (`*-02-30`) gives `None` quickly.
//!
//! Not read: systemd's suffix naming the local zone by its abbreviation (`… CET`), which depends
//! on the machine; an IANA name (`Europe/Berlin`) says the same everywhere.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Serialize, Serializer};

use crate::values::ValueError;

const MIN_YEAR: i64 = 1970;
const MAX_YEAR: i64 = 2199;
/// systemd's limit on the values of one component, which keeps lists short.
const MAX_ITEMS: usize = 240;
const USEC: i64 = 1_000_000;
/// The seconds component is kept in microseconds.
const MAX_SECOND_USEC: i64 = 60 * USEC - 1;
/// Bounds on the search; each round moves strictly forward, and a year takes a few dozen.
const MAX_CIVIL_STEPS: usize = 100_000;
const MAX_ZONE_ROUNDS: usize = 1_000;
const ALL_WEEKDAYS: u8 = 0x7f;
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEKDAY_NAMES: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// A parsed calendar event expression.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarSpec {
    /// Bit 0 is Monday; 0 means any day of the week.
    weekdays: u8,
    /// An empty chain matches any value.
    year: Vec<Item>,
    month: Vec<Item>,
    day: Vec<Item>,
    /// `~`: days count back from the end of the month (`~01` is the last day).
    end_of_month: bool,
    hour: Vec<Item>,
    minute: Vec<Item>,
    /// In microseconds.
    second: Vec<Item>,
    zone: Zone,
}

#[derive(Debug, Clone, PartialEq)]
enum Zone {
    /// The system's zone when the next elapse is computed.
    Local,
    Utc,
    Named {
        name: String,
        tz: TimeZone,
    },
}

/// One value of a component: `start`, `start..stop`, `start/repeat` or `start..stop/repeat`.
/// `repeat` 0 means no repetition. Field order gives systemd's sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    start: i64,
    stop: Option<i64>,
    repeat: i64,
}

impl Item {
    fn value(v: i64) -> Item {
        Item { start: v, stop: None, repeat: 0 }
    }

    /// The smallest value at or after `v` this item allows (not bounded by the field).
    fn next(&self, v: i64) -> Option<i64> {
        if self.start >= v {
            return Some(self.start);
        }
        if self.repeat == 0 {
            return None;
        }
        let steps = (v - self.start + self.repeat - 1) / self.repeat;
        let k = self.start + steps * self.repeat;
        self.stop.is_none_or(|stop| k <= stop).then_some(k)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Year => "year",
            Field::Month => "month",
            Field::Day => "day",
            Field::Hour => "hour",
            Field::Minute => "minute",
            Field::Second => "second",
        }
    }

    fn bounds(self) -> (i64, i64) {
        match self {
            Field::Year => (MIN_YEAR, MAX_YEAR),
            Field::Month => (1, 12),
            Field::Day => (1, 31),
            Field::Hour => (0, 23),
            Field::Minute => (0, 59),
            Field::Second => (0, MAX_SECOND_USEC),
        }
    }

    fn width(self) -> usize {
        if self == Field::Year {
            4
        } else {
            2
        }
    }

    fn unit(self) -> i64 {
        if self == Field::Second {
            USEC
        } else {
            1
        }
    }
}

/// The system's time zone, or UTC when it cannot be determined (as freedesktop.org asks).
pub fn local_zone() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

impl CalendarSpec {
    /// Parses an expression as systemd.time(7) defines it. The error names what is wrong:
    /// `invalid calendar expression "*-13-01": month 13 out of range 1..12`.
    pub fn parse(text: &str) -> Result<CalendarSpec, ValueError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ValueError::new("empty calendar expression"));
        }
        let fail = |why: String| ValueError::new(format!("invalid calendar expression {text:?}: {why}"));
        let (body, zone) = split_zone(text);
        let mut spec = match shorthand(body) {
            Some(spec) => spec,
            None => match Parser::new(body).expression() {
                Ok(spec) => spec,
                Err(why) => return Err(fail(unknown_zone(text).unwrap_or(why))),
            },
        };
        // `@SECONDS` is a UTC instant whatever zone follows, as in systemd.
        if spec.zone == Zone::Local {
            spec.zone = zone;
        }
        spec.normalize();
        spec.validate().map_err(fail)?;
        Ok(spec)
    }

    /// The next elapse strictly after `after`, in the expression's zone (the system's if none).
    /// `None` when it never elapses again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.next_after_in(after, &local_zone())
    }

    /// [`next_after`](Self::next_after) with `local` as the zone of an expression without one.
    pub fn next_after_in(&self, after: Timestamp, local: &TimeZone) -> Option<Timestamp> {
        let tz = match &self.zone {
            Zone::Local => local.clone(),
            Zone::Utc => TimeZone::UTC,
            Zone::Named { tz, .. } => tz.clone(),
        };
        // Elapses are whole microseconds (as in systemd): the first candidate is the next one.
        let micros = i64::try_from(after.as_nanosecond().div_euclid(1000) + 1).ok()?;
        let start = Timestamp::from_microsecond(micros).ok()?;
        let mut from = tz.to_datetime(start);
        for _ in 0..MAX_ZONE_ROUNDS {
            let civil = self.next_civil(from)?;
            let offsets = match tz.to_ambiguous_timestamp(civil).offset() {
                AmbiguousOffset::Unambiguous { offset } => vec![offset],
                // Skipped by the clock: go on from where it lands (02:30 in a 02:00→03:00 gap is
                // 03:30), which may match itself.
                AmbiguousOffset::Gap { before, .. } => {
                    from = tz.to_datetime(before.to_timestamp(civil).ok()?);
                    continue;
                }
                // Passed twice: the first occurrence, unless the search starts after it.
                AmbiguousOffset::Fold { before, after } => vec![before, after],
            };
            for offset in offsets {
                let t = offset.to_timestamp(civil).ok()?;
                if t >= start {
                    return Some(t);
                }
            }
            from = civil.checked_add(SignedDuration::from_micros(1)).ok()?;
        }
        None
    }

    /// The next `n` elapses after `after` (fewer if it stops elapsing).
    pub fn next_n(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let local = local_zone();
        let mut out = Vec::with_capacity(n.min(16));
        let mut t = after;
        while out.len() < n {
            match self.next_after_in(t, &local) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// The time zone elapses are computed in: `None` for the system's.
    pub fn time_zone(&self) -> Option<TimeZone> {
        match &self.zone {
            Zone::Local => None,
            Zone::Utc => Some(TimeZone::UTC),
            Zone::Named { tz, .. } => Some(tz.clone()),
        }
    }

    /// The first civil time at or after `from` that matches every field, or `None` past 2199.
    fn next_civil(&self, from: DateTime) -> Option<DateTime> {
        let mut c = Cursor::new(from);
        for _ in 0..MAX_CIVIL_STEPS {
            if c.year > MAX_YEAR {
                return None;
            }
            let year = next_in(&self.year, c.year, MAX_YEAR)?;
            if year != c.year {
                c = Cursor { year, ..Cursor::default() };
            }
            let Some(month) = next_in(&self.month, c.month, 12) else {
                c.next_year();
                continue;
            };
            if month != c.month {
                c.month = month;
                c.reset_below_month();
            }
            let Some(day) = self.next_day(c.year, c.month, c.day) else {
                c.next_month();
                continue;
            };
            if day != c.day {
                c.day = day;
                c.reset_below_day();
            }
            let Some(hour) = next_in(&self.hour, c.hour, 23) else {
                c.next_day();
                continue;
            };
            if hour != c.hour {
                c.hour = hour;
                c.minute = 0;
                c.usec = 0;
            }
            let Some(minute) = next_in(&self.minute, c.minute, 59) else {
                c.next_hour();
                continue;
            };
            if minute != c.minute {
                c.minute = minute;
                c.usec = 0;
            }
            let Some(usec) = next_in(&self.second, c.usec, MAX_SECOND_USEC) else {
                c.next_minute();
                continue;
            };
            c.usec = usec;
            return c.datetime();
        }
        None
    }

    /// The first day at or after `day` of the month that is in the day set and on an allowed
    /// weekday.
    fn next_day(&self, year: i64, month: i64, mut day: i64) -> Option<i64> {
        let first = Date::new(i16::try_from(year).ok()?, i8::try_from(month).ok()?, 1).ok()?;
        let last = i64::from(first.days_in_month());
        let items: Vec<Item> = if self.end_of_month {
            self.day.iter().map(|item| from_end_of_month(item, last)).collect()
        } else {
            self.day.clone()
        };
        while day <= last {
            let found = next_in(&items, day, last)?;
            let date = Date::new(first.year(), first.month(), i8::try_from(found).ok()?).ok()?;
            let weekday = date.weekday().to_monday_zero_offset();
            if self.weekdays == 0 || self.weekdays & (1 << weekday) != 0 {
                return Some(found);
            }
            day = found + 1;
        }
        None
    }

    /// Drops what does not change the set, in systemd's order: ranges end on a repetition, a
    /// repetition that never repeats and a one-value range become plain values, lists are
    /// sorted without duplicates.
    fn normalize(&mut self) {
        if self.weekdays >= ALL_WEEKDAYS {
            self.weekdays = 0;
        }
        if self.day.is_empty() {
            self.end_of_month = false;
        }
        for item in &mut self.year {
            // Two-digit years, as systemd reads them: 12 is 2012, 89 is 1989.
            for v in std::iter::once(&mut item.start).chain(item.stop.as_mut()) {
                match *v {
                    0..=69 => *v += 2000,
                    70..=99 => *v += 1900,
                    _ => {}
                }
            }
        }
        for chain in [
            &mut self.year,
            &mut self.month,
            &mut self.day,
            &mut self.hour,
            &mut self.minute,
            &mut self.second,
        ] {
            for item in chain.iter_mut() {
                let Some(mut stop) = item.stop else { continue };
                if stop > item.start && item.repeat > 0 {
                    stop -= (stop - item.start) % item.repeat;
                }
                item.stop = Some(stop);
                if (stop > item.start && item.repeat > 0 && item.start + item.repeat > stop)
                    || item.start == stop
                {
                    item.stop = None;
                    item.repeat = 0;
                }
            }
            chain.sort();
            chain.dedup();
        }
    }

    /// systemd's bounds: every value in its field's range (the last 28 days for `~`), and each
    /// repetition able to happen at least once.
    fn validate(&self) -> Result<(), String> {
        let fields = [
            (Field::Year, &self.year),
            (Field::Month, &self.month),
            (Field::Day, &self.day),
            (Field::Hour, &self.hour),
            (Field::Minute, &self.minute),
            (Field::Second, &self.second),
        ];
        for (field, chain) in fields {
            let eom = field == Field::Day && self.end_of_month;
            for item in chain {
                check_item(field, item, eom)?;
            }
        }
        Ok(())
    }
}

fn check_item(field: Field, item: &Item, eom: bool) -> Result<(), String> {
    let (from, mut to) = field.bounds();
    if eom {
        to -= 3;
    }
    let show = |v: i64| show_value(field, v, eom);
    let range = || {
        let shown_to = if field == Field::Second { 59 } else { to };
        format!("{from}..{shown_to}")
    };
    for v in std::iter::once(item.start).chain(item.stop) {
        if v < from || v > to {
            return Err(format!("{} {} out of range {}", field.name(), show(v), range()));
        }
    }
    let text = format_item(field, item, false);
    if let Some(stop) = item.stop {
        if stop < item.start {
            return Err(format!("{} range {text} runs backwards", field.name()));
        }
    }
    let fits = match item.stop {
        Some(stop) => item.start + item.repeat <= stop,
        None if eom => item.start - item.repeat >= from,
        None => item.start + item.repeat <= to,
    };
    if item.repeat > to - from || !fits {
        return Err(format!("{} {text}: the repetition does not fit in {}", field.name(), range()));
    }
    Ok(())
}

/// The smallest value at or after `v` and at most `max` the chain allows; an empty chain allows
/// any.
fn next_in(chain: &[Item], v: i64, max: i64) -> Option<i64> {
    if chain.is_empty() {
        return (v <= max).then_some(v);
    }
    chain.iter().filter_map(|item| item.next(v)).filter(|&k| k <= max).min()
}

/// A `~` item as days of a month with `last` days: `~01` is the last day, `~07/1` the last
/// seven, `~01..07` too.
fn from_end_of_month(item: &Item, last: i64) -> Item {
    let day = |n: i64| last + 1 - n;
    match item.stop {
        Some(stop) => Item { start: day(stop), stop: Some(day(item.start)), repeat: item.repeat },
        None => Item { start: day(item.start), stop: None, repeat: item.repeat },
    }
}

/// Where the search stands, in civil fields (the second in microseconds).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    usec: i64,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor { year: MIN_YEAR, month: 1, day: 1, hour: 0, minute: 0, usec: 0 }
    }
}

impl Cursor {
    fn new(dt: DateTime) -> Cursor {
        Cursor {
            year: i64::from(dt.year()),
            month: i64::from(dt.month()),
            day: i64::from(dt.day()),
            hour: i64::from(dt.hour()),
            minute: i64::from(dt.minute()),
            usec: i64::from(dt.second()) * USEC + i64::from(dt.subsec_nanosecond()) / 1000,
        }
    }

    fn datetime(&self) -> Option<DateTime> {
        DateTime::new(
            i16::try_from(self.year).ok()?,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
            i8::try_from(self.hour).ok()?,
            i8::try_from(self.minute).ok()?,
            i8::try_from(self.usec / USEC).ok()?,
            i32::try_from(self.usec % USEC * 1000).ok()?,
        )
        .ok()
    }

    fn reset_below_month(&mut self) {
        self.day = 1;
        self.reset_below_day();
    }

    fn reset_below_day(&mut self) {
        self.hour = 0;
        self.minute = 0;
        self.usec = 0;
    }

    fn next_year(&mut self) {
        *self = Cursor { year: self.year + 1, ..Cursor::default() };
    }

    fn next_month(&mut self) {
        if self.month >= 12 {
            self.next_year();
        } else {
            self.month += 1;
            self.reset_below_month();
        }
    }

    /// Past the month's end, `next_day` moves on to the next month.
    fn next_day(&mut self) {
        if self.day >= 31 {
            self.next_month();
        } else {
            self.day += 1;
            self.reset_below_day();
        }
    }

    fn next_hour(&mut self) {
        if self.hour >= 23 {
            self.next_day();
        } else {
            self.hour += 1;
            self.minute = 0;
            self.usec = 0;
        }
    }

    fn next_minute(&mut self) {
        if self.minute >= 59 {
            self.next_hour();
        } else {
            self.minute += 1;
            self.usec = 0;
        }
    }
}

/// `daily`, `weekly`…, case-insensitively, as systemd.time(7) lists them (and the spellings
/// systemd also accepts).
fn shorthand(text: &str) -> Option<CalendarSpec> {
    let zero = || vec![Item::value(0)];
    let one = || vec![Item::value(1)];
    let values = |vs: &[i64]| vs.iter().map(|&v| Item::value(v)).collect::<Vec<_>>();
    let mut spec = CalendarSpec::any();
    spec.second = zero();
    match text.to_ascii_lowercase().as_str() {
        "minutely" => {}
        "hourly" => spec.minute = zero(),
        "daily" => (spec.hour, spec.minute) = (zero(), zero()),
        "weekly" => (spec.weekdays, spec.hour, spec.minute) = (1, zero(), zero()),
        "monthly" => (spec.day, spec.hour, spec.minute) = (one(), zero(), zero()),
        "yearly" | "annually" | "anually" => {
            (spec.month, spec.day, spec.hour, spec.minute) = (one(), one(), zero(), zero())
        }
        "quarterly" => {
            (spec.month, spec.day, spec.hour, spec.minute) = (values(&[1, 4, 7, 10]), one(), zero(), zero())
        }
        "semiannually" | "semi-annually" | "biannually" | "bi-annually" => {
            (spec.month, spec.day, spec.hour, spec.minute) = (values(&[1, 7]), one(), zero(), zero())
        }
        _ => return None,
    }
    Some(spec)
}

/// Splits off a trailing time zone: ` UTC` (any case) or an IANA name the system's zoneinfo
/// has, after the last space.
fn split_zone(text: &str) -> (&str, Zone) {
    let Some((body, last)) = text.rsplit_once(' ') else {
        return (text, Zone::Local);
    };
    let body = body.trim_end();
    if body.is_empty() {
        return (text, Zone::Local);
    }
    if last.eq_ignore_ascii_case("UTC") {
        return (body, Zone::Utc);
    }
    if !looks_like_zone(last) {
        return (text, Zone::Local);
    }
    match TimeZone::get(last) {
        Ok(tz) if tz == TimeZone::UTC => (body, Zone::Utc),
        Ok(tz) => {
            let name = tz.iana_name().unwrap_or(last).to_string();
            (body, Zone::Named { name, tz })
        }
        Err(_) => (text, Zone::Local),
    }
}

/// A word that could be a zone name (`Europe/Berlin`, `EST5EDT`, `Etc/GMT+2`), not a weekday
/// or a date or time (which also saves looking those up).
fn looks_like_zone(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        && weekday_at(word).is_none_or(|(_, len)| len < word.len())
}

/// Why an expression that did not parse may have failed: its last word names no known zone.
fn unknown_zone(text: &str) -> Option<String> {
    let (body, last) = text.rsplit_once(' ')?;
    (!body.trim().is_empty() && looks_like_zone(last) && TimeZone::get(last).is_err())
        .then(|| format!("unknown time zone {last:?}"))
}

/// The weekday a text starts with, full or abbreviated name, any case: `(index, length)`.
fn weekday_at(text: &str) -> Option<(usize, usize)> {
    let starts = |name: &str| text.get(..name.len()).is_some_and(|head| head.eq_ignore_ascii_case(name));
    (0..7).find_map(|i| {
        [WEEKDAY_NAMES[i], WEEKDAYS[i]].into_iter().find(|name| starts(name)).map(|name| (i, name.len()))
    })
}

impl CalendarSpec {
    fn any() -> CalendarSpec {
        CalendarSpec {
            weekdays: 0,
            year: Vec::new(),
            month: Vec::new(),
            day: Vec::new(),
            end_of_month: false,
            hour: Vec::new(),
            minute: Vec::new(),
            second: Vec::new(),
            zone: Zone::Local,
        }
    }
}

/// Reads `[weekdays] [date] [time]` (or `@SECONDS`) as systemd's parser does.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> String {
        match self.rest() {
            "" => "unexpected end".to_string(),
            rest => format!("unexpected {rest:?}"),
        }
    }

    fn expression(mut self) -> Result<CalendarSpec, String> {
        let mut spec = CalendarSpec::any();
        spec.weekdays = self.weekdays()?;
        if self.peek() == Some(b'@') {
            self.pos += 1;
            self.timestamp(&mut spec)?;
        } else {
            self.date(&mut spec)?;
            self.time(&mut spec)?;
        }
        if self.pos < self.text.len() {
            return Err(self.unexpected());
        }
        Ok(spec)
    }

    /// `Mon,Wed..Fri`; none is fine. systemd also takes `Mon-Fri` (its old range syntax) and a
    /// trailing comma.
    fn weekdays(&mut self) -> Result<u8, String> {
        let mut bits = 0u8;
        let mut range_from: Option<usize> = None;
        let mut first = true;
        loop {
            let rest = self.rest();
            let Some((day, len)) = weekday_at(rest) else {
                if first {
                    return Ok(0);
                }
                let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
                // (An end or a space right after a separator was handled below.)
                return Err(if !word.is_empty() {
                    format!("unknown weekday {word:?}")
                } else {
                    format!("expected a weekday at {rest:?}")
                });
            };
            if !matches!(rest.as_bytes().get(len), None | Some(b'-' | b'.' | b',' | b' ')) {
                let word: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
                return Err(format!("unknown weekday {word:?}"));
            }
            bits |= 1 << day;
            if let Some(from) = range_from {
                if from > day {
                    return Err(format!(
                        "weekday range {}..{} runs backwards",
                        WEEKDAYS[from], WEEKDAYS[day]
                    ));
                }
                for d in from + 1..day {
                    bits |= 1 << d;
                }
            }
            self.pos += len;
            match self.peek() {
                None => return Ok(bits),
                Some(b' ') => {
                    self.skip_spaces();
                    return Ok(bits);
                }
                Some(b'.') => {
                    if range_from.is_some() || !self.rest().starts_with("..") {
                        return Err(self.unexpected());
                    }
                    range_from = Some(day);
                    self.pos += 2;
                }
                Some(b'-') => {
                    if range_from.is_some() {
                        return Err(self.unexpected());
                    }
                    range_from = Some(day);
                    self.pos += 1;
                }
                _ => {
                    range_from = None;
                    self.pos += 1;
                }
            }
            if matches!(self.peek(), None | Some(b' ')) {
                self.skip_spaces();
                return match range_from {
                    None => Ok(bits),
                    Some(_) => Err("unterminated weekday range".to_string()),
                };
            }
            first = false;
        }
    }

    /// `YEAR-MONTH-DAY` or `MONTH-DAY` (`~` instead of the last `-` counts days from the end of
    /// the month). A first component followed by `:` is an hour: the date is left out.
    fn date(&mut self, spec: &mut CalendarSpec) -> Result<(), String> {
        if self.peek().is_none() {
            return Ok(());
        }
        let start = self.pos;
        let first = self.chain(Field::Day)?;
        match self.peek() {
            None | Some(b':') => {
                self.pos = start;
                return Ok(());
            }
            Some(b'~') => spec.end_of_month = true,
            Some(b'-') => {}
            _ => return Err(self.unexpected()),
        }
        self.pos += 1;
        let second = self.chain(Field::Day)?;
        match self.peek() {
            None | Some(b' ') => {
                self.skip_spaces();
                (spec.month, spec.day) = (first, second);
                return Ok(());
            }
            _ if spec.end_of_month => return Err("'~' goes between the month and the day".to_string()),
            Some(b'~') => spec.end_of_month = true,
            Some(b'-') => {}
            _ => return Err(self.unexpected()),
        }
        self.pos += 1;
        let third = self.chain(Field::Day)?;
        if !matches!(self.peek(), None | Some(b' ')) {
            return Err(self.unexpected());
        }
        self.skip_spaces();
        (spec.year, spec.month, spec.day) = (first, second, third);
        Ok(())
    }

    /// `HOUR:MINUTE[:SECOND]`; none means `00:00:00`, no seconds `:00`.
    fn time(&mut self, spec: &mut CalendarSpec) -> Result<(), String> {
        let zero = || vec![Item::value(0)];
        if self.peek().is_none() {
            (spec.hour, spec.minute, spec.second) = (zero(), zero(), zero());
            return Ok(());
        }
        spec.hour = self.chain(Field::Hour)?;
        if self.peek() != Some(b':') {
            return Err(match self.peek() {
                None => "expected ':' and the minute after the hour".to_string(),
                _ => self.unexpected(),
            });
        }
        self.pos += 1;
        spec.minute = self.chain(Field::Minute)?;
        if self.peek().is_none() {
            spec.second = zero();
            return Ok(());
        }
        if self.peek() != Some(b':') {
            return Err(self.unexpected());
        }
        self.pos += 1;
        spec.second = self.chain(Field::Second)?;
        Ok(())
    }

    /// `@SECONDS`: that instant, in UTC.
    fn timestamp(&mut self, spec: &mut CalendarSpec) -> Result<(), String> {
        let rest = self.rest();
        let digits = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
        if digits.is_empty() {
            return Err(format!("expected seconds after '@' at {rest:?}"));
        }
        self.pos += digits.len();
        let t = digits
            .parse()
            .ok()
            .and_then(|seconds| Timestamp::from_second(seconds).ok())
            .ok_or_else(|| format!("timestamp @{digits} out of range"))?;
        let dt = TimeZone::UTC.to_datetime(t);
        let one = |v: i64| vec![Item::value(v)];
        spec.year = one(i64::from(dt.year()));
        spec.month = one(i64::from(dt.month()));
        spec.day = one(i64::from(dt.day()));
        spec.hour = one(i64::from(dt.hour()));
        spec.minute = one(i64::from(dt.minute()));
        spec.second = one(i64::from(dt.second()) * USEC);
        spec.zone = Zone::Utc;
        Ok(())
    }

    /// `*` or a comma-separated list of values, ranges and repetitions.
    fn chain(&mut self, field: Field) -> Result<Vec<Item>, String> {
        if self.peek() == Some(b'*') {
            self.pos += 1;
            // systemd's `*` for seconds is every whole second.
            return Ok(match field {
                Field::Second => vec![Item { start: 0, stop: None, repeat: USEC }],
                _ => Vec::new(),
            });
        }
        let mut items = Vec::new();
        loop {
            items.push(self.item(field)?);
            if items.len() > MAX_ITEMS {
                return Err(format!("more than {MAX_ITEMS} values in one component"));
            }
            if self.peek() != Some(b',') {
                return Ok(items);
            }
            self.pos += 1;
        }
    }

    fn item(&mut self, field: Field) -> Result<Item, String> {
        let start = self.number(field)?;
        let mut stop = None;
        let mut repeat = 0;
        if self.rest().starts_with("..") {
            self.pos += 2;
            stop = Some(self.number(field)?);
            repeat = field.unit();
        }
        if self.peek() == Some(b'/') {
            self.pos += 1;
            repeat = self.number(field)?;
            if repeat == 0 {
                return Err("a repetition of 0".to_string());
            }
        } else if let Some(stop) = stop.filter(|&stop| field == Field::Second && start + repeat > stop) {
            // systemd: a range of seconds steps a whole second unless told otherwise.
            let item = format_item(field, &Item { start, stop: Some(stop), repeat: 0 }, false);
            return Err(format!("second range {item} holds no whole-second step (add a repetition)"));
        }
        if !matches!(self.peek(), None | Some(b' ' | b',' | b'-' | b'~' | b':')) {
            return Err(self.unexpected());
        }
        Ok(Item { start, stop, repeat })
    }

    /// A decimal number; seconds may have a fraction, kept to the microsecond (rounded).
    fn number(&mut self, field: Field) -> Result<i64, String> {
        let rest = self.rest();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(match rest {
                "" => format!("expected a {} at the end", field_word(field)),
                _ => format!("expected a {} at {rest:?}", field_word(field)),
            });
        }
        let too_large = || format!("number {} is too large", &rest[..digits]);
        let whole: i64 = rest[..digits].parse().map_err(|_| too_large())?;
        self.pos += digits;
        if field != Field::Second {
            return if whole > i64::from(i32::MAX) { Err(too_large()) } else { Ok(whole) };
        }
        let mut value =
            whole.checked_mul(USEC).filter(|&v| v <= i64::from(i32::MAX)).ok_or_else(too_large)?;
        // One '.' is a decimal point; ".." is a range.
        if self.peek() == Some(b'.') && self.text.as_bytes().get(self.pos + 1) != Some(&b'.') {
            self.pos += 1;
            let frac = self.rest();
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return Err(format!("expected digits after the decimal point at {frac:?}"));
            }
            let mut micros = 0;
            for i in 0..6 {
                micros =
                    micros * 10 + frac.as_bytes().get(i).filter(|_| i < n).map_or(0, |b| i64::from(b - b'0'));
            }
            if n > 6 && frac.as_bytes()[6] >= b'5' {
                micros += 1;
            }
            self.pos += n;
            value += micros;
        }
        Ok(value)
    }
}

fn field_word(field: Field) -> &'static str {
    match field {
        // The first date component may be a year, a month or an hour.
        Field::Day => "number",
        other => other.name(),
    }
}

/// A value as written in the normalized form: seconds with their fraction, days counted from the
/// month's end with `~`.
fn show_value(field: Field, v: i64, eom: bool) -> String {
    let mut s = format_value(field, v, 0);
    if eom {
        s.insert(0, '~');
    }
    s
}

fn format_value(field: Field, v: i64, width: usize) -> String {
    let unit = field.unit();
    let mut s = format!("{:0width$}", v / unit);
    if v % unit > 0 {
        s.push_str(&format!(".{:06}", v % unit));
    }
    s
}

/// systemd's rendering of one item: padded values, `..` for ranges, `/` unless the range steps
/// by one.
fn format_item(field: Field, item: &Item, pad: bool) -> String {
    let width = if pad { field.width() } else { 0 };
    let unit = field.unit();
    let mut s = format_value(field, item.start, width);
    if let Some(stop) = item.stop {
        s.push_str("..");
        s.push_str(&format_value(field, stop, width));
    }
    if item.repeat > 0 && !(item.stop.is_some() && item.repeat == unit) {
        s.push_str(&format!("/{}", item.repeat / unit));
        if item.repeat % unit > 0 {
            s.push_str(&format!(".{:06}", item.repeat % unit));
        }
    }
    s
}

fn format_chain(f: &mut fmt::Formatter<'_>, field: Field, chain: &[Item]) -> fmt::Result {
    // systemd shows a seconds list as `*` when it is every whole second and nothing else.
    let every_second = Item { start: 0, stop: None, repeat: USEC };
    let star = chain.is_empty() || (field == Field::Second && chain == [every_second]);
    if star {
        return f.write_str("*");
    }
    let items: Vec<String> = chain.iter().map(|item| format_item(field, item, true)).collect();
    f.write_str(&items.join(","))
}

fn format_weekdays(f: &mut fmt::Formatter<'_>, bits: u8) -> fmt::Result {
    let mut parts = Vec::new();
    let mut day = 0;
    while day < 7 {
        if bits & (1 << day) == 0 {
            day += 1;
            continue;
        }
        let mut end = day;
        while end + 1 < 7 && bits & (1 << (end + 1)) != 0 {
            end += 1;
        }
        match end - day {
            0 => parts.push(WEEKDAYS[day].to_string()),
            1 => parts.push(format!("{},{}", WEEKDAYS[day], WEEKDAYS[end])),
            _ => parts.push(format!("{}..{}", WEEKDAYS[day], WEEKDAYS[end])),
        }
        day = end + 1;
    }
    write!(f, "{} ", parts.join(","))
}

/// systemd's normalized form: `Mon..Fri *-*-* 09:00:00`.
impl fmt::Display for CalendarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weekdays != 0 {
            format_weekdays(f, self.weekdays)?;
        }
        format_chain(f, Field::Year, &self.year)?;
        f.write_str("-")?;
        format_chain(f, Field::Month, &self.month)?;
        f.write_str(if self.end_of_month { "~" } else { "-" })?;
        format_chain(f, Field::Day, &self.day)?;
        f.write_str(" ")?;
        format_chain(f, Field::Hour, &self.hour)?;
        f.write_str(":")?;
        format_chain(f, Field::Minute, &self.minute)?;
        f.write_str(":")?;
        format_chain(f, Field::Second, &self.second)?;
        match &self.zone {
            Zone::Local => Ok(()),
            Zone::Utc => f.write_str(" UTC"),
            Zone::Named { name, .. } => write!(f, " {name}"),
        }
    }
}

impl FromStr for CalendarSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CalendarSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One line for `gitvisor validate`: the normalized form and the next three elapses, shown in
/// the expression's zone (the system's if none).
pub fn describe_calendar(spec: &CalendarSpec, now: Timestamp) -> String {
    let tz = spec.time_zone().unwrap_or_else(local_zone);
    let next = spec.next_n(now, 3);
    if next.is_empty() {
        return format!("{spec} (never elapses again)");
    }
    let times: Vec<String> =
        next.iter().map(|t| t.to_zoned(tz.clone()).strftime("%a %Y-%m-%d %H:%M:%S %Z").to_string()).collect();
    format!("{spec}, next elapses: {}", times.join(", "))
}

#[cfg(test)]
mod tests;
