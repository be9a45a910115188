//! Start stamps written by `bench-stamp`, and the statistics drawn from them.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// CLOCK_REALTIME in nanoseconds: the clock `bench-stamp` writes.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// The complete lines of a stamp file (a line being written is not counted yet).
pub fn read(file: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let complete = text.rfind('\n').map(|i| &text[..=i]).unwrap_or("");
    complete.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Stamps of a directory of one-stamp files (one per service): the first stamp of each.
pub fn read_dir(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().filter_map(|e| read(&e.path()).first().copied()).collect()
}

#[derive(Serialize, Clone, Debug)]
pub struct Intervals {
    pub samples: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// Intervals between consecutive stamps, skipping the first `warmup` stamps.
pub fn intervals(stamps: &[u64], warmup: usize) -> Option<Intervals> {
    let s = stamps.get(warmup.min(stamps.len())..)?;
    summary(s.windows(2).map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6).collect())
}

/// Median, p99, min and max of durations in milliseconds.
pub fn summary(mut ms: Vec<f64>) -> Option<Intervals> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    Some(Intervals {
        samples: ms.len(),
        median_ms: quantile(&ms, 0.5),
        p99_ms: quantile(&ms, 0.99),
        min_ms: ms[0],
        max_ms: ms[ms.len() - 1],
    })
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_skip_warmup_and_take_quantiles() {
        let stamps: Vec<u64> = [0u64, 100, 1_000_000, 2_000_000, 4_000_000, 5_000_000].to_vec();
        let i = intervals(&stamps, 2).unwrap();
        assert_eq!(i.samples, 3);
        assert_eq!(i.median_ms, 1.0);
        assert_eq!(i.p99_ms, 2.0);
        assert_eq!(i.min_ms, 1.0);
    }

    #[test]
    fn a_partial_last_line_is_not_a_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "10\n20\n3").unwrap();
        assert_eq!(read(&f), vec![10, 20]);
    }
}
