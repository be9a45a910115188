//! The services repository as history: commits with the units each changed, diffs, and
//! rollback (a new commit with an old tree, applied at once).

use gitvisor_protocol::{CommitInfo, HistoryReply, Method, Rollback, RollbackReply, SyncReport};

use super::{Engine, EngineError};
use crate::git::ServicesRepo;

impl Engine {
    /// Commits on the branch, newest first, with the units each changed and whether it runs;
    /// and the latest syncs.
    pub fn history(&self, limit: usize) -> Result<HistoryReply, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        let applied = self.applied().and_then(|a| repo.resolve(&a).ok());
        let mut commits: Vec<CommitInfo> = repo.history(limit)?;
        for c in &mut commits {
            if let (Some(a), Ok(id)) = (applied, repo.resolve(&c.id)) {
                c.applied = repo.contains(a, id);
                c.runs = a == id;
            }
        }
        let text = std::fs::read_to_string(&self.inner.paths.sync_history).unwrap_or_default();
        let mut syncs: Vec<SyncReport> =
            text.lines().rev().filter_map(|l| serde_json::from_str(l).ok()).take(limit).collect();
        syncs.truncate(limit);
        Ok(HistoryReply { commits, syncs })
    }

    /// What rolling back to `commit` would change in the unit files (HEAD to `commit`).
    pub fn diff_to(&self, commit: &str) -> Result<String, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        let id = repo.resolve(commit)?;
        Ok(repo.diff_to(id)?)
    }

    /// What `commit` changed in the unit files against its first parent.
    pub fn commit_diff(&self, commit: &str) -> Result<String, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        let id = repo.resolve(commit)?;
        Ok(repo.commit_patch(id)?)
    }

    /// A new commit whose tree is `commit`'s, applied at once.
    pub async fn rollback(&self, commit: &str) -> Result<RollbackReply, EngineError> {
        let made = self
            .under_sync_lock(Rollback::NAME, || {
                let (me, target) = (self.clone(), commit.to_string());
                async move {
                    let repo = ServicesRepo::open(&me.inner.paths.services)?;
                    let id = repo.resolve(&target)?;
                    repo.rollback(id)
                }
            })
            .await??;
        let sync = self.sync().await?;
        Ok(RollbackReply { commit: made.to_string(), sync })
    }
}
