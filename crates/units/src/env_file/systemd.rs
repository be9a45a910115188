//! The systemd dialect: `EnvironmentFile=` read as systemd reads it (systemd.exec(5),
//! `EnvironmentFile=`). No `$` is expanded, as in systemd:
//!
//! - empty lines, lines starting with `#` or `;`, and lines without `=` are skipped (the last
//!   with a warning, as systemd logs one);
//! - a key is trimmed; one that is not a valid name (`export A`, `1X`) is skipped with a warning;
//! - an unquoted value loses its leading and trailing whitespace and keeps the inside verbatim;
//!   a backslash keeps the next character (`\\` is `\`), and at the end of a line continues the
//!   value on the next one;
//! - a value that starts with `'` runs to the next `'`, over lines, verbatim;
//! - a value that starts with `"` runs to the next unescaped `"`, over lines; inside, a
//!   backslash before one of `"\`$` keeps that character, before a newline continues the line,
//!   and before anything else is kept with it.

use super::{is_blank, valid_name, Parsed, Var};

/// Parses a file's text (see [`super::parse`]).
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    loop {
        // Before a key: blanks and empty lines.
        while let Some(&c) = chars.peek() {
            if c == '\n' {
                line += 1;
            } else if !is_blank(c) {
                break;
            }
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let at = line;
        if first == '#' || first == ';' {
            for c in chars.by_ref() {
                if c == '\n' {
                    line += 1;
                    break;
                }
            }
            continue;
        }
        let mut key = String::new();
        let mut has_eq = false;
        while let Some(&c) = chars.peek() {
            if c == '\n' {
                break;
            }
            chars.next();
            if c == '=' {
                has_eq = true;
                break;
            }
            key.push(c);
        }
        if !has_eq {
            out.warnings.push(format!("line {at}: no '=' in {:?}: skipped", key.trim()));
            continue;
        }
        let key = key.trim_matches(is_blank).to_string();
        while chars.peek().is_some_and(|c| is_blank(*c)) {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek() {
            Some('\'') => {
                chars.next();
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    value.push(c);
                }
                rest_of_line(&mut chars, &mut value, &mut line);
            }
            Some('"') => {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('\n') => line += 1,
                            Some(e @ ('"' | '\\' | '`' | '$')) => value.push(e),
                            Some(e) => {
                                value.push('\\');
                                value.push(e);
                            }
                            None => value.push('\\'),
                        },
                        '\n' => {
                            line += 1;
                            value.push(c);
                        }
                        c => value.push(c),
                    }
                }
                rest_of_line(&mut chars, &mut value, &mut line);
            }
            _ => rest_of_line(&mut chars, &mut value, &mut line),
        }
        // The value's last line: the one its newline ended, or the last of the file.
        let end = if chars.peek().is_none() && !text.ends_with('\n') { line } else { line - 1 };
        if valid_name(&key) {
            out.vars.push(Var { name: key, value, lines: at..=end.max(at) });
        } else {
            out.warnings.push(format!("line {at}: invalid variable name {key:?}: skipped"));
        }
    }
    out
}

/// The unquoted rest of a value up to the end of its line: backslashes keep the next character
/// or continue the line; trailing blanks are dropped.
fn rest_of_line(chars: &mut std::iter::Peekable<std::str::Chars>, value: &mut String, line: &mut usize) {
    let mut kept = value.len();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                *line += 1;
                break;
            }
            '\\' => match chars.next() {
                Some('\n') => *line += 1,
                Some(e) => {
                    value.push(e);
                    kept = value.len();
                }
                None => {}
            },
            c => {
                value.push(c);
                if !is_blank(c) {
                    kept = value.len();
                }
            }
        }
    }
    value.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).pairs()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn comments_blank_lines_and_lines_without_equals_are_skipped() {
        let p = parse("# c\n; c\n\n  A=1\nnonsense here\nB = two  \n");
        assert_eq!(p.pairs(), pairs(&[("A", "1"), ("B", "two")]));
        assert_eq!(p.warnings, ["line 5: no '=' in \"nonsense here\": skipped"]);
    }

    #[test]
    fn unquoted_values_keep_their_inside_and_backslashes_escape() {
        assert_eq!(
            vars("A=  a  b  \nB=x\\\\y\\z\nC=one\\\ntwo\nD=it's \"quoted\" inside\n"),
            pairs(&[("A", "a  b"), ("B", "x\\yz"), ("C", "onetwo"), ("D", "it's \"quoted\" inside")])
        );
    }

    #[test]
    fn single_quotes_span_lines_verbatim() {
        assert_eq!(
            vars("A='line one\nline \\two $HOME'\nB=after\n"),
            pairs(&[("A", "line one\nline \\two $HOME"), ("B", "after")])
        );
    }

    #[test]
    fn double_quotes_follow_the_shell_escapes() {
        assert_eq!(
            vars("A=\"say \\\"hi\\\" \\$5 \\\\ \\n\"\nB=\"two\nlines\"\nC=\"joined \\\nline\"\n"),
            pairs(&[("A", "say \"hi\" $5 \\ \\n"), ("B", "two\nlines"), ("C", "joined line")])
        );
    }

    #[test]
    fn invalid_names_are_skipped_with_a_warning() {
        let p = parse("export A=1\n1X=2\nGOOD=3\n");
        assert_eq!(p.pairs(), pairs(&[("GOOD", "3")]));
        assert_eq!(
            p.warnings,
            [
                "line 1: invalid variable name \"export A\": skipped",
                "line 2: invalid variable name \"1X\": skipped"
            ]
        );
        // A multi-line value moves the line count on.
        let p = parse("A='x\ny'\nnope\n");
        assert_eq!(p.warnings, ["line 3: no '=' in \"nope\": skipped"]);
    }

    #[test]
    fn each_value_knows_its_lines() {
        let p = parse("A=1\nB='x\ny'\n\nC=\"p\nq\"");
        let spans: Vec<_> = p.vars.iter().map(|v| v.lines.clone()).collect();
        assert_eq!(spans, [1..=1, 2..=3, 5..=6]);
    }
}
