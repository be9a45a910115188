//! What a capture may take: per-file and per-capture byte caps and the exclude globs.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

/// Default per-file cap: 1 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Default per-capture cap: 64 MiB.
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 64 * 1024 * 1024;

/// Caps and exclusions for one capture (`[Capture] MaxFileSize=`, `MaxTotalSize=`, `Exclude=`).
///
/// Exclude patterns are globs matched against the path relative to the captured root, with
/// `/` between components:
/// - a pattern without a `/` (such as `*.log` or `target/`) also matches the bare name at any
///   depth, as in `.gitignore`;
/// - a trailing `/` (such as `target/`) matches directories only;
/// - `*` does not cross `/`; `**` does (`node_modules/**` skips everything below
///   `node_modules`, which itself is still recorded as a directory);
/// - an excluded directory is recorded once as [`crate::SkipReason::Excluded`] and not entered.
///
/// A pattern that is not a valid glob is ignored by [`crate::capture_dir`]; call
/// [`Limits::sanitized`] first to turn such patterns into warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_file_size: u64,
    pub max_total_size: u64,
    pub exclude: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_total_size: DEFAULT_MAX_TOTAL_SIZE,
            exclude: Vec::new(),
        }
    }
}

impl Limits {
    /// Drops exclude patterns that are not valid globs, with one warning line for each.
    pub fn sanitized(mut self) -> (Limits, Vec<String>) {
        let mut warnings = Vec::new();
        self.exclude.retain(|pattern| match compile(pattern) {
            Ok(_) => true,
            Err(error) => {
                warnings.push(format!("capture exclude pattern {pattern:?} ignored: {error}"));
                false
            }
        });
        (self, warnings)
    }

    pub(crate) fn excludes(&self) -> Excludes {
        Excludes { patterns: self.exclude.iter().filter_map(|pattern| compile(pattern).ok()).collect() }
    }
}

/// The compiled exclude patterns of a [`Limits`].
pub(crate) struct Excludes {
    patterns: Vec<Pattern>,
}

struct Pattern {
    original: String,
    matcher: GlobMatcher,
    dirs_only: bool,
    any_depth: bool,
}

impl Excludes {
    /// The original text of the first pattern that excludes `relative`, if any.
    pub(crate) fn matching(&self, relative: &Path, is_dir: bool) -> Option<&str> {
        let name = relative.file_name().map(Path::new);
        self.patterns
            .iter()
            .find(|p| {
                (is_dir || !p.dirs_only)
                    && (p.matcher.is_match(relative)
                        || (p.any_depth && name.is_some_and(|n| p.matcher.is_match(n))))
            })
            .map(|p| p.original.as_str())
    }
}

fn compile(original: &str) -> Result<Pattern, String> {
    let dirs_only = original.ends_with('/');
    let body = original.trim_end_matches('/');
    let body = body.strip_prefix("./").unwrap_or(body);
    if body.is_empty() {
        return Err("the pattern names no file".to_owned());
    }
    let any_depth = !body.contains('/');
    let body = body.strip_prefix('/').unwrap_or(body);
    let matcher = GlobBuilder::new(body)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|error| error.kind().to_string())?
        .compile_matcher();
    Ok(Pattern { original: original.to_owned(), matcher, dirs_only, any_depth })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(patterns: &[&str]) -> Excludes {
        Limits { exclude: patterns.iter().map(|p| p.to_string()).collect(), ..Limits::default() }.excludes()
    }

    #[test]
    fn bare_patterns_match_at_any_depth() {
        let ex = limits(&["*.log"]);
        assert_eq!(ex.matching(Path::new("a.log"), false), Some("*.log"));
        assert_eq!(ex.matching(Path::new("deep/er/b.log"), false), Some("*.log"));
        assert_eq!(ex.matching(Path::new("b.txt"), false), None);
    }

    #[test]
    fn trailing_slash_matches_directories_only() {
        let ex = limits(&["target/"]);
        assert_eq!(ex.matching(Path::new("target"), true), Some("target/"));
        assert_eq!(ex.matching(Path::new("sub/target"), true), Some("target/"));
        assert_eq!(ex.matching(Path::new("target"), false), None);
    }

    #[test]
    fn double_star_matches_below_a_directory() {
        let ex = limits(&["node_modules/**"]);
        assert_eq!(ex.matching(Path::new("node_modules"), true), None);
        assert!(ex.matching(Path::new("node_modules/x/y.js"), false).is_some());
        assert!(ex.matching(Path::new("src/node_modules/x"), false).is_none());
    }

    #[test]
    fn invalid_patterns_become_warnings() {
        let (limits, warnings) =
            Limits { exclude: vec!["ok*".into(), "bad[".into()], ..Limits::default() }.sanitized();
        assert_eq!(limits.exclude, vec!["ok*".to_string()]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("bad["), "{warnings:?}");
    }
}
