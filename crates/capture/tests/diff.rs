//! Changes between a baseline and a later capture of the same directory.

use std::fs;
use std::os::unix::fs::symlink;

use gitvisor_capture::{capture_dir, diff, BlobPool, FileChange, Limits, Modified};

#[test]
fn reports_added_removed_and_modified_files_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("same"), b"same").unwrap();
    fs::write(root.join("grows"), b"12").unwrap();
    fs::write(root.join("vanishes"), b"bye!!").unwrap();
    fs::write(root.join("will-be-big"), b"small").unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    symlink("same", root.join("link")).unwrap();
    let limits = Limits { max_file_size: 100, ..Limits::default() };
    let pool = BlobPool::default();
    let baseline = capture_dir(root, &limits, &pool).unwrap();

    fs::write(root.join("grows"), b"12345").unwrap();
    fs::remove_file(root.join("vanishes")).unwrap();
    fs::write(root.join("dir/new"), b"fresh").unwrap();
    fs::write(root.join("will-be-big"), vec![0u8; 200]).unwrap();
    fs::remove_file(root.join("link")).unwrap();
    symlink("grows", root.join("link")).unwrap();
    fs::create_dir(root.join("new-empty-dir")).unwrap();
    let now = capture_dir(root, &limits, &pool).unwrap();

    let changes = diff(&baseline, &now);
    let change = |path: &str, size| FileChange { path: path.into(), size };
    assert_eq!(changes.added, vec![change("dir/new", 5)]);
    assert_eq!(
        changes.removed,
        vec![change("vanishes", 5)],
        "will-be-big still exists (skipped as too large), so it is not removed"
    );
    assert_eq!(changes.modified, vec![Modified::new("grows", 2, 5), Modified::new("link", 0, 0),]);
    assert!(diff(&now, &now).is_empty());
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(json["added"][0]["path"], "dir/new");
    assert_eq!(json["modified"][0]["new_size"], 5);
}
