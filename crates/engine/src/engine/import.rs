//! `import`: other tools' process files turned into unit files (`gitvisor_import` reads and
//! translates them) and committed in one commit, applied at once like any commit. All or
//! nothing: a source that cannot be read, a unit that does not validate or a name that is
//! already a unit refuses the whole import, with nothing written.

use std::path::{Path, PathBuf};

use gitvisor_import::{ImportError, Options, Plan};
use gitvisor_protocol::{Import, ImportNote, ImportReply, ImportedUnit, Method};

use super::sync::SYNC_KEY;
use super::{Engine, EngineError};
use crate::git::{GitError, ServicesRepo};

impl Engine {
    pub async fn import(&self, req: Import) -> Result<ImportReply, EngineError> {
        let paths: Vec<PathBuf> = req.paths.iter().map(PathBuf::from).collect();
        if let Some(p) = paths.iter().find(|p| !p.is_absolute()) {
            return Err(EngineError::InvalidParams(format!("{}: import takes absolute paths", p.display())));
        }
        let options = Options { prefix: req.prefix.clone().filter(|p| !p.is_empty()) };
        // Reading may run node for a .js ecosystem file: off the async threads.
        let plan = tokio::task::spawn_blocking(move || {
            gitvisor_import::read(&paths, &options, &crate::units::specifier_context())
        })
        .await
        .map_err(|e| EngineError::io("import", std::io::Error::other(e.to_string())))??;
        let mut reply = reply_of(&plan);
        if req.dry_run {
            let repo = ServicesRepo::open(&self.inner.paths.services)?;
            refuse_clashes(&repo, &plan)?;
            return Ok(reply);
        }
        let me = self.clone();
        let commit = self
            .inner
            .locks
            .with_lock(SYNC_KEY, Import::NAME, async move { me.commit_import(&plan) })
            .await??;
        reply.commit = Some(commit);
        reply.sync = Some(self.sync().await?);
        Ok(reply)
    }

    fn commit_import(&self, plan: &Plan) -> Result<String, EngineError> {
        let repo = ServicesRepo::open(&self.inner.paths.services)?;
        refuse_clashes(&repo, plan)?;
        let files: Vec<(String, Vec<u8>)> =
            plan.units.iter().map(|u| (u.file.clone(), u.text.clone().into_bytes())).collect();
        match repo.commit_files(&files, &plan.summary()) {
            Ok(id) => Ok(id.to_string()),
            Err(e) => {
                // None of these files existed (refuse_clashes): remove what was written.
                for (file, _) in &files {
                    let _ = std::fs::remove_file(repo.path().join(file));
                }
                Err(e.into())
            }
        }
    }
}

/// Refuses an import that would replace a unit: one in the branch's commit, or a file of that
/// name in the services directory (an uncommitted edit).
fn refuse_clashes(repo: &ServicesRepo, plan: &Plan) -> Result<(), EngineError> {
    let head = repo.head().map_err(GitError::Refused)?;
    let committed: Vec<String> = repo.units_at(head.commit)?.into_iter().map(|(f, _)| f).collect();
    let clashes: Vec<&gitvisor_import::PlannedUnit> = plan
        .units
        .iter()
        .filter(|u| committed.contains(&u.file) || repo.path().join(&u.file).exists())
        .collect();
    let Some(first) = clashes.first() else { return Ok(()) };
    let names: Vec<&str> = clashes.iter().map(|u| u.file.as_str()).collect();
    let (are, them) = if names.len() == 1 { ("is", "it") } else { ("are", "them") };
    Err(EngineError::Import(ImportError::at(
        first.source.display().to_string(),
        None,
        format!(
            "{} {are} already in the services repository: nothing was imported (rename {them} in the source, or import with a prefix)",
            names.join(", ")
        ),
    )))
}

fn reply_of(plan: &Plan) -> ImportReply {
    ImportReply {
        units: plan
            .units
            .iter()
            .map(|u| ImportedUnit {
                file: u.file.clone(),
                process: u.process.clone(),
                source: display(&u.source),
                enabled: u.enabled,
                text: u.text.clone(),
            })
            .collect(),
        notes: plan
            .notes
            .iter()
            .map(|n| ImportNote {
                file: n.file.clone(),
                line: n.line,
                key: n.key.clone(),
                message: n.message.clone(),
            })
            .collect(),
        message: plan.summary(),
        commit: None,
        sync: None,
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
