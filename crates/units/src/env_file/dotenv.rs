//! The `.env` dialect, as dotenv and its kin read it:
//!
//! - empty lines and lines starting with `#` are skipped; `export ` before a name is allowed;
//!   blanks around the `=` are dropped;
//! - an unquoted value runs to the end of its line, blanks around it dropped; a `#` after a
//!   blank starts a comment (`PORT=8080 # web`), one inside a word does not (`C=a#b`);
//! - `'…'` is verbatim, over lines if need be: no escape, no expansion;
//! - `"…"` may span lines; `\n`, `\r`, `\t`, `\"`, `\\` and `\$` are escapes, any other
//!   backslash stays as written;
//! - outside single quotes, `${VAR}` and `$VAR` are replaced by the variable's value: one
//!   defined on an earlier line of the file, else one defined before the file (earlier files,
//!   `Environment=`, the base environment), else nothing. `${VAR:-word}` gives `word` when VAR
//!   is unset or empty, `${VAR-word}` when it is unset (`word` taken as written); `\$` is a
//!   literal `$`, and so is a `$` followed by anything but a name or `{`;
//! - after a closing quote only blanks and a `#` comment may follow.
//!
//! A line that cannot be read (no `=`, an invalid name, an unterminated quote or `${`, text
//! after a closing quote, an expansion form not listed above) is skipped with a warning naming
//! its line; reading resumes on the next line.

use super::{is_blank, valid_name, Parsed, Var};

/// Parses a `.env` file's text; `lookup` gives the variables defined before the file.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Parsed {
    let mut out = Parsed::default();
    let mut c = Cursor { text, pos: 0, line: 1 };
    loop {
        while c.peek().is_some_and(|ch| is_blank(ch) || ch == '\n') {
            c.bump();
        }
        let Some(first) = c.peek() else { break };
        let at = c.line;
        // Where reading goes on after a bad line: the line after the statement's first.
        let next_line = text[c.pos..].find('\n').map_or(text.len(), |i| c.pos + i + 1);
        if first == '#' {
            c.skip_line();
            continue;
        }
        match statement(&mut c, &out.vars, lookup) {
            Ok((name, value)) => {
                out.vars.push(Var { name, value, lines: at..=c.line });
                c.skip_line();
            }
            Err(why) => {
                out.warnings.push(format!("line {at}: {why}: skipped"));
                c.pos = next_line;
                c.line = at + 1;
            }
        }
    }
    out
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        if ch == '\n' {
            self.line += 1;
        }
        Some(ch)
    }

    /// Up to, not past, the end of the line.
    fn skip_line(&mut self) {
        while self.peek().is_some_and(|ch| ch != '\n') {
            self.bump();
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }
}

/// `[export ]NAME=value`, leaving the cursor on the line of the value's end.
fn statement(
    c: &mut Cursor,
    earlier: &[Var],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), String> {
    let start = c.pos;
    while c.peek().is_some_and(|ch| ch != '=' && ch != '\n') {
        c.bump();
    }
    let head = c.text[start..c.pos].trim_matches(is_blank);
    if c.peek() != Some('=') {
        return Err(format!("no '=' in {head:?}"));
    }
    c.bump();
    let name = match head.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start_matches(is_blank),
        _ => head,
    };
    if !valid_name(name) {
        return Err(format!("invalid variable name {name:?}"));
    }
    let get =
        |n: &str| earlier.iter().rev().find(|v| v.name == n).map(|v| v.value.clone()).or_else(|| lookup(n));
    let blank_before = c.peek().is_some_and(is_blank);
    c.skip_blanks();
    let at = c.line;
    // A quote left open takes the text up to the next one: say where that was.
    let closed = |c: &Cursor, why: String| match c.line {
        line if line == at => why,
        line => format!("{why} (the quote opened on this line closes on line {line})"),
    };
    let value = match c.peek() {
        Some('\'') => {
            c.bump();
            let from = c.pos;
            loop {
                match c.bump() {
                    Some('\'') => break,
                    Some(_) => {}
                    None => return Err("unterminated single quote".into()),
                }
            }
            let value = c.text[from..c.pos - 1].to_string();
            after_quote(c).map_err(|e| closed(c, e))?;
            value
        }
        Some('"') => {
            c.bump();
            let value = double_quoted(c, &get)?;
            after_quote(c).map_err(|e| closed(c, e))?;
            value
        }
        _ => unquoted(c, blank_before, &get)?,
    };
    Ok((name.to_string(), value))
}

/// The inside of `"…"`, the cursor past its closing quote.
fn double_quoted(c: &mut Cursor, get: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match c.bump() {
            None => return Err("unterminated double quote".into()),
            Some('"') => return Ok(value),
            Some('\\') => match c.peek() {
                Some(e @ ('n' | 'r' | 't' | '"' | '\\' | '$')) => {
                    c.bump();
                    value.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        e => e,
                    });
                }
                _ => value.push('\\'),
            },
            Some('$') => value.push_str(&expansion(c, get)?),
            Some(ch) => value.push(ch),
        }
    }
}

/// An unquoted value: to the end of the line or a comment, blanks around it dropped.
fn unquoted(
    c: &mut Cursor,
    blank_before: bool,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut value = String::new();
    let mut after_blank = blank_before;
    while let Some(ch) = c.peek().filter(|ch| *ch != '\n') {
        if ch == '#' && after_blank {
            c.skip_line();
            break;
        }
        c.bump();
        match ch {
            '\\' if c.peek() == Some('$') => {
                c.bump();
                value.push('$');
            }
            '$' => value.push_str(&expansion(c, get)?),
            ch => value.push(ch),
        }
        after_blank = is_blank(ch);
    }
    Ok(value.trim_end_matches(is_blank).to_string())
}

/// After a closing quote: blanks, and a comment.
fn after_quote(c: &mut Cursor) -> Result<(), String> {
    c.skip_blanks();
    match c.peek() {
        None | Some('\n' | '#') => Ok(()),
        Some(_) => {
            let start = c.pos;
            c.skip_line();
            Err(format!("unexpected text after the closing quote: {:?}", c.text[start..c.pos].trim_end()))
        }
    }
}

/// What follows a `$` (already read): `{NAME}`, `{NAME:-word}`, `{NAME-word}`, `NAME`, or
/// nothing of these (a literal `$`).
fn expansion(c: &mut Cursor, get: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    match c.peek() {
        Some('{') => {
            c.bump();
            let start = c.pos;
            while c.peek().is_some_and(|ch| ch != '}' && ch != '\n') {
                c.bump();
            }
            let inside = &c.text[start..c.pos];
            if c.peek() != Some('}') {
                return Err(format!("unterminated ${{{inside}"));
            }
            c.bump();
            if valid_name(inside) {
                return Ok(get(inside).unwrap_or_default());
            }
            let end =
                inside.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(inside.len());
            let (name, op) = inside.split_at(end);
            match (valid_name(name), op.strip_prefix(":-"), op.strip_prefix('-')) {
                (true, Some(word), _) => Ok(get(name).filter(|v| !v.is_empty()).unwrap_or_else(|| word.to_string())),
                (true, None, Some(word)) => Ok(get(name).unwrap_or_else(|| word.to_string())),
                _ => Err(format!(
                    "unsupported expansion ${{{inside}}} (expected ${{NAME}}, ${{NAME:-default}} or ${{NAME-default}})"
                )),
            }
        }
        Some(ch) if ch.is_ascii_alphabetic() || ch == '_' => {
            let start = c.pos;
            while c.peek().is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                c.bump();
            }
            Ok(get(&c.text[start..c.pos]).unwrap_or_default())
        }
        _ => Ok("$".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Parsed {
        parse(text, &|n| match n {
            "FROM_UNIT" => Some("unit value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    fn vars(text: &str) -> Vec<(String, String)> {
        let p = read(text);
        assert_eq!(p.warnings, Vec::<String>::new(), "{text:?}");
        p.pairs()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn export_prefix_and_blanks_around_the_equals_sign() {
        assert_eq!(
            vars("export A=1\n  export\tB = two words  \nexporter=3\nC=\n"),
            pairs(&[("A", "1"), ("B", "two words"), ("exporter", "3"), ("C", "")])
        );
    }

    #[test]
    fn comments_whole_lines_and_after_a_value() {
        assert_eq!(
            vars("# settings\n  # indented\nPORT=8080 # the web port\nC=a#b\nD= # nothing\nE=x\t#tab\n"),
            pairs(&[("PORT", "8080"), ("C", "a#b"), ("D", ""), ("E", "x")])
        );
    }

    #[test]
    fn single_quotes_are_verbatim() {
        assert_eq!(
            vars("A='$FROM_UNIT ${FROM_UNIT} \\n \\$ # not a comment' # comment\nB='two\nlines'\n"),
            pairs(&[("A", "$FROM_UNIT ${FROM_UNIT} \\n \\$ # not a comment"), ("B", "two\nlines")])
        );
    }

    #[test]
    fn double_quotes_take_escapes_expansions_and_span_lines() {
        assert_eq!(
            vars("A=\"say \\\"hi\\\"\\t\\\\ \\$5 \\q # kept\"\nB=\"line one\\nline two\"\nC=\"real\nnewline $FROM_UNIT\" # c\n"),
            pairs(&[
                ("A", "say \"hi\"\t\\ $5 \\q # kept"),
                ("B", "line one\nline two"),
                ("C", "real\nnewline unit value")
            ])
        );
    }

    #[test]
    fn expansion_from_earlier_lines_and_from_before_the_file() {
        assert_eq!(
            vars("HOST=db\nURL=postgres://${HOST}:5432/$HOST/x\nU=$FROM_UNIT!\nHOST=other\nAGAIN=$HOST\n"),
            pairs(&[
                ("HOST", "db"),
                ("URL", "postgres://db:5432/db/x"),
                ("U", "unit value!"),
                ("HOST", "other"),
                ("AGAIN", "other")
            ])
        );
        // A line's own name is not yet defined by it: the value from before the file.
        assert_eq!(vars("FROM_UNIT=${FROM_UNIT}+\n"), pairs(&[("FROM_UNIT", "unit value+")]));
    }

    #[test]
    fn undefined_is_empty_and_defaults_apply() {
        assert_eq!(
            vars("A=[$NOPE][${NOPE}]\nB=${NOPE:-fallback}\nC=${EMPTY:-for empty}\nD=${EMPTY-unset only}\nE=${FROM_UNIT:-x}\n"),
            pairs(&[
                ("A", "[][]"),
                ("B", "fallback"),
                ("C", "for empty"),
                ("D", ""),
                ("E", "unit value")
            ])
        );
    }

    #[test]
    fn escaped_and_lone_dollars_are_literal() {
        assert_eq!(
            vars("A=\\$FROM_UNIT\nB=\"\\${FROM_UNIT}\"\nC=cost $5 $ end$\nD=back\\slash\n"),
            pairs(&[
                ("A", "$FROM_UNIT"),
                ("B", "${FROM_UNIT}"),
                ("C", "cost $5 $ end$"),
                ("D", "back\\slash")
            ])
        );
    }

    #[test]
    fn bad_lines_are_skipped_with_their_line_number() {
        let p = read(
            "OK=1\nE=\"x\" trailing\nB=2\nnot an assignment\n1X=3\nC='open\nD=x${oops\nF=${A:?err}\nG=4\nA=\"never closed\n",
        );
        assert_eq!(p.pairs(), pairs(&[("OK", "1"), ("B", "2"), ("G", "4")]));
        assert_eq!(
            p.warnings,
            [
                "line 2: unexpected text after the closing quote: \"trailing\": skipped",
                "line 4: no '=' in \"not an assignment\": skipped",
                "line 5: invalid variable name \"1X\": skipped",
                "line 6: unterminated single quote: skipped",
                "line 7: unterminated ${oops: skipped",
                "line 8: unsupported expansion ${A:?err} (expected ${NAME}, ${NAME:-default} or ${NAME-default}): skipped",
                "line 10: unterminated double quote: skipped",
            ]
        );
        // A quote left open runs to the next one, and the warning says where that was.
        let p = read("A=\"open\nB=2\nC=\"x\"\nD=3\n");
        assert_eq!(p.pairs(), pairs(&[("B", "2"), ("C", "x"), ("D", "3")]));
        assert_eq!(
            p.warnings,
            ["line 1: unexpected text after the closing quote: \"x\\\"\" (the quote opened on this line closes on line 3): skipped"]
        );
    }

    #[test]
    fn each_value_knows_its_lines() {
        let p = read("A=1\n\nB=\"x\ny\" # c\nC='p'\n");
        let spans: Vec<_> = p.vars.iter().map(|v| v.lines.clone()).collect();
        assert_eq!(spans, [1..=1, 3..=4, 5..=5]);
    }
}
