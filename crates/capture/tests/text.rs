//! Text diffs of the files changed since a baseline: a streamed capture keeps the text of the
//! changed files (bounded), and each modified file gets a diff or a note saying why not.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use gitvisor_capture::{
    baseline_since, diff, stream_dir, text_diffs, BlobPool, Capture, Changes, KeepText, Limits, Modified,
    NewText, Rewrite, StreamOptions, Streamed,
};

const PER_FILE: u64 = 64 * 1024;
const TOTAL: u64 = 8 * 1024 * 1024;

fn baseline(root: &Path, per_file: u64, total: u64) -> Arc<Capture> {
    Arc::new(baseline_since(root, &Limits::default(), &BlobPool::default(), None, per_file, total).unwrap())
}

fn keep(baseline: &Arc<Capture>, per_file: u64, total: u64) -> KeepText {
    KeepText { baseline: baseline.clone(), per_file, total }
}

fn stream(root: &Path, options: &StreamOptions) -> Streamed {
    let mut tar = tar::Builder::new(Vec::new());
    stream_dir(root, &Limits::default(), options, &mut tar, Path::new("workdir")).unwrap()
}

/// The changes of `root` since `baseline`, with their text diffs, as a crash report takes them.
fn changes_since(root: &Path, baseline: &Arc<Capture>, rewrite: Option<Rewrite>) -> (Changes, Streamed) {
    let options = StreamOptions {
        rewrite,
        keep_text: Some(keep(baseline, PER_FILE, TOTAL)),
        ..StreamOptions::default()
    };
    let streamed = stream(root, &options);
    let mut changes = diff(baseline, &streamed.capture);
    text_diffs(&mut changes, options.keep_text.as_ref().unwrap(), &streamed, options.rewrite.as_ref());
    (changes, streamed)
}

fn modified<'a>(changes: &'a Changes, path: &str) -> &'a Modified {
    changes
        .modified
        .iter()
        .find(|m| m.path == path)
        .unwrap_or_else(|| panic!("{path} not modified: {changes:#?}"))
}

fn lines(n: usize, word: &str) -> String {
    (1..=n).map(|i| format!("{word} {i}\n")).collect()
}

#[test]
fn each_modified_file_gets_a_diff_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("config.yaml"), lines(10, "setting")).unwrap();
    fs::write(root.join("same.txt"), "unchanged\n").unwrap();
    fs::write(root.join("logo.png"), b"\x89PNG\0\0\0one").unwrap();
    fs::write(root.join("big.txt"), lines(10_000, "row")).unwrap();
    fs::write(root.join("turns-binary.txt"), "text\n").unwrap();
    fs::write(root.join("was-binary.dat"), b"\0bin").unwrap();
    fs::create_dir(root.join("lib")).unwrap();
    fs::write(root.join("lib/x"), "x\n").unwrap();
    fs::write(root.join("lib.rs"), "mod lib;\n").unwrap();
    symlink("config.yaml", root.join("current")).unwrap();
    fs::write(root.join("becomes-link"), "file\n").unwrap();
    let base = baseline(root, PER_FILE, TOTAL);

    fs::write(root.join("config.yaml"), lines(10, "setting").replace("setting 5\n", "setting five\n"))
        .unwrap();
    fs::write(root.join("logo.png"), b"\x89PNG\0\0\0two").unwrap();
    fs::write(root.join("big.txt"), lines(10_001, "row")).unwrap();
    fs::write(root.join("turns-binary.txt"), b"te\0xt\n").unwrap();
    fs::write(root.join("was-binary.dat"), "now text\n").unwrap();
    fs::write(root.join("lib/x"), "y\n").unwrap();
    fs::write(root.join("lib.rs"), "mod lib; // changed\n").unwrap();
    fs::remove_file(root.join("current")).unwrap();
    symlink("same.txt", root.join("current")).unwrap();
    fs::remove_file(root.join("becomes-link")).unwrap();
    symlink("same.txt", root.join("becomes-link")).unwrap();
    fs::write(root.join("added.txt"), "new\n").unwrap();

    let (changes, streamed) = changes_since(root, &base, None);

    let config = modified(&changes, "config.yaml");
    assert_eq!(
        config.diff.as_deref(),
        Some(
            "--- a/config.yaml\n+++ b/config.yaml\n@@ -2,7 +2,7 @@\n setting 2\n setting 3\n setting 4\n-setting 5\n+setting five\n setting 6\n setting 7\n setting 8\n"
        )
    );
    assert_eq!(config.diff_note, None);
    let note = |p: &str| {
        let m = modified(&changes, p);
        assert_eq!(m.diff, None, "{p}");
        m.diff_note.clone().unwrap()
    };
    assert_eq!(note("logo.png"), "binary");
    assert_eq!(note("turns-binary.txt"), "binary");
    assert_eq!(note("big.txt"), "too large for a text diff (over 64 KiB)");
    assert!(
        note("was-binary.dat").starts_with("the baseline kept no text of it"),
        "{}",
        note("was-binary.dat")
    );
    assert_eq!(note("current"), "a symlink: its target changed from config.yaml to same.txt");
    assert_eq!(note("becomes-link"), "a file when the service started, now a symlink to same.txt");
    assert!(changes.modified.iter().all(|m| m.path != "same.txt"));
    // Entry order, as the archive has them: a directory just before what it holds.
    let order: Vec<&str> = changes.modified.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        order,
        [
            "becomes-link",
            "big.txt",
            "config.yaml",
            "current",
            "lib/x",
            "lib.rs",
            "logo.png",
            "turns-binary.txt",
            "was-binary.dat"
        ]
    );
    assert_eq!(
        changes.patch(),
        format!(
            "{}{}{}",
            config.diff.as_deref().unwrap(),
            modified(&changes, "lib/x").diff.as_deref().unwrap(),
            modified(&changes, "lib.rs").diff.as_deref().unwrap()
        )
    );
    // Kept: only the changed text files the baseline holds the text of.
    let kept: Vec<&str> = streamed
        .texts
        .iter()
        .filter(|(_, t)| matches!(t, NewText::Kept(_)))
        .map(|(p, _)| p.to_str().unwrap())
        .collect();
    assert_eq!(kept, ["config.yaml", "lib/x", "lib.rs"]);
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(
        json["modified"][0],
        serde_json::json!({
            "path": "becomes-link", "old_size": 5, "new_size": 0,
            "diff_note": "a file when the service started, now a symlink to same.txt"
        })
    );
}

#[test]
fn a_file_without_a_final_newline_and_a_crlf_file_diff_as_git_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("a.conf"), "x = 1\ny = 2").unwrap();
    fs::write(root.join("b.ini"), "[s]\r\nk=1\r\n").unwrap();
    let base = baseline(root, PER_FILE, TOTAL);
    fs::write(root.join("a.conf"), "x = 1\ny = 3").unwrap();
    fs::write(root.join("b.ini"), "[s]\r\nk=2\r\n").unwrap();

    let (changes, _) = changes_since(root, &base, None);

    assert_eq!(
        modified(&changes, "a.conf").diff.as_deref(),
        Some("--- a/a.conf\n+++ b/a.conf\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n\\ No newline at end of file\n+y = 3\n\\ No newline at end of file\n")
    );
    assert_eq!(
        modified(&changes, "b.ini").diff.as_deref(),
        Some("--- a/b.ini\n+++ b/b.ini\n@@ -1,2 +1,2 @@\n [s]\r\n-k=1\r\n+k=2\r\n")
    );
}

#[test]
fn kept_text_stays_within_its_bounds_and_unchanged_files_are_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Ten changed text files of 1,000 bytes, five unchanged ones, one of 3,000 bytes.
    for i in 0..10 {
        fs::write(root.join(format!("c{i}.txt")), "a".repeat(999) + "\n").unwrap();
    }
    for i in 0..5 {
        fs::write(root.join(format!("u{i}.txt")), "u".repeat(999) + "\n").unwrap();
    }
    fs::write(root.join("d.txt"), "d".repeat(2999) + "\n").unwrap();
    let base = baseline(root, 4000, 1 << 20);
    for i in 0..10 {
        fs::write(root.join(format!("c{i}.txt")), "b".repeat(999) + "\n").unwrap();
    }
    fs::write(root.join("d.txt"), "e".repeat(2999) + "\n").unwrap();

    // At most 2,000 bytes of one file, 3,500 in all: three of the 1,000-byte files fit, then
    // the budget is passed; d.txt is over the per-file bound.
    let options = StreamOptions { keep_text: Some(keep(&base, 2000, 3500)), ..StreamOptions::default() };
    let streamed = stream(root, &options);

    let texts: Vec<(String, &NewText)> =
        streamed.texts.iter().map(|(p, t)| (p.display().to_string(), t)).collect();
    let kept: u64 =
        texts.iter().map(|(_, t)| if let NewText::Kept(b) = t { b.len() as u64 } else { 0 }).sum();
    assert_eq!(kept, 3000);
    assert_eq!(texts.len(), 11, "changed files only: {texts:?}");
    assert_eq!(*texts[0].1, NewText::Kept(format!("{}\n", "b".repeat(999)).into_bytes()));
    assert!(texts[1..3].iter().all(|(_, t)| matches!(t, NewText::Kept(_))), "{texts:?}");
    assert!(texts[3..10].iter().all(|(_, t)| **t == NewText::PastTotal), "{texts:?}");
    assert_eq!(texts[10], ("d.txt".to_string(), &NewText::TooLarge));

    let mut changes = diff(&base, &streamed.capture);
    text_diffs(&mut changes, options.keep_text.as_ref().unwrap(), &streamed, None);
    assert_eq!(
        modified(&changes, "c5.txt").diff_note.as_deref(),
        Some("not diffed: past the 3500 bytes of changed text a report keeps")
    );
    assert!(modified(&changes, "c2.txt").diff.is_some());
}

/// A rewrite that hides the value of `SECRET=` lines, as a report redacts environment files.
fn hide_secret(_: &Path, bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n')
        .map(|l| if l.starts_with("SECRET=") { "SECRET=<redacted>\n".to_string() } else { l.to_string() })
        .collect::<String>()
        .into_bytes()
}

#[test]
fn a_rewritten_file_is_diffed_rewritten_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("app.env"), "SECRET=old-hunter2\nPORT=80\n").unwrap();
    fs::write(root.join("only-secret.env"), "SECRET=first-secret\nPORT=80\n").unwrap();
    let base = baseline(root, PER_FILE, TOTAL);
    fs::write(root.join("app.env"), "SECRET=new-hunter3\nPORT=81\n").unwrap();
    fs::write(root.join("only-secret.env"), "SECRET=second-secret\nPORT=80\n").unwrap();
    let rewrite = || Rewrite { paths: vec!["app.env".into(), "only-secret.env".into()], with: hide_secret };

    let (changes, _) = changes_since(root, &base, Some(rewrite()));

    let app = modified(&changes, "app.env");
    assert_eq!(
        app.diff.as_deref(),
        Some("--- a/app.env\n+++ b/app.env\n@@ -1,2 +1,2 @@\n SECRET=<redacted>\n-PORT=80\n+PORT=81\n")
    );
    let only = modified(&changes, "only-secret.env");
    assert_eq!(
        (only.diff.as_deref(), only.diff_note.as_deref()),
        (None, Some("only what its redaction hides changed"))
    );
    let json = serde_json::to_string(&changes).unwrap();
    for secret in ["hunter", "first-secret", "second-secret"] {
        assert!(!json.contains(secret), "{secret} in {json}");
    }
}
