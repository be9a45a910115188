//! Which paths a service's `[Watch]` covers, and which directories it must watch to see them.
//!
//! Pure over the file system's answers (which `.gitignore` files exist, which paths are
//! directories): no watching here. A change *triggers* when its path matches `Paths=` and is not
//! excluded; a directory is *descended* (watched, and its subdirectories looked at) when it is
//! under a root of `Paths=` and not excluded. Excluded means: under `.git/`, matched by
//! `Exclude=` (gitignore syntax, rooted at the working directory), an editor's temporary file,
//! or ignored by a `.gitignore` between the path and the top of its git repository (unless
//! `IgnoreGitignore=yes`). So a `node_modules/` that `.gitignore` names is never descended and
//! costs no watch.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use gitvisor_units::WatchSettings;

/// Files editors write beside the one being saved (vim's swap files and its `4913` probe,
/// emacs's lock and autosave files, backups): never a change by themselves.
const EDITOR_TEMPORARIES: &[&str] = &["*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913"];

/// A directory to watch, and whether its subdirectories are watched too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub dir: PathBuf,
    pub recursive: bool,
}

pub struct Rules {
    /// The working directory: relative patterns and `Exclude=` are rooted here.
    base: PathBuf,
    include: GlobSet,
    roots: Vec<Root>,
    exclude: Gitignore,
    temporaries: GlobSet,
    gitignore: bool,
    /// The highest directory whose `.gitignore` counts for a path under `base`: the top of
    /// the git repository `base` is in, or `base` itself outside one.
    top: PathBuf,
    /// `.gitignore` of each directory looked at so far (`None`: it has none).
    ignores: HashMap<PathBuf, Option<Gitignore>>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn glob(pattern: &str) -> Result<globset::Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("{pattern:?}: {}", e.kind()))
}

/// A path as a glob that matches it literally.
fn escaped(p: &Path) -> String {
    globset::escape(&p.to_string_lossy())
}

/// The top of the git repository `dir` is in (the directory holding `.git`), if any.
fn repository_top(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

impl Rules {
    /// The rules of `settings` for a service working in `base`.
    pub fn new(base: &Path, settings: &WatchSettings) -> Result<Rules, String> {
        let mut include = GlobSetBuilder::new();
        let mut roots: Vec<Root> = Vec::new();
        let patterns: Vec<String> =
            if settings.paths.is_empty() { vec![String::new()] } else { settings.paths.clone() };
        for p in &patterns {
            let (literal, rest): (Vec<Component>, Vec<Component>) = {
                let comps: Vec<Component> = Path::new(p).components().collect();
                let cut = comps.iter().position(|c| has_glob(&c.as_os_str().to_string_lossy()));
                match cut {
                    Some(i) => (comps[..i].to_vec(), comps[i..].to_vec()),
                    None => (comps, Vec::new()),
                }
            };
            let literal: PathBuf = literal.iter().collect();
            // Joined component by component: `base.join("")` would end in a `/` no glob matches.
            let literal: PathBuf = if p.starts_with('/') {
                literal
            } else {
                base.components().chain(literal.components()).collect()
            };
            if rest.is_empty() {
                // A plain path: itself and everything under it.
                include.add(glob(&escaped(&literal))?);
                include.add(glob(&format!("{}/**", escaped(&literal)))?);
                if literal.is_dir() {
                    roots.push(Root { dir: literal, recursive: true });
                } else {
                    let parent = literal.parent().unwrap_or(Path::new("/")).to_path_buf();
                    roots.push(Root { dir: parent, recursive: false });
                }
            } else {
                let rest: PathBuf = rest.iter().collect();
                let rest = rest.to_string_lossy().into_owned();
                include.add(glob(&format!("{}/{rest}", escaped(&literal)))?);
                // `*.json` needs only its directory; `**` or a deeper pattern needs the tree.
                let recursive = rest.contains("**") || rest.contains('/');
                roots.push(Root { dir: literal, recursive });
            }
        }
        // A directory named twice is watched once, recursively if either asks.
        roots.sort_by(|a, b| a.dir.cmp(&b.dir));
        let mut merged: Vec<Root> = Vec::new();
        for r in roots {
            if merged.iter().any(|m| m.recursive && r.dir.starts_with(&m.dir)) {
                continue;
            }
            match merged.iter_mut().find(|m| m.dir == r.dir) {
                Some(m) => m.recursive |= r.recursive,
                None => merged.push(r),
            }
        }
        let mut exclude = GitignoreBuilder::new(base);
        for p in &settings.exclude {
            exclude.add_line(None, p).map_err(|e| format!("Exclude={p}: {e}"))?;
        }
        let exclude = exclude.build().map_err(|e| format!("Exclude=: {e}"))?;
        let mut temporaries = GlobSetBuilder::new();
        for t in EDITOR_TEMPORARIES {
            temporaries.add(glob(t)?);
        }
        Ok(Rules {
            base: base.to_path_buf(),
            include: include.build().map_err(|e| e.to_string())?,
            roots: merged,
            exclude,
            temporaries: temporaries.build().map_err(|e| e.to_string())?,
            gitignore: !settings.ignore_gitignore,
            top: repository_top(base).unwrap_or_else(|| base.to_path_buf()),
            ignores: HashMap::new(),
        })
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Whether `.gitignore` files count (so a change to one may change what is watched).
    pub fn reads_gitignore(&self) -> bool {
        self.gitignore
    }

    /// Forgets the `.gitignore` files read so far (one of them changed).
    pub fn forget_gitignores(&mut self) {
        self.ignores.clear();
    }

    /// A change to `path` restarts the service.
    pub fn triggers(&mut self, path: &Path, is_dir: bool) -> bool {
        self.include.is_match(path) && !self.excluded(path, is_dir)
    }

    /// `dir` is watched and its subdirectories looked at.
    pub fn descends(&mut self, dir: &Path) -> bool {
        !self.excluded(dir, true)
    }

    fn excluded(&mut self, path: &Path, is_dir: bool) -> bool {
        if path.components().any(|c| c.as_os_str() == ".git") {
            return true;
        }
        if path.file_name().is_some_and(|n| self.temporaries.is_match(n)) && !is_dir {
            return true;
        }
        if path.starts_with(&self.base)
            && path != self.base
            && self.exclude.matched_path_or_any_parents(path, is_dir).is_ignore()
        {
            return true;
        }
        self.gitignore && self.gitignored(path, is_dir)
    }

    /// git's verdict: the deepest `.gitignore` with a say about the path or one of its parents
    /// (from the path's directory up to the repository's top) decides.
    fn gitignored(&mut self, path: &Path, is_dir: bool) -> bool {
        let top = if path.starts_with(&self.top) {
            self.top.clone()
        } else {
            match path.parent() {
                Some(p) => p.to_path_buf(),
                None => return false,
            }
        };
        let Some(parent) = path.parent() else { return false };
        for dir in parent.ancestors() {
            if !dir.starts_with(&top) {
                break;
            }
            let gi = self
                .ignores
                .entry(dir.to_path_buf())
                .or_insert_with(|| {
                    let file = dir.join(".gitignore");
                    file.is_file().then(|| Gitignore::new(&file).0)
                })
                .as_ref();
            if let Some(gi) = gi {
                match gi.matched_path_or_any_parents(path, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(paths: &[&str], exclude: &[&str]) -> WatchSettings {
        WatchSettings {
            paths: paths.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ignore_gitignore: false,
            debounce: Duration::from_millis(200),
            restart_dependents: false,
        }
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for dir in ["src/lib", "node_modules/x", "dist", ".git", "docs"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        std::fs::write(d.path().join(".gitignore"), "node_modules/\n*.log\n!keep.log\n").unwrap();
        std::fs::write(d.path().join("src/.gitignore"), "generated.ts\n").unwrap();
        std::fs::write(d.path().join("package.json"), "{}").unwrap();
        d
    }

    #[test]
    fn the_whole_working_directory_by_default_minus_gitignore_git_and_temporaries() {
        let d = tree();
        let base = d.path();
        let mut r = Rules::new(base, &settings(&[], &[])).unwrap();
        assert_eq!(r.roots(), [Root { dir: base.to_path_buf(), recursive: true }]);
        assert!(r.triggers(&base.join("src/app.ts"), false));
        assert!(r.triggers(&base.join("package.json"), false));
        assert!(!r.triggers(&base.join("server.log"), false), "*.log is gitignored");
        assert!(r.triggers(&base.join("keep.log"), false), "a negated pattern wins");
        assert!(!r.triggers(&base.join("src/generated.ts"), false), "a nested .gitignore counts");
        assert!(r.triggers(&base.join("src/lib/generated2.ts"), false));
        assert!(!r.triggers(&base.join(".git/index"), false));
        assert!(!r.triggers(&base.join("src/.app.ts.swp"), false));
        assert!(!r.triggers(&base.join("src/app.ts~"), false));
        assert!(!r.triggers(&base.join("src/4913"), false));
        assert!(!r.descends(&base.join("node_modules")));
        assert!(!r.descends(&base.join(".git")));
        assert!(r.descends(&base.join("src")));
    }

    #[test]
    fn ignore_gitignore_turns_the_gitignore_files_off() {
        let d = tree();
        let mut s = settings(&[], &[]);
        s.ignore_gitignore = true;
        let mut r = Rules::new(d.path(), &s).unwrap();
        assert!(r.descends(&d.path().join("node_modules")));
        assert!(r.triggers(&d.path().join("server.log"), false));
        assert!(!r.descends(&d.path().join(".git")), ".git/ stays out");
    }

    #[test]
    fn globs_plain_paths_and_their_roots() {
        let d = tree();
        let base = d.path();
        let mut r = Rules::new(base, &settings(&["src/**/*.ts", "package.json", "docs/*.md"], &[])).unwrap();
        assert_eq!(
            r.roots(),
            [
                Root { dir: base.to_path_buf(), recursive: false },
                Root { dir: base.join("docs"), recursive: false },
                Root { dir: base.join("src"), recursive: true },
            ]
        );
        assert!(r.triggers(&base.join("src/app.ts"), false));
        assert!(r.triggers(&base.join("src/lib/deep.ts"), false));
        assert!(!r.triggers(&base.join("src/app.js"), false));
        assert!(r.triggers(&base.join("package.json"), false));
        assert!(!r.triggers(&base.join("package-lock.json"), false));
        assert!(r.triggers(&base.join("docs/a.md"), false));
        assert!(!r.triggers(&base.join("docs/sub/a.md"), false), "* does not cross a /");
    }

    #[test]
    fn a_plain_directory_covers_everything_under_it() {
        let d = tree();
        let base = d.path();
        let mut r = Rules::new(base, &settings(&["src"], &[])).unwrap();
        assert_eq!(r.roots(), [Root { dir: base.join("src"), recursive: true }]);
        assert!(r.triggers(&base.join("src/lib/a.rs"), false));
        assert!(!r.triggers(&base.join("docs/a.md"), false));
    }

    #[test]
    fn exclude_in_gitignore_syntax_covers_what_is_under_a_directory() {
        let d = tree();
        let base = d.path();
        let mut r = Rules::new(base, &settings(&[], &["dist/", "*.tmp", "/docs"])).unwrap();
        assert!(!r.descends(&base.join("dist")));
        assert!(!r.triggers(&base.join("dist/bundle.js"), false));
        assert!(!r.triggers(&base.join("src/x.tmp"), false));
        assert!(!r.descends(&base.join("docs")));
        assert!(r.triggers(&base.join("src/x.ts"), false));
    }

    #[test]
    fn a_parent_repositorys_gitignore_counts_below_its_top() {
        let d = tree();
        // The service works in a subdirectory of the repository.
        let base = d.path().join("src");
        let mut r = Rules::new(&base, &settings(&[], &[])).unwrap();
        assert!(!r.triggers(&base.join("x.log"), false), "the top's *.log applies");
        assert!(r.triggers(&base.join("x.ts"), false));
    }
}
