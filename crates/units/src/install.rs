//! Enabling and disabling a unit by editing its text, as `gitvisor enable|disable` commits it:
//! the least change that makes `[Install] WantedBy=` say what is asked, every other line (and
//! comment) kept as the user wrote it.

use crate::syntax;

const SECTION: &str = "Install";
const KEY: &str = "WantedBy";
const LINE: &str = "WantedBy=default.target";

/// The unit's text with `[Install] WantedBy=` set (`enabled`) or removed; `None` when the text
/// already says so (or is not text a unit could be).
pub fn with_enabled(text: &str, enabled: bool) -> Option<String> {
    let (entries, _) = syntax::parse(text);
    let wanted: Vec<&syntax::Entry> =
        entries.iter().filter(|e| e.section == SECTION && e.key == KEY).collect();
    // An empty assignment resets the list, as the typed layer reads it: the last one decides.
    let is_enabled = wanted.last().is_some_and(|e| !e.value.is_empty());
    if is_enabled == enabled {
        return None;
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if enabled {
        let header = lines.iter().rposition(|l| l.trim() == format!("[{SECTION}]"));
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        match header {
            Some(h) => {
                if !out[h].ends_with('\n') {
                    out[h].push('\n');
                }
                out.insert(h + 1, format!("{LINE}\n"));
            }
            None => {
                if out.last().is_some_and(|l| !l.ends_with('\n')) {
                    out.push("\n".into());
                }
                if !out.is_empty() {
                    out.push("\n".into());
                }
                out.push(format!("[{SECTION}]\n{LINE}\n"));
            }
        }
        return Some(out.concat());
    }
    // Remove each WantedBy= assignment with the lines it continues onto.
    let mut drop = vec![false; lines.len()];
    for e in wanted {
        let mut i = e.line - 1;
        while i < lines.len() {
            drop[i] = true;
            if !continues(lines[i]) {
                break;
            }
            i += 1;
        }
    }
    Some(lines.iter().zip(drop).filter(|(_, d)| !d).map(|(l, _)| *l).collect())
}

/// The line ends in an unescaped backslash: the assignment goes on.
fn continues(line: &str) -> bool {
    let body = line.trim_end_matches(['\n', '\r']);
    (body.len() - body.trim_end_matches('\\').len()) % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/web\n";

    #[test]
    fn enabling_adds_an_install_section_once() {
        let on = with_enabled(BASE, true).unwrap();
        assert_eq!(on, format!("{BASE}\n[Install]\nWantedBy=default.target\n"));
        assert_eq!(with_enabled(&on, true), None, "already enabled");
        let no_newline = with_enabled("[Service]\nExecStart=/bin/x", true).unwrap();
        assert_eq!(no_newline, "[Service]\nExecStart=/bin/x\n\n[Install]\nWantedBy=default.target\n");
    }

    #[test]
    fn enabling_uses_an_existing_install_section() {
        let text = format!("{BASE}[Install]\n# who starts it\nAlias=w.service\n");
        let on = with_enabled(&text, true).unwrap();
        assert_eq!(
            on,
            format!("{BASE}[Install]\nWantedBy=default.target\n# who starts it\nAlias=w.service\n")
        );
        // An emptied list counts as not enabled.
        let emptied = format!("{BASE}[Install]\nWantedBy=default.target\nWantedBy=\n");
        assert!(with_enabled(&emptied, true).is_some());
        assert_eq!(with_enabled(&emptied, false), None);
    }

    #[test]
    fn disabling_removes_every_wanted_by_and_keeps_the_rest() {
        let text = format!(
            "{BASE}[Install]\n# keep me\nWantedBy=default.target\nWantedBy=multi-user.target \\\n  graphical.target\nAlias=w.service\n"
        );
        let off = with_enabled(&text, false).unwrap();
        assert_eq!(off, format!("{BASE}[Install]\n# keep me\nAlias=w.service\n"));
        assert_eq!(with_enabled(&off, false), None, "already disabled");
        assert_eq!(with_enabled(BASE, false), None);
        // A WantedBy= of another section is not the unit's enablement.
        let other = format!("{BASE}WantedBy=x\n");
        assert_eq!(with_enabled(&other, false), None);
    }

    #[test]
    fn a_round_trip_gives_back_the_text() {
        let on = with_enabled(BASE, true).unwrap();
        let off = with_enabled(&on, false).unwrap();
        assert_eq!(off, format!("{BASE}\n[Install]\n"));
    }
}
