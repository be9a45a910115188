use super::*;

fn spec(text: &str) -> CalendarSpec {
    CalendarSpec::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn normalized(text: &str) -> String {
    spec(text).to_string()
}

fn error(text: &str) -> String {
    match CalendarSpec::parse(text) {
        Ok(s) => panic!("{text:?} should not parse, got {s}"),
        Err(e) => e.message,
    }
}

/// An instant written as RFC 3339 (`2026-12-04T18:00:00Z`, `…+02:00`).
fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn next(text: &str, after: &str) -> Option<Timestamp> {
    spec(text).next_after_in(at(after), &TimeZone::UTC)
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").expect("the system's zoneinfo has Europe/Berlin")
}

#[test]
fn normalized_forms_from_the_manual() {
    // systemd.time(7), "Calendar Events".
    for (input, want) in [
        ("Sat,Thu,Mon..Wed,Sat..Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00"),
        ("Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00"),
        ("Wed *-1", "Wed *-*-01 00:00:00"),
        ("Wed..Wed,Wed *-1", "Wed *-*-01 00:00:00"),
        ("Wed, 17:48", "Wed *-*-* 17:48:00"),
        ("Wed..Sat,Tue 12-10-15 1:2:3", "Tue..Sat 2012-10-15 01:02:03"),
        ("*-*-7 0:0:0", "*-*-07 00:00:00"),
        ("10-15", "*-10-15 00:00:00"),
        ("monday *-12-* 17:00", "Mon *-12-* 17:00:00"),
        ("Mon,Fri *-*-3,1,2 *:30:45", "Mon,Fri *-*-01,02,03 *:30:45"),
        ("12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00"),
        ("12..14:10,20,30", "*-*-* 12..14:10,20,30:00"),
        ("mon,fri *-1/2-1,3 *:30:45", "Mon,Fri *-01/2-01,03 *:30:45"),
        ("03-05 08:05:40", "*-03-05 08:05:40"),
        ("08:05:40", "*-*-* 08:05:40"),
        ("05:40", "*-*-* 05:40:00"),
        ("Sat,Sun 12-05 08:05:40", "Sat,Sun *-12-05 08:05:40"),
        ("Sat,Sun 08:05:40", "Sat,Sun *-*-* 08:05:40"),
        ("2003-03-05 05:40", "2003-03-05 05:40:00"),
        ("05:40:23.4200004/3.1700005", "*-*-* 05:40:23.420000/3.170001"),
        ("2003-02..04-05", "2003-02..04-05 00:00:00"),
        ("2003-03-05 05:40 UTC", "2003-03-05 05:40:00 UTC"),
        ("2003-03-05", "2003-03-05 00:00:00"),
        ("03-05", "*-03-05 00:00:00"),
        ("hourly", "*-*-* *:00:00"),
        ("daily", "*-*-* 00:00:00"),
        ("daily UTC", "*-*-* 00:00:00 UTC"),
        ("monthly", "*-*-01 00:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("weekly Pacific/Auckland", "Mon *-*-* 00:00:00 Pacific/Auckland"),
        ("yearly", "*-01-01 00:00:00"),
        ("annually", "*-01-01 00:00:00"),
        ("*:2/3", "*-*-* *:02/3:00"),
    ] {
        assert_eq!(normalized(input), want, "{input:?}");
    }
}

#[test]
fn more_normalized_forms() {
    for (input, want) in [
        ("minutely", "*-*-* *:*:00"),
        ("DAILY", "*-*-* 00:00:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("semiannually", "*-01,07-01 00:00:00"),
        ("semi-annually", "*-01,07-01 00:00:00"),
        ("Mon..Fri 09:00", "Mon..Fri *-*-* 09:00:00"),
        ("*-*-* 02:00:00", "*-*-* 02:00:00"),
        ("2026-12-25", "2026-12-25 00:00:00"),
        ("12-25", "*-12-25 00:00:00"),
        ("*:0/15", "*-*-* *:00/15:00"),
        ("Sat *-*-1..7 18:00", "Sat *-*-01..07 18:00:00"),
        ("*-02~03", "*-02~03 00:00:00"),
        ("*-02~01", "*-02~01 00:00:00"),
        ("Mon *-05~07/1", "Mon *-05~07/1 00:00:00"),
        ("*~03", "*-*~03 00:00:00"),
        ("*-*~05,3", "*-*~03,05 00:00:00"),
        // `~` with every day is every day.
        ("*-*~* 00:00:00", "*-*-* 00:00:00"),
        // Every weekday is no restriction; systemd's old `-` ranges still read.
        ("Mon,Tue,Wed,Thu,Fri,Sat,Sun", "*-*-* 00:00:00"),
        ("Mon-Wed,Fri", "Mon..Wed,Fri *-*-* 00:00:00"),
        ("Monday,Tuesday 1:0", "Mon,Tue *-*-* 01:00:00"),
        ("Sat,Sun", "Sat,Sun *-*-* 00:00:00"),
        ("*:*", "*-*-* *:*:00"),
        ("*:*:*", "*-*-* *:*:*"),
        ("*:*:0.5", "*-*-* *:*:00.500000"),
        ("*:*:0/0.25", "*-*-* *:*:00/0.250000"),
        ("00:00:1.125..2.125", "*-*-* 00:00:01.125000..02.125000"),
        // A range ends on its last step; a range of one value, or whose step never comes, is
        // that value.
        ("00:00:1.0..3.8", "*-*-* 00:00:01..03"),
        ("1..10/4:00", "*-*-* 01..09/4:00:00"),
        ("00:05..05", "*-*-* 00:05:00"),
        ("00:1..2/3", "*-*-* 00:01:00"),
        ("*:0..59/60", "*-*-* *:00:00"),
        ("9..11,13:00,30", "*-*-* 09..11,13:00,30:00"),
        ("1..3-1..3 1..3:1..3", "*-01..03-01..03 01..03:01..03:00"),
        ("*:4,30:0..3", "*-*-* *:04,30:00..03"),
        // Duplicates go, and two-digit years are this or the last century.
        ("*:5,5,1,5", "*-*-* *:01,05:00"),
        ("89-1-1", "1989-01-01 00:00:00"),
        ("2012/2-*-*", "2012/2-*-* 00:00:00"),
        ("@0", "1970-01-01 00:00:00 UTC"),
        ("@1493187147", "2017-04-26 06:12:27 UTC"),
        ("daily Europe/Berlin", "*-*-* 00:00:00 Europe/Berlin"),
        ("daily utc", "*-*-* 00:00:00 UTC"),
        ("  Mon   12:00  ", "Mon *-*-* 12:00:00"),
    ] {
        assert_eq!(normalized(input), want, "{input:?}");
    }
}

#[test]
fn the_normalized_form_reads_back_the_same() {
    for input in [
        "Sat,Thu,Mon..Wed,Sat..Sun",
        "mon,fri *-1/2-1,3 *:30:45",
        "05:40:23.4200004/3.1700005",
        "Mon *-05~07/1",
        "*-*~05,3",
        "*:*:*",
        "quarterly",
        "weekly Pacific/Auckland",
        "@1493187147",
        "00:00:1.125..2.125",
    ] {
        let once = spec(input);
        let twice = spec(&once.to_string());
        assert_eq!(once, twice, "{input:?}");
    }
}

// Found by the values fuzz target: `*` stood for a seconds list that held every whole second
// and more (`5.5`), so the normalized form read back as a different expression.
#[test]
fn every_whole_second_and_a_fraction_is_not_shown_as_a_star() {
    assert_eq!(normalized("*:*:00/1,5.5"), "*-*-* *:*:00/1,05.500000");
    let once = spec("*:*:00/1,5.5");
    assert_eq!(spec(&once.to_string()), once);
    assert_eq!(normalized("*:*:00/1"), "*-*-* *:*:*", "alone, it is a star (as in systemd)");
}

#[test]
fn invalid_expressions_say_what_is_wrong() {
    for (input, want) in [
        ("*-13-01", r#"invalid calendar expression "*-13-01": month 13 out of range 1..12"#),
        ("25:00", r#"invalid calendar expression "25:00": hour 25 out of range 0..23"#),
        ("Mon..Funday", r#"invalid calendar expression "Mon..Funday": unknown weekday "Funday""#),
        ("Mond 12:00", r#"invalid calendar expression "Mond 12:00": unknown weekday "Mond""#),
        ("foo", r#"invalid calendar expression "foo": expected a number at "foo""#),
        ("", "empty calendar expression"),
        ("   ", "empty calendar expression"),
        ("Monday..", r#"invalid calendar expression "Monday..": unterminated weekday range"#),
        ("Monday.. 12:00", r#"invalid calendar expression "Monday.. 12:00": unterminated weekday range"#),
        ("Fri..Mon", r#"invalid calendar expression "Fri..Mon": weekday range Fri..Mon runs backwards"#),
        ("*-1..", r#"invalid calendar expression "*-1..": expected a number at the end"#),
        ("12:", r#"invalid calendar expression "12:": expected a minute at the end"#),
        ("12", r#"invalid calendar expression "12": expected ':' and the minute after the hour"#),
        ("12..1/2-*", r#"invalid calendar expression "12..1/2-*": month range 12..1/2 runs backwards"#),
        (
            "20/4:00",
            r#"invalid calendar expression "20/4:00": hour 20/4: the repetition does not fit in 0..23"#,
        ),
        (
            "*:59/1",
            r#"invalid calendar expression "*:59/1": minute 59/1: the repetition does not fit in 0..59"#,
        ),
        (
            "00:00/60",
            r#"invalid calendar expression "00:00/60": minute 0/60: the repetition does not fit in 0..59"#,
        ),
        ("*:0/0", r#"invalid calendar expression "*:0/0": a repetition of 0"#),
        ("*-*~29", r#"invalid calendar expression "*-*~29": day ~29 out of range 1..28"#),
        (
            "*-*~5/5",
            r#"invalid calendar expression "*-*~5/5": day 5/5: the repetition does not fit in 1..28"#,
        ),
        ("2016~11-22", r#"invalid calendar expression "2016~11-22": '~' goes between the month and the day"#),
        ("1969-01-01", r#"invalid calendar expression "1969-01-01": year 1969 out of range 1970..2199"#),
        ("2200-01-01", r#"invalid calendar expression "2200-01-01": year 2200 out of range 1970..2199"#),
        ("*-*-32", r#"invalid calendar expression "*-*-32": day 32 out of range 1..31"#),
        ("*-*-0", r#"invalid calendar expression "*-*-0": day 0 out of range 1..31"#),
        ("00:00:60", r#"invalid calendar expression "00:00:60": second 60 out of range 0..59"#),
        ("00:00:2300", r#"invalid calendar expression "00:00:2300": number 2300 is too large"#),
        (
            "99999999999999999999999:00",
            r#"invalid calendar expression "99999999999999999999999:00": number 99999999999999999999999 is too large"#,
        ),
        ("00:00:00/0.00000001", r#"invalid calendar expression "00:00:00/0.00000001": a repetition of 0"#),
        (
            "00:00:00.0..00.9",
            r#"invalid calendar expression "00:00:00.0..00.9": second range 0..0.900000 holds no whole-second step (add a repetition)"#,
        ),
        (
            "daily Mars/Olympus",
            r#"invalid calendar expression "daily Mars/Olympus": unknown time zone "Mars/Olympus""#,
        ),
        (
            "@88588582097858858",
            r#"invalid calendar expression "@88588582097858858": timestamp @88588582097858858 out of range"#,
        ),
        ("12:00 13:00", r#"invalid calendar expression "12:00 13:00": unexpected " 13:00""#),
    ] {
        assert_eq!(error(input), want, "{input:?}");
    }
    // systemd's own list of refusals.
    for input in [
        "test",
        " utc",
        "UTC",
        "7",
        "121212:1:2",
        "2000-03-05.23 00:00:00",
        "2000-03-05 00:00.1:00",
        "-00:+00/-5",
        "00:+00/-5",
        "2016- 11- 24 12: 30: 00",
        "*~16..31",
        "00:00:18446744073709551615",
        "Mon-",
        "Mon,,Tue",
        "Mon..Wed..Fri",
        "1,*:00",
        "*-*-*-*",
        "00:00:00:00",
        "12:00:00 junk",
        "*:*:5.",
        "Mon\t12:00",
    ] {
        assert!(CalendarSpec::parse(input).is_err(), "{input:?} should not parse");
    }
}

#[test]
fn mangled_expressions_never_panic() {
    let seeds = [
        "Sat,Thu,Mon..Wed,Sat..Sun 2012-*-1,5 11:12:13.5 Europe/Berlin",
        "Mon *-05~07/1 *:0/15:0.25..59.5/0.5 UTC",
        "@1493187147",
        "quarterly Pacific/Auckland",
    ];
    let junk = ["", "*", "~", "-", "..", "/", ",", ":", ".", " ", "9", "99999999999", "é", "@", "/0"];
    let now = at("2026-12-02T14:00:00Z");
    for seed in seeds {
        let chars: Vec<char> = seed.chars().collect();
        for i in 0..=chars.len() {
            for j in i..=chars.len().min(i + 3) {
                for piece in junk {
                    let mangled: String = chars[..i]
                        .iter()
                        .copied()
                        .chain(piece.chars())
                        .chain(chars[j..].iter().copied())
                        .collect();
                    if let Ok(s) = CalendarSpec::parse(&mangled) {
                        let _ = s.next_n(now, 2);
                        assert_eq!(spec(&s.to_string()).to_string(), s.to_string(), "{mangled:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn next_elapse_in_utc() {
    let cases = [
        ("*:0/15 UTC", "2026-12-02T10:07:30Z", Some("2026-12-02T10:15:00Z")),
        // Strictly after: an elapse at the instant itself is not the next one.
        ("*:0/15 UTC", "2026-12-02T10:15:00Z", Some("2026-12-02T10:30:00Z")),
        ("*:0/15 UTC", "2026-12-02T23:59:59.999999Z", Some("2026-12-03T00:00:00Z")),
        // Friday evening: the next working-day morning is Monday's.
        ("Mon..Fri 09:00 UTC", "2026-12-04T18:00:00Z", Some("2026-12-07T09:00:00Z")),
        ("Mon..Fri 09:00 UTC", "2026-12-07T08:59:59Z", Some("2026-12-07T09:00:00Z")),
        ("Sat *-*-1..7 18:00 UTC", "2026-12-02T00:00:00Z", Some("2026-12-05T18:00:00Z")),
        ("Sat *-*-1..7 18:00 UTC", "2026-12-05T18:00:00Z", Some("2027-01-02T18:00:00Z")),
        // The last day of February, in a leap year and not.
        ("*-02~01 UTC", "2024-01-15T00:00:00Z", Some("2024-02-29T00:00:00Z")),
        ("*-02~01 UTC", "2024-03-01T00:00:00Z", Some("2025-02-28T00:00:00Z")),
        ("*-02~03 UTC", "2025-01-01T00:00:00Z", Some("2025-02-26T00:00:00Z")),
        // The last Monday in May (2017-05-29), two ways.
        ("Mon 2017-05~07/1 UTC", "1970-01-01T03:25:45Z", Some("2017-05-29T00:00:00Z")),
        ("Mon 2017-05~01..07 UTC", "1970-01-01T03:25:45Z", Some("2017-05-29T00:00:00Z")),
        ("*-*-01/5 04:00:00 UTC", "1970-01-01T03:25:45Z", Some("1970-01-01T04:00:00Z")),
        ("*-*-01/5 04:00:00 UTC", "1970-01-01T04:00:00Z", Some("1970-01-06T04:00:00Z")),
        ("*-*-01/5 04:00:00 UTC", "1970-01-31T04:00:00Z", Some("1970-02-01T04:00:00Z")),
        ("2017-08-06 9,11,13,15,17:00 UTC", "2017-08-06T14:30:00Z", Some("2017-08-06T15:00:00Z")),
        ("2017-08-06 9..17/2:00 UTC", "2017-08-06T14:30:00Z", Some("2017-08-06T15:00:00Z")),
        ("2016-12-* 3..21/6:00 UTC", "2016-12-24T21:00:00.000001Z", Some("2016-12-25T03:00:00Z")),
        ("*:*:0.5 UTC", "2026-12-02T10:00:00Z", Some("2026-12-02T10:00:00.5Z")),
        ("*:*:* UTC", "2026-12-02T10:00:00.25Z", Some("2026-12-02T10:00:01Z")),
        ("*:*:0/0.25 UTC", "2026-12-02T10:00:00.3Z", Some("2026-12-02T10:00:00.5Z")),
        ("daily UTC", "2026-12-31T12:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("quarterly UTC", "2026-12-02T00:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("2026-12-25 UTC", "2026-12-02T00:00:00Z", Some("2026-12-25T00:00:00Z")),
        ("@1493187147", "2017-01-01T00:00:00Z", Some("2017-04-26T06:12:27Z")),
        ("2199-12-31 23:59:59 UTC", "2199-12-31T00:00:00Z", Some("2199-12-31T23:59:59Z")),
        // Never again: a date that does not exist, a past date, a weekday the date is not on,
        // past systemd's last year.
        ("*-02-30 UTC", "2026-01-01T00:00:00Z", None),
        ("*-04-31", "2026-01-01T00:00:00Z", None),
        ("2003-03-05 UTC", "2026-01-01T00:00:00Z", None),
        ("Sun 2026-12-25 UTC", "2026-01-01T00:00:00Z", None),
        ("@1493187147", "2017-04-26T06:12:27Z", None),
        ("daily UTC", "2199-12-31T00:00:01Z", None),
        ("daily UTC", "2250-06-01T00:00:00Z", None),
    ];
    for (text, after, want) in cases {
        assert_eq!(next(text, after), want.map(at), "{text:?} after {after}");
    }
    // Before 1970 is fine to start from.
    assert_eq!(next("daily UTC", "1960-05-05T05:00:00Z"), Some(at("1960-05-06T00:00:00Z")));
    // The extremes of time do not panic.
    let _ = spec("minutely").next_after_in(Timestamp::MAX, &TimeZone::UTC);
    let _ = spec("minutely").next_after_in(Timestamp::MIN, &TimeZone::UTC);
}

#[test]
fn next_elapse_across_daylight_saving_time() {
    // Berlin, 2026: 02:00 CET becomes 03:00 CEST on March 29; 03:00 CEST becomes 02:00 CET on
    // October 25.
    for (text, after, want) in [
        // 02:30 does not exist on March 29: that day is skipped.
        ("*-*-* 02:30:00 Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-30T02:30:00+02:00"),
        // Hourly at :30 goes on at 03:30 CEST, where the clock lands.
        ("*:30 Europe/Berlin", "2026-03-29T01:45:00+01:00", "2026-03-29T03:30:00+02:00"),
        ("*:0/15 Europe/Berlin", "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00"),
        ("daily Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T00:00:00+01:00"),
        ("daily Europe/Berlin", "2026-03-29T12:00:00Z", "2026-03-30T00:00:00+02:00"),
        // 02:30 happens twice on October 25: it elapses once, the first time.
        ("*-*-* 02:30:00 Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T02:30:00+02:00"),
        ("*-*-* 02:30:00 Europe/Berlin", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"),
        ("*:0/15 Europe/Berlin", "2026-10-25T02:50:00+02:00", "2026-10-25T03:00:00+01:00"),
        // Starting in the repeated hour, its times count.
        ("*:0/15 Europe/Berlin", "2026-10-25T02:10:00+01:00", "2026-10-25T02:15:00+01:00"),
        // systemd's own cases: New Zealand's switches in 2017.
        ("2017-04-02 02:30:00 Pacific/Auckland", "1970-01-01T03:25:45Z", "2017-04-02T02:30:00+13:00"),
        ("2017-09-24 03:30:00 Pacific/Auckland", "1970-01-01T03:25:45Z", "2017-09-24T03:30:00+13:00"),
    ] {
        assert_eq!(next(text, after), Some(at(want)), "{text:?} after {after}");
    }
    assert_eq!(next("2017-09-24 02:30:00 Pacific/Auckland", "2017-01-01T00:00:00Z"), None);
    assert_eq!(next("2017-04-02 02:30:00 Pacific/Auckland", "2017-04-02T02:30:00+13:00"), None);
}

#[test]
fn an_expression_without_a_zone_uses_the_local_one() {
    let local = spec("*-*-* 02:30:00");
    let explicit = spec("*-*-* 02:30:00 Europe/Berlin");
    let after = at("2026-03-28T12:00:00Z");
    assert_eq!(local.next_after_in(after, &berlin()), explicit.next_after_in(after, &TimeZone::UTC));
    assert_eq!(local.next_after_in(after, &TimeZone::UTC), Some(at("2026-03-29T02:30:00Z")));
    assert_eq!(local.time_zone(), None);
    assert_eq!(explicit.time_zone(), Some(berlin()));
}

#[test]
fn the_next_few_elapses() {
    let hourly = spec("hourly UTC");
    let after = at("2026-12-02T14:20:00Z");
    let want: Vec<Timestamp> = ["2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z", "2026-12-02T17:00:00Z"]
        .into_iter()
        .map(at)
        .collect();
    assert_eq!(hourly.next_n(after, 3), want);
    assert_eq!(spec("2026-12-25 UTC").next_n(after, 3), vec![at("2026-12-25T00:00:00Z")]);
    assert_eq!(spec("*-02-30").next_n(after, 3), vec![]);
}

#[test]
fn describing_for_validate() {
    let now = at("2026-12-04T18:00:00Z");
    assert_eq!(
        describe_calendar(&spec("Mon..Fri 09:00 UTC"), now),
        "Mon..Fri *-*-* 09:00:00 UTC, next elapses: Mon 2026-12-07 09:00:00 UTC, \
         Tue 2026-12-08 09:00:00 UTC, Wed 2026-12-09 09:00:00 UTC"
    );
    assert_eq!(
        describe_calendar(&spec("daily Europe/Berlin"), now),
        "*-*-* 00:00:00 Europe/Berlin, next elapses: Sat 2026-12-05 00:00:00 CET, \
         Sun 2026-12-06 00:00:00 CET, Mon 2026-12-07 00:00:00 CET"
    );
    assert_eq!(describe_calendar(&spec("2003-03-05"), now), "2003-03-05 00:00:00 (never elapses again)");
}

/// Whether a chain allows `v`, written independently of the search.
fn allows(chain: &[Item], v: i64) -> bool {
    chain.is_empty()
        || chain.iter().any(|item| {
            v == item.start
                || (item.repeat > 0
                    && v > item.start
                    && (v - item.start) % item.repeat == 0
                    && item.stop.is_none_or(|stop| v <= stop))
        })
}

fn matches(s: &CalendarSpec, dt: DateTime) -> bool {
    let last = i64::from(dt.date().days_in_month());
    let day = i64::from(dt.day());
    let day_ok = if s.end_of_month {
        s.day.iter().any(|item| allows(&[from_end_of_month(item, last)], day))
    } else {
        allows(&s.day, day)
    };
    let weekday = dt.date().weekday().to_monday_zero_offset();
    let usec = i64::from(dt.second()) * USEC + i64::from(dt.subsec_nanosecond()) / 1000;
    (s.weekdays == 0 || s.weekdays & (1 << weekday) != 0)
        && allows(&s.year, i64::from(dt.year()))
        && allows(&s.month, i64::from(dt.month()))
        && day_ok
        && allows(&s.hour, i64::from(dt.hour()))
        && allows(&s.minute, i64::from(dt.minute()))
        && allows(&s.second, usec)
}

#[test]
fn elapses_are_later_and_match_the_expression() {
    let specs = [
        "*:0/15",
        "Mon..Fri 09:00",
        "Sat *-*-1..7 18:00",
        "*-02~01",
        "*-*~01..03 12:00",
        "mon,fri *-1/2-1,3 *:30:45",
        "*:*:0/7.5",
        "quarterly",
        "2030..2199/3-2..11/3-29 3..21/6:10,40",
        "Mon *-05~07/1 04:00",
        "*-*-* 02:30:00",
        "*:30",
    ];
    let zones = [TimeZone::UTC, berlin(), TimeZone::get("America/New_York").unwrap()];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for text in specs {
        let s = spec(text);
        for tz in &zones {
            for _ in 0..150 {
                // xorshift: instants spread over 1970..2100, some near DST switches by chance.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let after = Timestamp::from_microsecond((x % 4_102_444_800_000_000) as i64).unwrap();
                let Some(t) = s.next_after_in(after, tz) else {
                    panic!("{text:?} in {tz:?} after {after}: no elapse");
                };
                assert!(t > after, "{text:?} after {after}: {t}");
                assert!(
                    matches(&s, tz.to_datetime(t)),
                    "{text:?} in {tz:?} after {after}: {t} does not match"
                );
                // Nothing in between: the elapse is also the next one from just before it.
                let just_before = t.checked_sub(SignedDuration::from_micros(1)).unwrap();
                assert_eq!(s.next_after_in(just_before.max(after), tz), Some(t), "{text:?} after {after}");
            }
        }
    }
}

#[test]
fn no_earlier_match_is_skipped() {
    // A brute-force walk over every minute in UTC, for expressions that elapse on whole minutes.
    for text in ["*:0/15", "Mon..Fri 09:00", "*-*~01..03 12:00", "Sat,Sun *-*-* 1..5/2:10,50", "*:30"] {
        let s = spec(text);
        let mut t = at("2026-02-20T00:00:00Z");
        let end = at("2026-03-10T00:00:00Z");
        let mut expected = s.next_after_in(t, &TimeZone::UTC).unwrap();
        while t < end {
            t = t.checked_add(SignedDuration::from_secs(60)).unwrap();
            if matches(&s, TimeZone::UTC.to_datetime(t)) {
                assert_eq!(expected, t, "{text:?}: an elapse was skipped");
                expected = s.next_after_in(t, &TimeZone::UTC).unwrap();
            } else {
                assert!(expected > t, "{text:?}: {expected} does not match");
            }
        }
    }
}
