//! The `unit.*` methods: editing units through the engine (the window's editor). The file work
//! is `unit_files`'s, shared with `gitvisor edit`; here a commit or a removal is made under the
//! sync lock and applied at once, as `enable` does.

use gitvisor_protocol::{Method, UnitCheck, UnitCommit, UnitCommitReply, UnitDelete, UnitText};

use super::sync::SYNC_KEY;
use super::{Engine, EngineError};
use crate::unit_files::{self, EditError};

impl From<EditError> for EngineError {
    fn from(e: EditError) -> EngineError {
        match e {
            EditError::Name(m) => EngineError::InvalidParams(m),
            invalid @ EditError::Invalid { .. } => EngineError::InvalidUnit(invalid.to_string()),
            EditError::Git(g) => EngineError::Git(g),
            EditError::Io(m) => EngineError::InvalidParams(m),
        }
    }
}

impl Engine {
    pub fn unit_get(&self, name: &str) -> Result<UnitText, EngineError> {
        let file = unit_files::file_of(name)?;
        Ok(unit_files::read(&self.inner.paths, &file)?)
    }

    pub fn unit_validate(&self, name: &str, text: &str) -> Result<UnitCheck, EngineError> {
        let file = unit_files::file_of(name)?;
        Ok(unit_files::check(&file, text))
    }

    /// Keeps (or, without text, forgets) the draft of a unit; answers the unit as it now reads.
    pub fn unit_draft(&self, name: &str, text: Option<&str>) -> Result<UnitText, EngineError> {
        let file = unit_files::file_of(name)?;
        unit_files::set_draft(&self.inner.paths, &file, text)?;
        Ok(unit_files::read(&self.inner.paths, &file)?)
    }

    /// Puts a unit file back as committed; answers the unit as it now reads.
    pub fn unit_discard(&self, name: &str) -> Result<UnitText, EngineError> {
        let file = unit_files::file_of(name)?;
        unit_files::discard(&self.inner.paths, &file)?;
        Ok(unit_files::read(&self.inner.paths, &file)?)
    }

    /// Commits a unit's text and applies it.
    pub async fn unit_commit(
        &self,
        name: &str,
        text: &str,
        message: Option<&str>,
    ) -> Result<UnitCommitReply, EngineError> {
        let (text, message) = (text.to_string(), message.map(str::to_string));
        self.file_commit(name, UnitCommit::NAME, move |paths, file| {
            unit_files::commit(paths, file, &text, message.as_deref())
        })
        .await
    }

    /// Removes a unit in a commit and applies it (the service stops).
    pub async fn unit_delete(
        &self,
        name: &str,
        message: Option<&str>,
    ) -> Result<UnitCommitReply, EngineError> {
        let message = message.map(str::to_string);
        self.file_commit(name, UnitDelete::NAME, move |paths, file| {
            unit_files::delete(paths, file, message.as_deref()).map(|(c, m)| (Some(c), m))
        })
        .await
    }

    /// Runs `work` (a commit of the unit file, or none) under the sync lock, then applies what
    /// it committed, as `enable` does.
    async fn file_commit(
        &self,
        name: &str,
        op: &'static str,
        work: impl FnOnce(&crate::paths::Paths, &str) -> Result<(Option<String>, String), EditError>
            + Send
            + 'static,
    ) -> Result<UnitCommitReply, EngineError> {
        let file = unit_files::file_of(name)?;
        let (paths, f) = (self.inner.paths.clone(), file.clone());
        let (commit, message) =
            self.inner.locks.with_lock(SYNC_KEY, op, async move { work(&paths, &f) }).await??;
        let sync = match &commit {
            Some(_) => Some(self.sync().await?),
            None => None,
        };
        Ok(UnitCommitReply { file, commit, message, sync })
    }
}
