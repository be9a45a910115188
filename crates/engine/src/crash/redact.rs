//! Secrets kept out of a report: what a report copies (the environment, the unit file, its
//! environment files, the engine's notes that quote command lines) goes through these pure
//! functions first. Hidden, each replaced by `<redacted>`:
//!
//! - the value of a variable whose name looks secret (SPEC 7: KEY, TOKEN, SECRET, PASSWORD,
//!   PASS, CREDENTIAL, AUTH, COOKIE, PRIVATE; any case): `API_TOKEN=…`, in `env.txt`, in the
//!   unit's `Environment=` lines, in environment files, in a command line;
//! - the password of a URL: `postgres://user:<redacted>@host/db`, anywhere;
//! - the value of a command-line option whose name looks secret: `--password=…`, `--token …`.
//!
//! An environment file that lies in the captured working directory is redacted in the report's
//! `workdir/` too ([`env_files_in_workdir`]).

use std::ops::Range;
use std::path::{Path, PathBuf};

use gitvisor_capture::Rewrite;
use gitvisor_units::env_file;

/// Parts of a variable name that mark its value as a secret (case-insensitive).
const SECRET_MARKS: &[&str] =
    &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE"];

const REDACTED: &str = "<redacted>";

pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKS.iter().any(|m| upper.contains(m))
}

/// `NAME=value` lines, secret values replaced by `<redacted>` and the others redacted as text.
pub fn env_text(env: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in env {
        let v = if is_secret(k) { REDACTED.to_string() } else { text(v) };
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

/// A unit file: each `Key=value` line's value (and any other line) redacted as [`text`], so
/// `Environment=API_TOKEN=…`, `ExecStart=… --password=…` and URLs lose their secrets. Comments
/// too (a commented-out secret is still one).
pub fn unit_file(unit: &str) -> String {
    map_lines(unit, |line| {
        let (lead, body) = split_comment(line);
        match body.split_once('=') {
            Some((key, value)) if is_identifier(key.trim()) => format!("{lead}{key}={}", text(value)),
            _ => format!("{lead}{}", text(body)),
        }
    })
}

/// An environment file (`EnvironmentFile=`) named `path` (its name says its dialect):
/// `NAME=value` lines (`export` allowed, spaces around `=`), a secret-looking name's value
/// hidden whole, also the lines a quoted value spans after its first (dropped); the rest
/// redacted as [`text`].
pub fn env_file(path: &Path, bytes: &[u8]) -> Vec<u8> {
    let text_in = String::from_utf8_lossy(bytes);
    // Which lines hold a secret's value: its first is kept as `NAME=<redacted>`, the others go.
    let dialect = env_file::Dialect::of(path);
    let spans: Vec<std::ops::RangeInclusive<usize>> = env_file::parse(dialect, bytes, &|_| None)
        .map(|p| p.vars.into_iter().filter(|v| is_secret(&v.name)).map(|v| v.lines).collect())
        .unwrap_or_default();
    let mut out = String::with_capacity(text_in.len());
    for (i, line) in text_in.split_inclusive('\n').enumerate() {
        let number = i + 1;
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let secret = spans.iter().find(|r| r.contains(&number));
        if secret.is_some_and(|r| *r.start() != number) {
            continue;
        }
        let (lead, rest) = split_comment(body);
        let name = |k: &str| k.trim().trim_start_matches("export ").trim().to_string();
        let redacted = match rest.split_once('=') {
            Some((key, _)) if lead.is_empty() && (secret.is_some() || is_secret(&name(key))) => {
                format!("{key}={REDACTED}")
            }
            Some((key, value)) if lead.is_empty() => format!("{key}={}", text(value)),
            _ => format!("{lead}{}", unit_file(rest)),
        };
        out.push_str(&redacted);
        out.push_str(end);
    }
    out.into_bytes()
}

/// The rewrite that redacts, in a report's `workdir/`, each of `files` (a unit's environment
/// files) that lies in the captured directory `root`, as [`env_file`]. Only the report's copy:
/// the diff compares the files as found.
pub fn env_files_in_workdir(files: &[PathBuf], root: &Path) -> Rewrite {
    Rewrite { paths: files.iter().filter_map(|f| relative_to(f, root)).collect(), with: env_file }
}

/// `file` as a path inside `root`, also when either is reached through a symlink.
fn relative_to(file: &Path, root: &Path) -> Option<PathBuf> {
    if let Ok(rel) = file.strip_prefix(root) {
        return Some(rel.to_path_buf());
    }
    let (file, root) = (file.canonicalize().ok()?, root.canonicalize().ok()?);
    file.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// A line of text (a command line, a value, a log line): URL passwords, the values of
/// secret-looking options (`--password=x`, `--token x`) and assignments (`DB_PASSWORD=x`).
pub fn text(line: &str) -> String {
    let line = url_passwords(line);
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for r in secret_values(&line) {
        out.push_str(&line[at..r.start]);
        out.push_str(REDACTED);
        at = r.end;
    }
    out.push_str(&line[at..]);
    out
}

/// `scheme://user:password@host…` → `scheme://user:<redacted>@host…`, for every URL in `text`.
pub fn url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        // The URL ends at a space or a quote; its authority at the path, query or fragment.
        let url_end = after.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(after.len());
        let url = &after[..url_end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        // Normally the user info is in the authority; a password with an unencoded `/` in it
        // pushes its `@` further, past anything a query would have (`?`, `#`, `=`).
        let at = url[..authority_end].rfind('@').or_else(|| {
            let at = url.find('@')?;
            let colon = url[..at].find(':')?;
            (!url[colon..at].contains(['?', '#', '='])).then_some(at)
        });
        match at.and_then(|at| Some((at, url[..at].find(':')?))) {
            Some((at, colon)) if colon + 1 < at => {
                out.push_str(&url[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&url[at..]);
            }
            _ => out.push_str(url),
        }
        rest = &after[url_end..];
    }
    out.push_str(rest);
    out
}

/// The byte ranges of secret values in `s`, in order.
fn secret_values(s: &str) -> Vec<Range<usize>> {
    let words = words(s);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (start, end) = words[i];
        let quote = s[start..end].chars().next().filter(|c| *c == '"' || *c == '\'');
        let head_start = start + quote.map_or(0, char::len_utf8);
        let head = &s[head_start..end];
        if let Some(option) = head.strip_prefix('-') {
            let name_at = head_start + head.len() - option.trim_start_matches('-').len();
            let option = &s[name_at..end];
            match option.split_once('=') {
                Some((name, _)) if is_secret(name) => {
                    out.push(value_at(s, name_at + name.len() + 1, quote));
                }
                None => {
                    let name = option.trim_end_matches(['"', '\'']);
                    // `--token VALUE`: the next word, unless it is another option.
                    if let Some(&(next, _)) = words.get(i + 1).filter(|_| !name.is_empty() && is_secret(name))
                    {
                        if !s[next..].trim_start_matches(['"', '\'']).starts_with('-') {
                            out.push(value_at(s, next, None));
                            i += 1;
                        }
                    }
                }
                Some(_) => {}
            }
        } else if let Some((name, _)) = head.split_once('=') {
            if is_identifier(name) && is_secret(name) {
                out.push(value_at(s, head_start + name.len() + 1, quote));
            }
        }
        i += 1;
    }
    out.retain(|r| !r.is_empty());
    // A value that ran past the next word (a quoted one) covers it: keep ranges disjoint.
    let mut disjoint: Vec<Range<usize>> = Vec::new();
    for r in out {
        match disjoint.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => disjoint.push(r),
        }
    }
    disjoint
}

/// The value that starts at `at`: a quoted one up to its closing quote; inside a word that
/// opened with `quote`, up to that quote; otherwise up to a space or a quote (the end of an
/// enclosing quoted string, as in `sh -c "run --token abc"`).
fn value_at(s: &str, at: usize, quote: Option<char>) -> Range<usize> {
    let rest = &s[at..];
    if let Some(q @ ('"' | '\'')) = rest.chars().next() {
        let end = rest[1..].find(q).map_or(rest.len(), |e| e + 1);
        return at + 1..at + end;
    }
    let end = match quote {
        Some(q) => rest.find(q),
        None => rest.find(|c: char| c.is_whitespace() || c == '"' || c == '\''),
    };
    at..at + end.unwrap_or(rest.len())
}

/// The byte ranges of the whitespace-separated words of `s`.
fn words(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                out.push((st, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A comment's marker and leading space, and the rest; no marker for other lines.
fn split_comment(line: &str) -> (&str, &str) {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        let body = trimmed[1..].trim_start();
        line.split_at(line.len() - body.len())
    } else {
        ("", line)
    }
}

/// Applies `f` to each line, keeping the line ends as they were.
fn map_lines(text: &str, mut f: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&f(body));
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_names_are_redacted_case_insensitively() {
        let env: Vec<(String, String)> = [
            ("API_TOKEN", "t0k3n"),
            ("db_password", "hunter2"),
            ("AwsSecretAccessKey", "x"),
            ("SESSION_COOKIE", "c"),
            ("HOME", "/home/u"),
            ("GREETING", "hello"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let text = env_text(&env);
        assert!(!text.contains("t0k3n") && !text.contains("hunter2") && !text.contains("=c\n"));
        assert!(text.contains("API_TOKEN=<redacted>\n"));
        assert!(text.contains("HOME=/home/u\n") && text.contains("GREETING=hello\n"));
    }

    #[test]
    fn a_password_inside_a_url_is_redacted_in_any_value() {
        let env = vec![("DATABASE_URL".to_string(), "postgres://u:pw@host/db".to_string())];
        assert_eq!(env_text(&env), "DATABASE_URL=postgres://u:<redacted>@host/db\n");
        let cases = [
            ("postgres://u:pw@host/db", "postgres://u:<redacted>@host/db"),
            ("redis://:s3cret@cache:6379/0", "redis://:<redacted>@cache:6379/0"),
            (
                "see https://a:b@x.org and ftp://c:d@y.org/f",
                "see https://a:<redacted>@x.org and ftp://c:<redacted>@y.org/f",
            ),
            ("amqp://user:p@ss@rabbit", "amqp://user:<redacted>@rabbit"),
            ("mysql://u:p/w@db/x", "mysql://u:<redacted>@db/x"),
            ("\"postgres://u:pw@h\"", "\"postgres://u:<redacted>@h\""),
            // Nothing to hide: no password, a port, an address in a query.
            ("postgres://u@host/db", "postgres://u@host/db"),
            ("http://host:8080/x?mail=a@b.org", "http://host:8080/x?mail=a@b.org"),
            ("https://example.org/", "https://example.org/"),
            ("no url here", "no url here"),
        ];
        for (input, want) in cases {
            assert_eq!(url_passwords(input), want, "{input}");
        }
    }

    #[test]
    fn secret_options_of_a_command_line_are_redacted() {
        let cases = [
            ("app --password=hunter2 --port=80", "app --password=<redacted> --port=80"),
            ("app --token abc123 -v", "app --token <redacted> -v"),
            ("app --api-key='a b' x", "app --api-key='<redacted>' x"),
            ("app --auth \"a b\" x", "app --auth \"<redacted>\" x"),
            ("/bin/sh -c \"run --token abc\" tail", "/bin/sh -c \"run --token <redacted>\" tail"),
            ("app -p 5 --secret", "app -p 5 --secret"),
            ("app --token --verbose", "app --token --verbose"),
            ("app --user=bob --name pass", "app --user=bob --name pass"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn secret_assignments_in_a_line_are_redacted() {
        let cases = [
            ("env API_TOKEN=t0k3n PLAIN=x run", "env API_TOKEN=<redacted> PLAIN=x run"),
            ("\"DB_PASSWORD=a b\" Z=1", "\"DB_PASSWORD=<redacted>\" Z=1"),
            ("'SECRET=s' X=y", "'SECRET=<redacted>' X=y"),
            // An unquoted value ends at a space only (a `;` may be part of a password).
            (
                "started process 7: /bin/sh -c 'export KEY=k; run'",
                "started process 7: /bin/sh -c 'export KEY=<redacted> run'",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn a_unit_file_keeps_its_shape_and_loses_its_secrets() {
        let unit = "[Service]\n\
            ExecStart=/usr/bin/app --password=hunter2 postgres://u:pw@h/db\n\
            Environment=API_TOKEN=t0k3n PLAIN=visible \"SESSION_SECRET=a b\"\n\
            Environment=DATABASE_URL=postgres://u:pw2@host/db\n\
            # Environment=OLD_PASSWORD=old\n\
            WorkingDirectory=/srv/app\n";
        let got = unit_file(unit);
        for secret in ["hunter2", "pw@", "t0k3n", "a b", "pw2", "old\n"] {
            assert!(!got.contains(secret), "{secret} in\n{got}");
        }
        assert_eq!(
            got,
            "[Service]\n\
            ExecStart=/usr/bin/app --password=<redacted> postgres://u:<redacted>@h/db\n\
            Environment=API_TOKEN=<redacted> PLAIN=visible \"SESSION_SECRET=<redacted>\"\n\
            Environment=DATABASE_URL=postgres://u:<redacted>@host/db\n\
            # Environment=OLD_PASSWORD=<redacted>\n\
            WorkingDirectory=/srv/app\n"
        );
    }

    #[test]
    fn an_environment_file_loses_its_secrets() {
        let file = b"# the app's settings\nexport API_KEY = k3y\nSESSION_SECRET=\"s e\"\nREDIS=redis://:rpw@cache\nPLAIN=1\n";
        let expected = "# the app's settings\nexport API_KEY =<redacted>\nSESSION_SECRET=<redacted>\nREDIS=redis://:<redacted>@cache\nPLAIN=1\n";
        for name in ["vars", ".env"] {
            let got = String::from_utf8(env_file(Path::new(name), file)).unwrap();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_secret_quoted_over_lines_loses_every_line() {
        let file = b"export PRIVATE_KEY=\"-----BEGIN KEY-----\nabc123\n-----END KEY-----\"\nPLAIN='a\nb'\nTOKEN=t # c\n";
        let got = String::from_utf8(env_file(Path::new("/srv/app/.env.local"), file)).unwrap();
        assert_eq!(got, "export PRIVATE_KEY=<redacted>\nPLAIN='a\nb'\nTOKEN=<redacted>\n");
        // The same in systemd's dialect, where quotes span lines too.
        let got = String::from_utf8(env_file(Path::new("vars"), b"API_TOKEN='one\ntwo'\nA=1\n")).unwrap();
        assert_eq!(got, "API_TOKEN=<redacted>\nA=1\n");
    }

    #[test]
    fn an_environment_file_in_the_captured_directory_is_redacted_in_the_report_copy() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.env"), "API_TOKEN=t0k3n\nPLAIN=1\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "API_TOKEN=stays: not an environment file\n").unwrap();
        let files = [dir.path().join("app.env"), PathBuf::from("/etc/elsewhere.env")];
        let options = gitvisor_capture::StreamOptions {
            rewrite: Some(env_files_in_workdir(&files, dir.path())),
            ..Default::default()
        };
        let mut tar = tar::Builder::new(Vec::new());
        let limits = gitvisor_capture::Limits::default();
        let streamed =
            gitvisor_capture::stream_dir(dir.path(), &limits, &options, &mut tar, Path::new("")).unwrap();
        let archive = tar.into_inner().unwrap();
        let mut archived = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            archived.insert(entry.path().unwrap().to_string_lossy().into_owned(), text);
        }
        assert_eq!(archived["app.env"], "API_TOKEN=<redacted>\nPLAIN=1\n");
        assert_eq!(archived["notes.txt"], "API_TOKEN=stays: not an environment file\n");
        let (described, _) = super::super::report::describe(&streamed);
        let listed = |name: &str| described.iter().find(|f| f.path == name).unwrap().clone();
        let sha = |text: &str| gitvisor_capture::hex(&<sha2::Sha256 as sha2::Digest>::digest(text));
        assert_eq!(listed("app.env").sha256, sha(&archived["app.env"]), "report.json lists what is archived");
        assert_eq!(listed("app.env").size, archived["app.env"].len() as u64);
        let sizes: u64 = archived.values().map(|t| t.len() as u64).sum();
        assert_eq!(streamed.archived_bytes, sizes);
        // The capture as found, for the diff against the baseline.
        let found = streamed.capture.entries.iter().find(|e| e.path == Path::new("app.env")).unwrap();
        let gitvisor_capture::EntryKind::File { sha256, .. } = &found.kind else { panic!("{found:?}") };
        assert_eq!(gitvisor_capture::hex(sha256), sha("API_TOKEN=t0k3n\nPLAIN=1\n"));
    }

    #[test]
    fn an_environment_file_is_diffed_on_its_redacted_text_on_both_sides() {
        use gitvisor_capture::{baseline_since, diff, stream_dir, text_diffs, BlobPool, KeepText, Limits};
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("app.env");
        std::fs::write(&env, "API_TOKEN=old-t0k3n\nDB=postgres://u:old-pw@db/x\nPLAIN=1\n").unwrap();
        std::fs::write(dir.path().join("rotated.env"), "SECRET_KEY=first-key\n").unwrap();
        let limits = Limits::default();
        let baseline =
            baseline_since(dir.path(), &limits, &BlobPool::default(), None, 65536, 1 << 20).unwrap();
        std::fs::write(&env, "API_TOKEN=new-t0k3n\nDB=postgres://u:new-pw@db/x\nPLAIN=2\n").unwrap();
        std::fs::write(dir.path().join("rotated.env"), "SECRET_KEY=second-key\n").unwrap();
        let files = [env.clone(), dir.path().join("rotated.env")];
        let keep = KeepText { baseline: std::sync::Arc::new(baseline), per_file: 65536, total: 1 << 20 };
        let options = gitvisor_capture::StreamOptions {
            rewrite: Some(env_files_in_workdir(&files, dir.path())),
            keep_text: Some(keep.clone()),
            ..Default::default()
        };
        let mut tar = tar::Builder::new(std::io::sink());
        let streamed = stream_dir(dir.path(), &limits, &options, &mut tar, Path::new("")).unwrap();

        let mut changes = diff(&keep.baseline, &streamed.capture);
        text_diffs(&mut changes, &keep, &streamed, options.rewrite.as_ref());

        assert_eq!(
            changes.modified[0].diff.as_deref(),
            Some(
                "--- a/app.env\n+++ b/app.env\n@@ -1,3 +1,3 @@\n API_TOKEN=<redacted>\n DB=postgres://u:<redacted>@db/x\n-PLAIN=1\n+PLAIN=2\n"
            )
        );
        assert_eq!(changes.modified[1].diff, None);
        assert_eq!(changes.modified[1].diff_note.as_deref(), Some("only what its redaction hides changed"));
        let json = serde_json::to_string(&changes).unwrap();
        for secret in ["t0k3n", "old-pw", "new-pw", "first-key", "second-key"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }
}
