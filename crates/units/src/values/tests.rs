use std::time::Duration;

use super::*;

#[test]
fn timespans() {
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    for (text, want) in [
        ("250ms", ms(250)),
        ("5s", secs(5)),
        ("5", secs(5)),
        ("1min 30s", secs(90)),
        ("1min30s", secs(90)),
        ("2h", secs(7200)),
        ("1d", secs(86400)),
        ("1w", secs(7 * 86400)),
        ("1.5s", ms(1500)),
        (".5s", ms(500)),
        ("10us", Duration::from_micros(10)),
        ("10usec", Duration::from_micros(10)),
        ("3msec", ms(3)),
        ("2 sec", secs(2)),
        ("1second 2seconds", secs(3)),
        ("1m", secs(60)),
        ("2minutes", secs(120)),
        ("1hr 1hour 1hours", secs(3 * 3600)),
        ("1day 2days", secs(3 * 86400)),
        ("1week", secs(7 * 86400)),
        ("1M", secs(2_629_800)),
        ("1month", secs(2_629_800)),
        ("1y", secs(31_557_600)),
        ("2years", secs(2 * 31_557_600)),
        ("0", Duration::ZERO),
        (" 1h 2m 3s 4ms ", Duration::new(3723, 4_000_000)),
        ("infinity", Duration::MAX),
    ] {
        assert_eq!(parse_timespan(text), Ok(want), "{text:?}");
    }
}

#[test]
fn bad_timespans() {
    for text in ["", "abc", "5 parsecs", "-5s", "1.2.3s", "s", "5s foo", "99999999999999999999999y"] {
        assert!(parse_timespan(text).is_err(), "{text:?} should fail");
    }
    assert!(parse_timespan("5x").unwrap_err().message.contains("unknown time unit"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("1K"), Ok(1024));
    assert_eq!(parse_size("64M"), Ok(64 << 20));
    assert_eq!(parse_size("1.5G"), Ok(3 << 29));
    assert_eq!(parse_size("2T"), Ok(2 << 40));
    assert_eq!(parse_size("infinity"), Ok(u64::MAX));
    for text in ["", "1X", "-1", "K", "1 Kilo", "99999999999E"] {
        assert!(parse_size(text).is_err(), "{text:?} should fail");
    }
}

#[test]
fn percentages() {
    assert_eq!(parse_percent("150%"), Ok(150));
    assert_eq!(parse_percent("0%"), Ok(0));
    for text in ["150", "%", "-5%", "1.5%", "abc%"] {
        assert!(parse_percent(text).is_err(), "{text:?} should fail");
    }
}

#[test]
fn booleans() {
    for text in ["1", "yes", "Y", "true", "T", "ON"] {
        assert_eq!(parse_bool(text), Ok(true), "{text:?}");
    }
    for text in ["0", "no", "N", "False", "f", "off"] {
        assert_eq!(parse_bool(text), Ok(false), "{text:?}");
    }
    assert!(parse_bool("maybe").is_err());
    assert!(parse_bool("").is_err());
}

#[test]
fn signals() {
    assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
    assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
    assert_eq!(parse_signal("sigint"), Ok(libc::SIGINT));
    assert_eq!(parse_signal("9"), Ok(9));
    assert_eq!(parse_signal("SIGKILL"), Ok(libc::SIGKILL));
    for text in ["0", "65", "SIGNOPE", "", "-1"] {
        assert!(parse_signal(text).is_err(), "{text:?} should fail");
    }
}

fn words(s: &str) -> Vec<String> {
    split_command_line(s).unwrap()
}

#[test]
fn command_lines() {
    assert_eq!(words("/bin/echo  a b\tc "), ["/bin/echo", "a", "b", "c"]);
    assert_eq!(words(r#"/bin/sh -c 'echo "hi there"'"#), ["/bin/sh", "-c", "echo \"hi there\""]);
    assert_eq!(words(r#"a "b c" 'd e'"#), ["a", "b c", "d e"]);
    assert_eq!(words(r#"pre"quoted part"post"#), ["prequoted partpost"]);
    assert_eq!(words(r#"a\nb a\tb a\\b a\"b a\'b"#), ["a\nb", "a\tb", "a\\b", "a\"b", "a'b"]);
    assert_eq!(words(r"\x41\x62 \101 \s \u00e9"), ["Ab", "A", " ", "é"]);
    assert_eq!(words(r#""a\"b""#), ["a\"b"]);
    assert_eq!(words(r#""""#), [""]);
    assert_eq!(words("$HOME ${X}"), ["$HOME", "${X}"]);
    assert!(words("   ").is_empty());
}

#[test]
fn bad_command_lines() {
    let err = split_command_line(r#"/bin/echo "unterminated"#).unwrap_err();
    assert!(err.message.contains("unterminated"), "{err}");
    assert!(split_command_line("/bin/echo 'x").is_err());
    assert!(split_command_line("/bin/echo x\\").is_err());
    assert!(split_command_line(r"\xZZ").is_err());
    assert!(split_command_line(r"\x0").is_err());
    assert!(split_command_line(r"\x00").is_err());
    assert!(split_command_line(r"\q").is_err());
}

#[test]
fn quoted_command_lines_read_back_to_the_same_words() {
    let argv = ["/bin/sh", "-c", "echo 'a b'", "", "x\"y", "back\\slash", "tab\there", "plain"];
    let line = quote_command_line(&argv);
    assert_eq!(line, r#"/bin/sh -c "echo 'a b'" "" "x\"y" "back\\slash" "tab\there" plain"#);
    assert_eq!(split_command_line(&line).unwrap(), argv);
    assert_eq!(quote_command_line::<&str>(&[]), "");
}

// Found by the unit_file fuzz target: a program named `"++x"` (quoted, so not a prefix) was shown
// as `++x`, which pasted back into `ExecStart=` ran `x` with full privileges; a `";"` word was
// shown as `;`, which pasted back split the command in two.
#[test]
fn a_quoted_command_pastes_back_into_exec_start_as_the_same_command() {
    let ctx = crate::SpecifierContext {
        home: "/home/u".into(),
        user: "u".into(),
        uid: 1000,
        runtime_dir: "/run/user/1000".into(),
    };
    for argv in [
        vec!["++x", "a"],
        vec!["-x"],
        vec!["@x", "y", "z"],
        vec![":x"],
        vec!["!!x"],
        vec!["/bin/echo", ";", "-n", "@"],
    ] {
        let line = quote_command_line(&argv);
        assert_eq!(split_command_line(&line).unwrap(), argv, "{line}");
        let file = format!("[Service]\nExecStart={line}\n");
        let unit = crate::load_unit("t.service", file.as_bytes(), &ctx)
            .unwrap_or_else(|d| panic!("{line}: {d:?}"))
            .unit;
        assert_eq!(unit.exec_start.argv, argv, "{line}");
        assert!(
            !unit.exec_start.privileged && !unit.exec_start.ignore_failure && unit.exec_start.arg0.is_none()
        );
    }
    assert_eq!(
        quote_command_line(&["/bin/echo", "-n", "@"]),
        "/bin/echo -n @",
        "only the program is quoted for a prefix"
    );
}
