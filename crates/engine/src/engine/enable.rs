//! Enabling and disabling services: a commit that sets or removes each unit's
//! `[Install] WantedBy=` (`gitvisor_units::install`), applied at once like any commit.

use gitvisor_protocol::{Disable, EnableReply, Method, ServiceName};
use gitvisor_units::install::with_enabled;
use gitvisor_units::UnitName;

use super::sync::SYNC_KEY;
use super::{Engine, EngineError};
use crate::git::{GitError, ServicesRepo};

impl Engine {
    /// Enables (or disables) the units of `names` in one commit; units already so are left
    /// as they are. Refused, with nothing committed, for a name that is no unit of the commit,
    /// an instance or template, or a unit with uncommitted edits (they would be committed
    /// along, or lost).
    pub async fn set_enabled(
        &self,
        names: &[ServiceName],
        enabled: bool,
    ) -> Result<EnableReply, EngineError> {
        let me = self.clone();
        let names = names.to_vec();
        let op = if enabled { gitvisor_protocol::Enable::NAME } else { Disable::NAME };
        let made = self
            .inner
            .locks
            .with_lock(SYNC_KEY, op, async move { me.commit_enabled(&names, enabled) })
            .await??;
        let sync = match &made.commit {
            Some(_) => Some(self.sync().await?),
            None => None,
        };
        Ok(EnableReply { sync, ..made })
    }

    fn commit_enabled(&self, names: &[ServiceName], enabled: bool) -> Result<EnableReply, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        let head = repo.head().map_err(GitError::Refused)?;
        let files = repo.units_at(head.commit)?;
        let pending = repo.pending();
        let mut edits = Vec::new();
        let mut reply = EnableReply { commit: None, changed: Vec::new(), unchanged: Vec::new(), sync: None };
        for name in names {
            let unit =
                UnitName::parse(name.as_str()).map_err(|e| EngineError::InvalidParams(e.to_string()))?;
            if unit.is_template() || unit.instance().is_some() {
                let template = unit.template().map(|t| t.file_name()).unwrap_or_else(|| unit.file_name());
                return Err(EngineError::InvalidParams(format!(
                    "{name} is a template or an instance: set [Install] DefaultInstance= in {template} to enable one instance"
                )));
            }
            let file = unit.file_name();
            let Some((_, text)) = files.iter().find(|(f, _)| *f == file) else {
                return Err(EngineError::UnknownService(name.to_string()));
            };
            if pending.iter().any(|p| p.file == file) {
                return Err(EngineError::InvalidParams(format!(
                    "{file} has uncommitted edits: commit or discard them first"
                )));
            }
            let text = String::from_utf8_lossy(text);
            match with_enabled(&text, enabled) {
                Some(new) => {
                    edits.push((file, new.into_bytes()));
                    reply.changed.push(name.to_string());
                }
                None => reply.unchanged.push(name.to_string()),
            }
        }
        if edits.is_empty() {
            return Ok(reply);
        }
        let verb = if enabled { "Enable" } else { "Disable" };
        let message = format!("{verb} {}", reply.changed.join(", "));
        reply.commit = Some(repo.commit_files(&edits, &message)?.to_string());
        Ok(reply)
    }
}
