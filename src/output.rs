//! Human output: aligned tables and short durations.

use std::time::Duration;

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `text` with its control characters (but tab) written visibly, so that printing it cannot
/// drive the terminal: C0 ones and DEL in caret notation (`^[` for ESC, `^M` for CR, `^?`), C1
/// ones as `\u{9b}`.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.into()
}

/// A state as a person reads it: systemd's words for a oneshot that remains active.
pub fn state_label(state: gitvisor_protocol::ServiceState) -> String {
    match state {
        gitvisor_protocol::ServiceState::Active => "active (exited)".to_string(),
        state => state.to_string(),
    }
}

/// `3d 4h`, `5m 12s`, `42s`: the two largest units.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

/// CPU time used: `850ms`, `12.3s`, `4m 2s`.
pub fn cpu_time(ms: u64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms => short_duration(Duration::from_millis(ms)),
    }
}

/// Resident memory given in KiB: `812K`, `12.3M`, `1.5G`.
pub fn memory(kb: u64) -> String {
    match kb {
        kb if kb < 1024 => format!("{kb}K"),
        kb if kb < 1024 * 1024 => format!("{:.1}M", kb as f64 / 1024.0),
        kb => format!("{:.1}G", kb as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["NAME", "STATE"],
            &[vec!["web".into(), "running".into()], vec!["database".into(), "failed".into()]],
        );
        assert_eq!(t, "NAME      STATE\nweb       running\ndatabase  failed");
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(visible("+port: 80\t# web"), "+port: 80\t# web");
        assert_eq!(visible("+a\r"), "+a^M");
        assert_eq!(visible("\x1b[31mred\x07"), "^[[31mred^G");
        assert_eq!(visible("del\x7f c1\u{9b}"), "del^? c1\\u{9b}");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(312)), "5m 12s");
        assert_eq!(short_duration(Duration::from_secs(3 * 86400 + 4 * 3600 + 5)), "3d 4h");
    }

    #[test]
    fn cpu_and_memory_are_short() {
        assert_eq!(cpu_time(850), "850ms");
        assert_eq!(cpu_time(12_340), "12.3s");
        assert_eq!(cpu_time(242_000), "4m 2s");
        assert_eq!(memory(812), "812K");
        assert_eq!(memory(12_595), "12.3M");
        assert_eq!(memory(1_572_864), "1.5G");
    }
}
