//! Typed values as systemd writes them: time spans, sizes, percentages, booleans, signals and
//! command lines. Also used for the engine's own settings.

use std::time::Duration;

/// A value that does not parse. The message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub message: String,
}

impl ValueError {
    pub fn new(message: impl Into<String>) -> Self {
        ValueError { message: message.into() }
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn timespan_unit(unit: &str) -> Option<u128> {
    const MIN: u128 = 60 * NANOS_PER_SEC;
    const HOUR: u128 = 60 * MIN;
    const DAY: u128 = 24 * HOUR;
    Some(match unit {
        "ns" | "nsec" => 1,
        "us" | "usec" | "µs" | "μs" => 1_000,
        "ms" | "msec" => 1_000_000,
        "" | "s" | "sec" | "second" | "seconds" => NANOS_PER_SEC,
        "m" | "min" | "minute" | "minutes" => MIN,
        "h" | "hr" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7 * DAY,
        // systemd's month and year: 30.44 and 365.25 days.
        "M" | "month" | "months" => 2_629_800 * NANOS_PER_SEC,
        "y" | "year" | "years" => 31_557_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// A leading decimal number: `(integer part, fraction digits, rest)`.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            after_dot.split_at(frac_len)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, rest))
}

/// `int.frac * unit`, exactly, in the unit's base quantity. None on overflow.
fn scale(int: &str, frac: &str, unit: u128) -> Option<u128> {
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let total = whole.checked_mul(unit)?;
    // Digits finer than a nanosecond (or a byte) are dropped, as systemd does.
    let digits = &frac[..frac.len().min(18)];
    if digits.is_empty() {
        return Some(total);
    }
    let numerator: u128 = digits.parse().ok()?;
    total.checked_add(numerator * unit / 10u128.pow(digits.len() as u32))
}

/// Parses a systemd time span: `250ms`, `5s`, `1min 30s`, `1.5h`, a bare number (seconds) or
/// `infinity` (which maps to [`Duration::MAX`]).
pub fn parse_timespan(s: &str) -> Result<Duration, ValueError> {
    let invalid = || ValueError::new(format!("invalid time span {s:?}"));
    let s = s.trim();
    if s == "infinity" {
        return Ok(Duration::MAX);
    }
    if s.is_empty() {
        return Err(ValueError::new("empty time span"));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (int, frac, after) = split_number(rest).ok_or_else(invalid)?;
        let after = after.trim_start();
        let unit_len = after.char_indices().find(|(_, c)| !c.is_alphabetic()).map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() && !after.is_empty() {
            // A bare number means seconds, but only on its own or at the end.
            return Err(invalid());
        }
        let unit = timespan_unit(unit)
            .ok_or_else(|| ValueError::new(format!("unknown time unit {unit:?} in {s:?}")))?;
        let part = scale(int, frac, unit).ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid())?;
    // The remainder is below one second, so it fits in u32.
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// Parses a size in bytes with an optional `K`, `M`, `G`, `T`, `P` or `E` suffix (base 1024),
/// or `infinity` ([`u64::MAX`]).
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let invalid = || ValueError::new(format!("invalid size {s:?}"));
    let s = s.trim();
    if s == "infinity" {
        return Ok(u64::MAX);
    }
    let (int, frac, suffix) = split_number(s).ok_or_else(invalid)?;
    let shift = match suffix.trim_start() {
        "" | "B" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        other => {
            return Err(ValueError::new(format!("unknown size suffix {other:?} in {s:?} (use K, M, G or T)")))
        }
    };
    let bytes = scale(int, frac, 1u128 << shift).ok_or_else(invalid)?;
    u64::try_from(bytes).map_err(|_| ValueError::new(format!("size {s:?} is too large")))
}

/// Parses a percentage such as `150%`.
pub fn parse_percent(s: &str) -> Result<u32, ValueError> {
    let s = s.trim();
    s.strip_suffix('%')
        .and_then(|n| {
            let n = n.trim_end();
            n.bytes().all(|b| b.is_ascii_digit()).then(|| n.parse().ok())?
        })
        .ok_or_else(|| ValueError::new(format!("invalid percentage {s:?} (expected e.g. 50%)")))
}

/// Parses systemd's booleans, case-insensitively.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Ok(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Ok(false),
        _ => Err(ValueError::new(format!("invalid boolean {s:?} (expected yes or no)"))),
    }
}

fn signal_by_name(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" => libc::SIGIO,
        "SYS" => libc::SIGSYS,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "POLL" => libc::SIGPOLL,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "PWR" => libc::SIGPWR,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        "STKFLT" => libc::SIGSTKFLT,
        _ => return None,
    })
}

/// Parses a signal: `SIGTERM`, `TERM` or a number from 1 to 64.
pub fn parse_signal(s: &str) -> Result<i32, ValueError> {
    let s = s.trim();
    if let Ok(number) = s.parse::<i32>() {
        return match number {
            1..=64 => Ok(number),
            _ => Err(ValueError::new(format!("invalid signal number {number}"))),
        };
    }
    let upper = s.to_ascii_uppercase();
    signal_by_name(upper.strip_prefix("SIG").unwrap_or(&upper))
        .ok_or_else(|| ValueError::new(format!("unknown signal {s:?}")))
}

/// Exit statuses and signals, as `SuccessExitStatus=`, `RestartPreventExitStatus=` and
/// `RestartForceExitStatus=` list them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatusSet {
    pub codes: Vec<i32>,
    pub signals: Vec<i32>,
}

impl ExitStatusSet {
    /// The end (an exit status or a killing signal) is in the set.
    pub fn contains(&self, code: Option<i32>, signal: Option<i32>) -> bool {
        code.is_some_and(|c| self.codes.contains(&c)) || signal.is_some_and(|s| self.signals.contains(&s))
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty() && self.signals.is_empty()
    }
}

/// The exit status names systemd knows besides numbers (BSD sysexits and LSB's).
fn exit_status_by_name(name: &str) -> Option<i32> {
    Some(match name {
        "INVALIDARGUMENT" => 2,
        "NOTIMPLEMENTED" => 3,
        "NOPERMISSION" => 4,
        "NOTINSTALLED" => 5,
        "NOTCONFIGURED" => 6,
        "NOTRUNNING" => 7,
        "USAGE" => 64,
        "DATAERR" => 65,
        "NOINPUT" => 66,
        "NOUSER" => 67,
        "NOHOST" => 68,
        "UNAVAILABLE" => 69,
        "SOFTWARE" => 70,
        "OSERR" => 71,
        "OSFILE" => 72,
        "CANTCREAT" => 73,
        "IOERR" => 74,
        "TEMPFAIL" => 75,
        "PROTOCOL" => 76,
        "NOPERM" => 77,
        "CONFIG" => 78,
        _ => return None,
    })
}

/// `75 TEMPFAIL SIGUSR1 KILL`: numbers 0–255, systemd's status names, signal names.
pub fn parse_exit_statuses(s: &str) -> Result<ExitStatusSet, ValueError> {
    let mut set = ExitStatusSet::default();
    for word in s.split_whitespace() {
        if let Ok(n) = word.parse::<i32>() {
            if !(0..=255).contains(&n) {
                return Err(ValueError::new(format!("exit status {n} is out of range (0 to 255)")));
            }
            set.codes.push(n);
        } else if let Some(n) = exit_status_by_name(word) {
            set.codes.push(n);
        } else {
            let upper = word.to_ascii_uppercase();
            let signal = signal_by_name(upper.strip_prefix("SIG").unwrap_or(&upper))
                .ok_or_else(|| ValueError::new(format!("{word:?} is neither an exit status nor a signal")))?;
            set.signals.push(signal);
        }
    }
    Ok(set)
}

/// Splits a command line or an `Environment=` value into words with systemd's rules: words are
/// separated by whitespace, double and single quotes group, and backslash escapes (`\n`, `\t`,
/// `\\`, `\"`, `\'`, `\s`, `\xNN`, octal `\NNN`, `\uNNNN`) are decoded inside and outside quotes.
/// `$VAR` references are left as they are.
pub fn split_command_line(s: &str) -> Result<Vec<String>, ValueError> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        loop {
            let Some(c) = chars.next() else {
                if let Some(q) = quote {
                    return Err(ValueError::new(format!("unterminated {q} quote in {s:?}")));
                }
                break;
            };
            match (quote, c) {
                (_, '\\') => word.push(unescape(&mut chars, s)?),
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, c) if c.is_whitespace() => break,
                (_, c) => word.push(c),
            }
        }
        words.push(word);
    }
}

/// Splits an `Exec…=` value into its commands: systemd separates them with a `;` standing as a
/// word of its own, outside quotes (`\;` is a literal semicolon, `a;` is not a separator). The
/// parts are returned as written, for [`split_command_line`].
pub fn split_commands(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut chars = s.char_indices().peekable();
    let mut at_word_start = true;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                chars.next();
                at_word_start = false;
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ';') if at_word_start && chars.peek().is_none_or(|(_, n)| n.is_whitespace()) => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        at_word_start = quote.is_none() && c.is_whitespace();
    }
    parts.push(&s[start..]);
    parts
}

/// The command line a person reads (in logs) and could paste back into `ExecStart=`: words that
/// need it are double-quoted with `\` escapes, so an empty argument shows as `""` and a word
/// with spaces stays one word. [`split_command_line`] reads it back to the same words. A program
/// starting with a prefix character (`-`, `@`, `:`, `+`, `!`) and a `;` word are quoted too, so
/// `ExecStart=` reads them as words rather than as prefixes or a separator.
pub fn quote_command_line<S: AsRef<str>>(argv: &[S]) -> String {
    let quote = |(i, w): (usize, &str)| -> String {
        let plain = !w.is_empty()
            && w.chars().all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\'' | '\\'))
            && w != ";"
            && !(i == 0 && w.starts_with(['-', '@', ':', '+', '!']));
        if plain {
            return w.to_string();
        }
        let mut q = String::with_capacity(w.len() + 2);
        q.push('"');
        for c in w.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\r' => q.push_str("\\r"),
                c if c.is_control() => q.push_str(&format!("\\x{:02x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    argv.iter().enumerate().map(|(i, w)| quote((i, w.as_ref()))).collect::<Vec<_>>().join(" ")
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, s: &str) -> Result<char, ValueError> {
    let bad = |what: &str| ValueError::new(format!("{what} in {s:?}"));
    let c = chars.next().ok_or_else(|| bad("trailing backslash"))?;
    let mut code = |digits: usize, radix: u32| -> Result<char, ValueError> {
        let text: String = (0..digits).filter_map(|_| chars.next()).collect();
        u32::from_str_radix(&text, radix)
            .ok()
            .filter(|_| text.len() == digits)
            .and_then(char::from_u32)
            .filter(|&c| c != '\0')
            .ok_or_else(|| bad(&format!("invalid escape sequence \\{c}{text}")))
    };
    Ok(match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        's' => ' ',
        '\\' | '"' | '\'' | ';' => c,
        'x' => code(2, 16)?,
        'u' => code(4, 16)?,
        'U' => code(8, 16)?,
        '0'..='7' => {
            let text: String = std::iter::once(c).chain((0..2).filter_map(|_| chars.next())).collect();
            u32::from_str_radix(&text, 8)
                .ok()
                .filter(|_| text.len() == 3)
                .and_then(char::from_u32)
                .filter(|&c| c != '\0')
                .ok_or_else(|| bad(&format!("invalid octal escape \\{text}")))?
        }
        other => return Err(bad(&format!("invalid escape sequence \\{other}"))),
    })
}

#[cfg(test)]
mod tests;
