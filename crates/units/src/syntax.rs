//! systemd's ini syntax: bytes in, an ordered list of `(section, key, value, line)` entries out.
//!
//! Follows systemd's `config_parse`: `#` and `;` start comment lines, a line ending in an
//! unescaped backslash continues on the next one (the backslash becomes a space, and comment
//! lines inside a continuation are skipped), keys and values are trimmed. Values are not
//! interpreted here: repeated keys and empty assignments are the typed layer's business.

/// Unit files larger than this are refused.
pub const MAX_FILE_SIZE: usize = 1024 * 1024;

/// One `Key=Value` assignment. `line` is where the assignment starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    pub line: usize,
    /// The line of the `[Section]` header the entry belongs to.
    pub section_line: usize,
}

/// A line that is not valid syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Checks the size and encoding of a unit file. Errors carry line 0 (the whole file).
pub fn decode(bytes: &[u8]) -> Result<&str, SyntaxError> {
    let whole_file = |message: &str| SyntaxError { line: 0, message: message.to_string() };
    if bytes.len() > MAX_FILE_SIZE {
        return Err(whole_file("file too large (over 1 MiB)"));
    }
    if bytes.contains(&0) {
        return Err(whole_file("not a text file (contains NUL bytes)"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| whole_file("not a text file (invalid UTF-8)"))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Parses the whole text, collecting every syntax error rather than stopping at the first.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<SyntaxError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut section: Option<(String, usize)> = None;
    for (line, logical) in logical_lines(text) {
        let trimmed = logical.trim();
        if trimmed.is_empty() {
            continue;
        }
        let fail = |message: String| SyntaxError { line, message };
        if trimmed.starts_with('[') {
            match trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(name) if is_section_name(name) => section = Some((name.to_string(), line)),
                _ => {
                    errors.push(fail(format!("invalid section header {trimmed:?}")));
                    // Entries of a broken section must not land in the previous one.
                    section = None;
                }
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            errors.push(fail(format!("expected Key=Value, found {trimmed:?}")));
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            errors.push(fail("missing key before '='".to_string()));
            continue;
        }
        let Some((section, section_line)) = &section else {
            errors.push(fail(format!("{key}= outside of any [Section]")));
            continue;
        };
        entries.push(Entry {
            section: section.clone(),
            key: key.to_string(),
            value: value.trim().to_string(),
            line,
            section_line: *section_line,
        });
    }
    (entries, errors)
}

fn is_section_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['[', ']']) && !name.chars().any(char::is_control)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with(['#', ';'])
}

/// Joins continuation lines. Yields `(first line number, joined text)`; comment lines yield
/// nothing.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        // A comment inside a continuation is skipped and the continuation goes on.
        if is_comment(raw) {
            continue;
        }
        let (body, continues) = match ends_with_unescaped_backslash(raw) {
            true => (&raw[..raw.len() - 1], true),
            false => (raw, false),
        };
        let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
        joined.push_str(body);
        if continues {
            joined.push(' ');
            pending = Some((start, joined));
        } else {
            out.push((start, joined));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

fn ends_with_unescaped_backslash(line: &str) -> bool {
    let trailing = line.bytes().rev().take_while(|&b| b == b'\\').count();
    trailing % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, String, usize)> {
        let (entries, errors) = parse(text);
        assert!(errors.is_empty(), "{errors:?}");
        entries.into_iter().map(|e| (e.section, e.key, e.value, e.line)).collect()
    }

    fn e(section: &str, key: &str, value: &str, line: usize) -> (String, String, String, usize) {
        (section.into(), key.into(), value.into(), line)
    }

    #[test]
    fn sections_keys_and_trimming() {
        let text = "[Unit]\n  Description = my  service \n\n[Service]\nExecStart=/bin/true\n";
        assert_eq!(
            entries(text),
            vec![e("Unit", "Description", "my  service", 2), e("Service", "ExecStart", "/bin/true", 5)]
        );
    }

    #[test]
    fn comments_are_skipped() {
        let text = "# top\n; also\n[Unit]\n   # indented\nDescription=a # not a comment\n";
        assert_eq!(entries(text), vec![e("Unit", "Description", "a # not a comment", 5)]);
    }

    #[test]
    fn continuation_lines_join_with_a_space() {
        let text = "[Service]\nExecStart=/bin/echo \\\n  one \\\n# comment inside\n  two\nUser=me\n";
        assert_eq!(
            entries(text),
            vec![e("Service", "ExecStart", "/bin/echo    one    two", 2), e("Service", "User", "me", 6)]
        );
    }

    #[test]
    fn escaped_backslash_does_not_continue() {
        let text = "[Service]\nExecStart=/bin/echo a\\\\\nUser=me\n";
        assert_eq!(
            entries(text),
            vec![e("Service", "ExecStart", "/bin/echo a\\\\", 2), e("Service", "User", "me", 3)]
        );
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(entries("[Unit]\nDescription=a \\"), vec![e("Unit", "Description", "a", 2)]);
    }

    #[test]
    fn errors_carry_line_numbers_and_are_all_collected() {
        let text = "Key=outside\n[Unit]\nno equals sign\n=value\n[Broken\nDescription=x\n";
        let (entries, errors) = parse(text);
        assert!(entries.is_empty());
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 5, 6]);
        assert!(errors[0].message.contains("outside"));
    }

    #[test]
    fn decode_refuses_huge_and_binary_files() {
        let huge = vec![b'#'; MAX_FILE_SIZE + 1];
        assert!(decode(&huge).unwrap_err().message.contains("file too large"));
        assert!(decode(b"[Unit]\0").unwrap_err().message.contains("not a text file"));
        assert!(decode(&[0xff, 0xfe, 0x41]).unwrap_err().message.contains("not a text file"));
        assert_eq!(decode("\u{feff}[Unit]".as_bytes()).unwrap(), "[Unit]");
    }
}
