//! The services repository (SPEC section 4): what runs is what is committed on the checked-out
//! branch. Reading units from commits, pending edits, history, rollback and committing edits.

use std::path::{Path, PathBuf};

use git2::{DiffOptions, ErrorCode, Oid, Repository, RepositoryState, Signature, StatusOptions};
use gitvisor_protocol::{CommitInfo, Pending};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("services repository {path}: {message}")]
    Repo { path: String, message: String },
    #[error("{0}")]
    Refused(String),
}

fn repo_err(path: &Path, e: impl std::fmt::Display) -> GitError {
    GitError::Repo { path: path.display().to_string(), message: e.to_string() }
}

/// The branch and commit that run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub branch: String,
    pub commit: Oid,
}

pub struct ServicesRepo {
    path: PathBuf,
    repo: Repository,
}

const README: &str = "# gitvisor services\n\nEach `NAME.service` file at the root of this repository is a service, written in\nsystemd's unit syntax. gitvisor runs what is committed on the checked-out branch: commit to\nchange what runs, `gitvisor rollback COMMIT` to go back. Uncommitted edits are shown as pending\nand never run.\n\n```ini\n[Unit]\nDescription=What it is\nRequires=other\nAfter=other\n\n[Service]\nExecStart=/usr/bin/program --flag value\nWorkingDirectory=~/src/project\nEnvironment=KEY=value\nRestart=on-failure\n\n[Install]\nWantedBy=default.target\n```\n\n`[Install] WantedBy=` enables a unit: it starts with gitvisor and when it first appears in a\ncommit. Without it the unit is registered and started by hand (`gitvisor start NAME`).\nCheck units with `gitvisor validate`. The full reference is in gitvisor's docs/units.md.\n";

const EXAMPLE: &str = "# An example, not enabled: no [Install] section. Start it with `gitvisor start example`.\n[Unit]\nDescription=Example service: prints the time every minute\n\n[Service]\nExecStart=/bin/sh -c 'while true; do date; sleep 60; done'\nRestart=on-failure\n";

/// Author for commits gitvisor makes in `repo`: git config, else the engine's user.
fn signature_for(repo: &Repository) -> Signature<'static> {
    if let Ok(sig) = repo.signature() {
        return sig.to_owned();
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "gitvisor".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    Signature::now(&user, &format!("{user}@{host}")).expect("valid signature")
}

/// Commits everything in the new repository at `path` as its first commit, its objects written
/// as one pack: a directory of a thousand units would otherwise be a thousand loose object files,
/// and creating files is what costs (0.45 s for 1,000 on this project's test machine, most of
/// a first start's time). Objects go to an in-memory store first; the index and the branch
/// are written only once the pack is on disk, so a crash on the way leaves no ref to a missing
/// object.
fn first_commit(repo: &Repository) -> Result<(), git2::Error> {
    let odb = repo.odb()?;
    let mempack = odb.add_new_mempack_backend(1000)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    let tree_id = index.write_tree()?;
    let tree = repo.find_tree(tree_id)?;
    let sig = signature_for(repo);
    let commit = repo.commit(None, &sig, &sig, "Create the services repository", &tree, &[])?;
    let mut pack = git2::Buf::new();
    mempack.dump(repo, &mut pack)?;
    let mut writer = odb.packwriter()?;
    std::io::Write::write_all(&mut writer, &pack).map_err(|e| git2::Error::from_str(&e.to_string()))?;
    writer.commit()?;
    mempack.reset()?;
    index.write()?;
    // HEAD of a new repository names its branch (init.defaultBranch) before it exists.
    let head = repo.find_reference("HEAD")?;
    let branch = head.symbolic_target().ok().flatten().unwrap_or("refs/heads/main").to_string();
    repo.reference(&branch, commit, false, "commit (initial): Create the services repository")?;
    Ok(())
}

impl ServicesRepo {
    /// Opens the repository at `path`, creating it (one commit with a README and a disabled
    /// example unit) when `path` holds no repository yet.
    pub fn open_or_init(path: &Path) -> Result<ServicesRepo, GitError> {
        match Repository::open(path) {
            Ok(repo) => Ok(ServicesRepo { path: path.to_path_buf(), repo }),
            Err(e) if e.code() == ErrorCode::NotFound => Self::init(path),
            Err(e) => Err(repo_err(path, e.message())),
        }
    }

    pub fn open(path: &Path) -> Result<ServicesRepo, GitError> {
        let repo = Repository::open(path).map_err(|e| repo_err(path, e.message()))?;
        Ok(ServicesRepo { path: path.to_path_buf(), repo })
    }

    fn init(path: &Path) -> Result<ServicesRepo, GitError> {
        std::fs::create_dir_all(path).map_err(|e| repo_err(path, e))?;
        let has_units = std::fs::read_dir(path)
            .map_err(|e| repo_err(path, e))?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".service"));
        let repo = Repository::init(path).map_err(|e| repo_err(path, e.message()))?;
        for (name, text) in [("README.md", README), ("example.service", EXAMPLE)] {
            // Existing unit files (a directory used before git) are committed as they are.
            if name == "example.service" && has_units {
                continue;
            }
            if !path.join(name).exists() {
                std::fs::write(path.join(name), text).map_err(|e| repo_err(path, e))?;
            }
        }
        first_commit(&repo).map_err(|e| repo_err(path, e.message()))?;
        drop(repo);
        // Reopened: the first commit's in-memory object store stays with the handle that made it.
        Self::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The git directory (where refs live), for the watcher.
    pub fn git_dir(&self) -> PathBuf {
        self.repo.path().to_path_buf()
    }

    /// Author for commits gitvisor makes: git config, else the engine's user.
    fn signature(&self) -> Signature<'static> {
        signature_for(&self.repo)
    }

    /// The branch and commit to run, or why the repository cannot say (a state git itself would
    /// refuse to work in).
    pub fn head(&self) -> Result<Head, String> {
        if self.repo.is_bare() {
            return Err("the services repository is bare: it has no working tree".into());
        }
        match self.repo.state() {
            RepositoryState::Clean => {}
            state => {
                return Err(format!(
                    "a {} is in progress in the services repository; finish or abort it",
                    describe_state(state)
                ))
            }
        }
        let head = match self.repo.head() {
            Ok(h) => h,
            Err(e) if e.code() == ErrorCode::UnbornBranch => {
                let branch = self
                    .repo
                    .find_reference("HEAD")
                    .ok()
                    .and_then(|r| {
                        r.symbolic_target()
                            .ok()
                            .flatten()
                            .map(|t| t.trim_start_matches("refs/heads/").to_string())
                    })
                    .unwrap_or_default();
                return Err(format!("the branch {branch} of the services repository has no commit yet"));
            }
            Err(e) => return Err(format!("cannot read HEAD of the services repository: {}", e.message())),
        };
        if self.repo.head_detached().unwrap_or(false) {
            return Err("HEAD of the services repository is detached; check out a branch".into());
        }
        let branch = head.shorthand().unwrap_or("").to_string();
        let commit =
            head.peel_to_commit().map_err(|e| format!("HEAD does not point to a commit: {}", e.message()))?;
        Ok(Head { branch, commit: commit.id() })
    }

    /// `*.service` files at the root of the commit's tree.
    pub fn units_at(&self, commit: Oid) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let c = self.repo.find_commit(commit).map_err(|e| repo_err(&self.path, e.message()))?;
        let tree = c.tree().map_err(|e| repo_err(&self.path, e.message()))?;
        let mut out = Vec::new();
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            if !is_unit_file(name) || entry.kind() != Some(git2::ObjectType::Blob) {
                continue;
            }
            let blob = self.repo.find_blob(entry.id()).map_err(|e| repo_err(&self.path, e.message()))?;
            out.push((name.to_string(), blob.content().to_vec()));
        }
        out.sort();
        Ok(out)
    }

    /// One file at the root of the commit's tree (None when it has none by that name): what a
    /// crash report copies, without reading the commit's other units.
    pub fn file_at(&self, commit: Oid, name: &str) -> Result<Option<Vec<u8>>, GitError> {
        let c = self.repo.find_commit(commit).map_err(|e| repo_err(&self.path, e.message()))?;
        let tree = c.tree().map_err(|e| repo_err(&self.path, e.message()))?;
        let Some(entry) = tree.get_name(name).filter(|e| e.kind() == Some(git2::ObjectType::Blob)) else {
            return Ok(None);
        };
        let blob = self.repo.find_blob(entry.id()).map_err(|e| repo_err(&self.path, e.message()))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Unit files whose working-tree content differs from HEAD.
    pub fn pending(&self) -> Vec<Pending> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(false).include_ignored(false);
        let Ok(statuses) = self.repo.statuses(Some(&mut opts)) else { return Vec::new() };
        let mut out = Vec::new();
        for s in statuses.iter() {
            let Ok(path) = s.path() else { continue };
            if !is_unit_file(path) || path.contains('/') {
                continue;
            }
            let st = s.status();
            let change = if st.intersects(git2::Status::WT_NEW | git2::Status::INDEX_NEW) {
                "added"
            } else if st.intersects(git2::Status::WT_DELETED | git2::Status::INDEX_DELETED) {
                "deleted"
            } else if st.intersects(git2::Status::WT_RENAMED | git2::Status::INDEX_RENAMED) {
                "renamed"
            } else if st.intersects(
                git2::Status::WT_MODIFIED | git2::Status::INDEX_MODIFIED | git2::Status::WT_TYPECHANGE,
            ) {
                "modified"
            } else {
                continue;
            };
            out.push(Pending { file: path.to_string(), change: change.into() });
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    pub fn resolve(&self, spec: &str) -> Result<Oid, GitError> {
        let obj = self
            .repo
            .revparse_single(spec)
            .map_err(|_| GitError::Refused(format!("unknown commit {spec:?} in the services repository")))?;
        let commit = obj
            .peel_to_commit()
            .map_err(|_| GitError::Refused(format!("{spec:?} does not name a commit")))?;
        Ok(commit.id())
    }

    /// Commits reachable from HEAD along first parents, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk().map_err(|e| repo_err(&self.path, e.message()))?;
        walk.push_head().map_err(|e| repo_err(&self.path, e.message()))?;
        walk.simplify_first_parent().ok();
        let mut out = Vec::new();
        for id in walk.take(limit) {
            let id = id.map_err(|e| repo_err(&self.path, e.message()))?;
            let c = self.repo.find_commit(id).map_err(|e| repo_err(&self.path, e.message()))?;
            let parent = c.parent(0).ok().and_then(|p| p.tree().ok());
            let units = self.changed_units(parent.as_ref(), c.tree().ok().as_ref());
            out.push(CommitInfo {
                id: id.to_string(),
                summary: c.summary().ok().flatten().unwrap_or("").to_string(),
                author: c.author().name().unwrap_or("").to_string(),
                time: c.time().seconds(),
                units,
                applied: false,
                runs: false,
            });
        }
        Ok(out)
    }

    fn changed_units(&self, old: Option<&git2::Tree>, new: Option<&git2::Tree>) -> Vec<String> {
        let mut opts = DiffOptions::new();
        opts.pathspec("*.service").pathspec("*.timer");
        let Ok(diff) = self.repo.diff_tree_to_tree(old, new, Some(&mut opts)) else { return Vec::new() };
        let mut units: Vec<String> = diff
            .deltas()
            .filter_map(|d| {
                d.new_file().path().or(d.old_file().path()).map(|p| p.to_string_lossy().into_owned())
            })
            .filter(|p| !p.contains('/'))
            .collect();
        units.sort();
        units.dedup();
        units
    }

    /// What moving from HEAD to `target` changes in the unit files, as a unified diff.
    pub fn diff_to(&self, target: Oid) -> Result<String, GitError> {
        let head = self.head().map_err(GitError::Refused)?;
        let old = self
            .repo
            .find_commit(head.commit)
            .and_then(|c| c.tree())
            .map_err(|e| repo_err(&self.path, e.message()))?;
        let new = self
            .repo
            .find_commit(target)
            .and_then(|c| c.tree())
            .map_err(|e| repo_err(&self.path, e.message()))?;
        self.patch(Some(&old), &new)
    }

    fn patch(&self, old: Option<&git2::Tree>, new: &git2::Tree) -> Result<String, GitError> {
        let mut opts = DiffOptions::new();
        opts.pathspec("*.service").pathspec("*.timer");
        let diff = self
            .repo
            .diff_tree_to_tree(old, Some(new), Some(&mut opts))
            .map_err(|e| repo_err(&self.path, e.message()))?;
        let mut out = String::new();
        diff.print(git2::DiffFormat::Patch, |_, _, line| {
            let prefix = match line.origin() {
                c @ ('+' | '-' | ' ') => c.to_string(),
                _ => String::new(),
            };
            out.push_str(&prefix);
            out.push_str(&String::from_utf8_lossy(line.content()));
            true
        })
        .map_err(|e| repo_err(&self.path, e.message()))?;
        Ok(out)
    }

    /// What commit `id` changed in the unit files against its first parent, as a unified diff.
    pub fn commit_patch(&self, id: Oid) -> Result<String, GitError> {
        let commit = self.repo.find_commit(id).map_err(|e| repo_err(&self.path, e.message()))?;
        let new = commit.tree().map_err(|e| repo_err(&self.path, e.message()))?;
        let old = commit.parent(0).ok().and_then(|p| p.tree().ok());
        self.patch(old.as_ref(), &new)
    }

    /// A new commit on the branch whose tree is `target`'s; history is never rewritten.
    /// Refused when unit files have uncommitted changes (they would be lost or run unseen).
    pub fn rollback(&self, target: Oid) -> Result<Oid, GitError> {
        let head = self.head().map_err(GitError::Refused)?;
        let pending = self.pending();
        if !pending.is_empty() {
            let files: Vec<String> = pending.iter().map(|p| format!("{} ({})", p.file, p.change)).collect();
            return Err(GitError::Refused(format!(
                "uncommitted changes to units in the services repository: {}; commit or discard them first",
                files.join(", ")
            )));
        }
        let e = |e: git2::Error| repo_err(&self.path, e.message());
        let target_commit = self.repo.find_commit(target).map_err(e)?;
        let tree = target_commit.tree().map_err(e)?;
        let parent = self.repo.find_commit(head.commit).map_err(e)?;
        if parent.tree_id() == tree.id() {
            return Err(GitError::Refused(format!(
                "HEAD already has the tree of {}: nothing to roll back",
                short(target)
            )));
        }
        // Update the working tree first (safe mode: it only touches files that match HEAD), so
        // a failure leaves the branch where it was.
        let mut co = git2::build::CheckoutBuilder::new();
        co.safe();
        self.repo.checkout_tree(tree.as_object(), Some(&mut co)).map_err(e)?;
        let sig = self.signature();
        let msg = format!(
            "Roll back to {} ({})\n\nThe tree of {} restored by gitvisor rollback.",
            short(target),
            target_commit.summary().ok().flatten().unwrap_or(""),
            target
        );
        let id = self.repo.commit(Some("HEAD"), &sig, &sig, &msg, &tree, &[&parent]).map_err(e)?;
        let mut index = self.repo.index().map_err(e)?;
        index.read_tree(&tree).map_err(e)?;
        index.write().map_err(e)?;
        Ok(id)
    }

    /// Writes `file` into the working tree and commits it alone, with `message`.
    pub fn commit_file(&self, file: &str, bytes: &[u8], message: &str) -> Result<Oid, GitError> {
        self.commit_files(&[(file.to_string(), bytes.to_vec())], message)
    }

    /// Writes the files into the working tree and commits them (and nothing else), with
    /// `message`.
    pub fn commit_files(&self, files: &[(String, Vec<u8>)], message: &str) -> Result<Oid, GitError> {
        let head = self.head().map_err(GitError::Refused)?;
        let e = |e: git2::Error| repo_err(&self.path, e.message());
        let mut index = self.repo.index().map_err(e)?;
        for (file, bytes) in files {
            let full = gitvisor_state::join_inside(&self.path, file)
                .map_err(|err| GitError::Refused(err.to_string()))?;
            gitvisor_state::write_atomic(&full, bytes).map_err(|err| repo_err(&self.path, err))?;
            index.add_path(Path::new(file)).map_err(e)?;
        }
        index.write().map_err(e)?;
        let tree = self.repo.find_tree(index.write_tree().map_err(e)?).map_err(e)?;
        let parent = self.repo.find_commit(head.commit).map_err(e)?;
        let sig = self.signature();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent]).map_err(e)
    }

    /// Removes `file` from the working tree and commits its removal (nothing else), with
    /// `message`.
    pub fn commit_removal(&self, file: &str, message: &str) -> Result<Oid, GitError> {
        let head = self.head().map_err(GitError::Refused)?;
        let e = |e: git2::Error| repo_err(&self.path, e.message());
        let full = gitvisor_state::join_inside(&self.path, file)
            .map_err(|err| GitError::Refused(err.to_string()))?;
        match std::fs::remove_file(&full) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(repo_err(&self.path, err)),
        }
        let mut index = self.repo.index().map_err(e)?;
        index.remove_path(Path::new(file)).map_err(e)?;
        index.write().map_err(e)?;
        let tree = self.repo.find_tree(index.write_tree().map_err(e)?).map_err(e)?;
        let parent = self.repo.find_commit(head.commit).map_err(e)?;
        let sig = self.signature();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &[&parent]).map_err(e)
    }

    /// The branch's ref file and what else moves when the branch moves, for the watcher.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let git = self.git_dir();
        let mut files = vec![git.join("HEAD"), git.join("packed-refs")];
        if let Ok(h) = self.repo.head() {
            if let Ok(name) = h.name() {
                files.push(git.join(name));
            }
        } else if let Ok(r) = self.repo.find_reference("HEAD") {
            if let Ok(Some(t)) = r.symbolic_target() {
                files.push(git.join(t));
            }
        }
        files
    }

    /// `commit` is `applied` or one of its ancestors.
    pub fn contains(&self, applied: Oid, commit: Oid) -> bool {
        applied == commit || self.repo.graph_descendant_of(applied, commit).unwrap_or(false)
    }

    /// A git operation that moves the branch several times is under way (rebase, merge...).
    pub fn operation_in_progress(&self) -> bool {
        self.repo.state() != RepositoryState::Clean
    }
}

pub fn short(id: Oid) -> String {
    id.to_string()[..10].to_string()
}

fn describe_state(s: RepositoryState) -> &'static str {
    match s {
        RepositoryState::Merge => "merge",
        RepositoryState::Revert | RepositoryState::RevertSequence => "revert",
        RepositoryState::CherryPick | RepositoryState::CherryPickSequence => "cherry-pick",
        RepositoryState::Bisect => "bisect",
        RepositoryState::Rebase | RepositoryState::RebaseInteractive | RepositoryState::RebaseMerge => {
            "rebase"
        }
        RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => "git am",
        RepositoryState::Clean => "clean",
    }
}

/// A file of the services repository the engine reads: a service or a timer.
pub fn is_unit_file(name: &str) -> bool {
    name.ends_with(".service") || name.ends_with(".timer")
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_directory_of_units_becomes_one_commit_whose_objects_are_one_pack() {
        let dir = tempfile::tempdir().unwrap();
        let services = dir.path().join("services");
        std::fs::create_dir(&services).unwrap();
        for i in 0..40 {
            std::fs::write(
                services.join(format!("s{i:02}.service")),
                format!("[Service]\nExecStart=/bin/true {i}\n"),
            )
            .unwrap();
        }
        let repo = ServicesRepo::open_or_init(&services).unwrap();
        let head = repo.head().unwrap();

        // No loose object: every object directory but `pack` and `info` is absent or empty.
        let objects = services.join(".git/objects");
        for e in std::fs::read_dir(&objects).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            if name != "pack" && name != "info" {
                assert_eq!(std::fs::read_dir(e.path()).unwrap().count(), 0, "loose objects in {name}");
            }
        }
        let packs: Vec<_> = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .collect();
        assert_eq!(packs.len(), 1);
        // The git binary agrees: a sound repository, one commit of all the files, on the branch
        // HEAD names, with a clean index and work tree.
        git(&services, &["fsck", "--strict", "--no-dangling"]);
        assert_eq!(git(&services, &["rev-parse", "HEAD"]).trim(), head.commit.to_string());
        assert_eq!(git(&services, &["rev-list", "--count", "HEAD"]).trim(), "1");
        let files = git(&services, &["ls-tree", "--name-only", "HEAD"]);
        assert_eq!(files.lines().count(), 41, "40 units and the README: {files}");
        assert!(!files.contains("example.service"), "no example beside existing units");
        assert_eq!(git(&services, &["status", "--porcelain"]), "");
        assert_eq!(git(&services, &["symbolic-ref", "--short", "HEAD"]).trim(), head.branch);

        // What the engine commits next goes to disk, not to the first commit's memory store:
        // a new handle on the repository sees it, and so does git.
        let next = repo.commit_file("new.service", b"[Service]\nExecStart=/bin/true\n", "new").unwrap();
        drop(repo);
        let again = ServicesRepo::open(&services).unwrap();
        assert_eq!(again.head().unwrap().commit, next);
        assert!(again.file_at(next, "new.service").unwrap().is_some());
        git(&services, &["fsck", "--strict", "--no-dangling"]);
        assert_eq!(git(&services, &["rev-list", "--count", "HEAD"]).trim(), "2");
    }

    #[test]
    fn an_empty_directory_gets_the_readme_and_the_example() {
        let dir = tempfile::tempdir().unwrap();
        let repo = ServicesRepo::open_or_init(dir.path()).unwrap();
        assert!(repo.head().is_ok());
        let files = git(dir.path(), &["ls-tree", "--name-only", "HEAD"]);
        assert_eq!(files, "README.md\nexample.service\n");
        git(dir.path(), &["fsck", "--strict", "--no-dangling"]);
    }
}
