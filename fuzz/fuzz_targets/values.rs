//! An arbitrary string through every value parser of the units crate: time spans, sizes,
//! percentages, booleans, signals, exit statuses, command lines and calendar expressions.
#![no_main]

use std::time::Duration;

use gitvisor_units::{
    parse_bool, parse_exit_statuses, parse_percent, parse_signal, parse_size, parse_timespan,
    quote_command_line, split_command_line, split_commands, CalendarSpec, TimeZone, Timestamp,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    timespan(s);
    size(s);
    small_values(s);
    command_line(s);
    commands(s);
    exit_statuses(s);
    calendar(s);
});

/// Time spans: never a panic; surrounding blanks change nothing; a finite result is exact
/// (reads back from its seconds and nanoseconds); digits alone are seconds.
fn timespan(s: &str) {
    let parsed = parse_timespan(s);
    assert_eq!(parse_timespan(&format!(" {s}\t")).ok(), parsed.clone().ok(), "blanks around {s:?}");
    let Ok(d) = parsed else { return };
    if d != Duration::MAX {
        let again = format!("{}s {}ns", d.as_secs(), d.subsec_nanos());
        assert_eq!(parse_timespan(&again), Ok(d), "{s:?} gave {d:?}, shown as {again:?}");
    }
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(Some(d), t.parse().ok().map(Duration::from_secs), "{s:?} is seconds");
    }
}

/// Sizes: never a panic; a result reads back as plain bytes; `K` is 1024 times the number.
fn size(s: &str) {
    let Ok(bytes) = parse_size(s) else { return };
    if bytes != u64::MAX {
        assert_eq!(parse_size(&bytes.to_string()), Ok(bytes), "{s:?}");
        assert_eq!(parse_size(&format!("{bytes}B")), Ok(bytes), "{s:?}");
    }
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(Some(bytes), t.parse().ok(), "{s:?} is bytes");
        let kib = parse_size(&format!("{t}K"));
        match bytes.checked_mul(1024) {
            Some(k) => assert_eq!(kib, Ok(k), "{t}K"),
            None => assert!(kib.is_err(), "{t}K overflows"),
        }
    }
}

fn small_values(s: &str) {
    if let Ok(p) = parse_percent(s) {
        assert_eq!(parse_percent(&format!("{p}%")), Ok(p));
    }
    if let Ok(b) = parse_bool(s) {
        assert_eq!(parse_bool(if b { "yes" } else { "no" }), Ok(b));
    }
    if let Ok(signal) = parse_signal(s) {
        assert!((1..=64).contains(&signal), "{s:?} gave signal {signal}");
    }
}

/// Splitting never makes a word with NUL (execve would refuse it); quoting the words gives a
/// line that splits back to them.
fn command_line(s: &str) {
    let Ok(words) = split_command_line(s) else { return };
    // A unit file cannot hold a NUL byte (and a NUL cannot be quoted); an escape must not make one.
    if s.contains('\0') {
        return;
    }
    for word in &words {
        assert!(!word.contains('\0'), "NUL in {word:?} from {s:?}");
    }
    let line = quote_command_line(&words);
    assert_eq!(split_command_line(&line).as_ref(), Ok(&words), "{s:?} quoted as {line:?}");
}

/// The commands of an `Exec…=` value are the text cut at separators: joined back with `;` they
/// are the text.
fn commands(s: &str) {
    let parts = split_commands(s);
    assert!(!parts.is_empty());
    assert_eq!(parts.join(";"), s);
}

fn exit_statuses(s: &str) {
    let Ok(set) = parse_exit_statuses(s) else { return };
    assert!(set.codes.iter().all(|c| (0..=255).contains(c)), "{s:?}: {set:?}");
    assert!(set.signals.iter().all(|c| (1..=64).contains(c)), "{s:?}: {set:?}");
    assert_eq!(set.codes.len() + set.signals.len(), s.split_whitespace().count(), "{s:?}");
}

/// A calendar expression's normalized form reads back to the same expression; the next elapse
/// is strictly later, and so is the one after it.
fn calendar(s: &str) {
    let Ok(spec) = CalendarSpec::parse(s) else { return };
    let shown = spec.to_string();
    let again = CalendarSpec::parse(&shown).unwrap_or_else(|e| panic!("{s:?} shown as {shown:?}: {e}"));
    assert_eq!(again, spec, "{s:?} shown as {shown:?}");
    assert_eq!(again.to_string(), shown);
    // A zone with daylight saving time (gaps and folds), without the system's zoneinfo.
    let zone = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a valid POSIX zone");
    for t in [0, 1_700_000_000, 4_102_444_799] {
        let t = Timestamp::from_second(t).expect("in range");
        for tz in [&TimeZone::UTC, &zone] {
            let Some(next) = spec.next_after_in(t, tz) else { continue };
            assert!(next > t, "{shown:?}: next after {t} is {next}");
            assert_eq!(again.next_after_in(t, tz), Some(next), "{shown:?}");
            if let Some(later) = spec.next_after_in(next, tz) {
                assert!(later > next, "{shown:?}: next after {next} is {later}");
            }
        }
    }
}
