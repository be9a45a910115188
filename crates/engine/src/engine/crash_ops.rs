//! Crash reports as the CLI and the window see them: list, show, export, remove; manual
//! captures. Ids are validated before any path is built; nothing outside the reports directory
//! is read or removed.

use std::io::Read;
use std::path::Path;

use gitvisor_protocol::{ArchiveFile, CaptureReply, CrashListReply, CrashShowReply, CrashSummary};

use gitvisor_protocol::ServiceName;

use super::{Engine, EngineError};
use crate::crash::names::ReportName;
use crate::crash::{retention, CrashError};

fn read_error(id: &str, e: impl std::fmt::Display) -> CrashError {
    CrashError::Read { id: id.to_string(), message: e.to_string() }
}

/// Asking for the newest crash report.
const LATEST: &str = "latest";

impl Engine {
    /// The report a user means by `id`: its id (with or without `.tar.gz`), a unique prefix
    /// of one, or `latest` (the newest crash report).
    fn resolve_report(&self, id: &str) -> Result<ReportName, CrashError> {
        let id = id.strip_suffix(".tar.gz").unwrap_or(id);
        let all = retention::list(&self.inner.paths.crash_reports);
        if id == LATEST {
            return all
                .into_iter()
                .rev()
                .map(|r| r.name)
                .find(|n| n.kind == "crash")
                .ok_or(CrashError::NoneYet);
        }
        if let Some(name) = ReportName::parse(id) {
            return Ok(name);
        }
        if id.is_empty() {
            return Err(CrashError::NotAnId(id.to_string()));
        }
        let mut matches: Vec<ReportName> =
            all.into_iter().map(|r| r.name).filter(|n| n.id().starts_with(id)).collect();
        match matches.len() {
            0 if id.contains('/') || id.contains("..") => Err(CrashError::NotAnId(id.to_string())),
            0 => Err(CrashError::NoReport(id.to_string())),
            1 => Ok(matches.remove(0)),
            n => Err(CrashError::Ambiguous { prefix: id.to_string(), count: n }),
        }
    }

    /// The report's path and its full id.
    fn report_path(&self, id: &str) -> Result<(std::path::PathBuf, String), CrashError> {
        let name = self.resolve_report(id)?;
        let path = name.path_in(&self.inner.paths.crash_reports).map_err(CrashError::Path)?;
        if !path.is_file() {
            return Err(CrashError::NoReport(name.id()));
        }
        Ok((path, name.id()))
    }

    /// Reports, newest first; only `service`'s when given.
    pub fn crash_list(&self, service: Option<&ServiceName>) -> Result<CrashListReply, EngineError> {
        let reports = retention::list(&self.inner.paths.crash_reports)
            .into_iter()
            .rev()
            .filter(|r| service.is_none_or(|s| r.name.service == s.as_str()))
            .map(|r| {
                let path = r.name.path_in(&self.inner.paths.crash_reports).ok();
                let report = path.as_deref().and_then(|p| read_report_json(p).ok());
                let reason = report
                    .as_ref()
                    .and_then(|v| v.get("reason").and_then(|x| x.as_str()).map(str::to_string))
                    .unwrap_or_else(|| "(unreadable report.json)".into());
                CrashSummary {
                    id: r.name.id(),
                    kind: r.name.kind.to_string(),
                    service: r.name.service.clone(),
                    time: stamp_to_rfc3339(&r.name.stamp),
                    reason,
                    size: r.size,
                }
            })
            .collect();
        Ok(CrashListReply { reports })
    }

    pub fn crash_show(&self, id: &str) -> Result<CrashShowReply, EngineError> {
        let (path, id) = self.report_path(id)?;
        let id = id.as_str();
        let file = std::fs::File::open(&path).map_err(|e| read_error(id, e))?;
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut report = serde_json::Value::Null;
        let mut files = Vec::new();
        let entries = ar.entries().map_err(|e| read_error(id, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| read_error(id, format!("damaged archive: {e}")))?;
            let p = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let size = entry.header().size().unwrap_or(0);
            if p == "report.json" {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(|e| read_error(id, e))?;
                report = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            }
            if entry.header().entry_type().is_file() {
                files.push(ArchiveFile { path: p, size });
            }
        }
        Ok(CrashShowReply { id: id.to_string(), report, files })
    }

    /// Copies a report to `dest` (an absolute path that does not exist yet).
    pub fn crash_export(&self, id: &str, dest: &str) -> Result<String, EngineError> {
        let (path, id) = self.report_path(id)?;
        let id = id.as_str();
        let dest = Path::new(dest);
        if !dest.is_absolute() {
            return Err(CrashError::RelativeTarget(dest.display().to_string()).into());
        }
        let dest =
            if dest.is_dir() { dest.join(path.file_name().unwrap_or_default()) } else { dest.to_path_buf() };
        let mut out =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&dest).map_err(|source| {
                CrashError::Write { action: "create", path: dest.display().to_string(), source }
            })?;
        let mut input = std::fs::File::open(&path).map_err(|e| read_error(id, e))?;
        if let Err(source) = std::io::copy(&mut input, &mut out).and_then(|_| out.sync_all()) {
            let _ = std::fs::remove_file(&dest);
            return Err(
                CrashError::Write { action: "write", path: dest.display().to_string(), source }.into()
            );
        }
        Ok(dest.display().to_string())
    }

    pub fn crash_rm(&self, id: Option<&str>, all: bool) -> Result<Vec<String>, EngineError> {
        let ids: Vec<String> = match (id, all) {
            (_, true) => {
                retention::list(&self.inner.paths.crash_reports).into_iter().map(|r| r.name.id()).collect()
            }
            (Some(id), false) => vec![self.report_path(id)?.1],
            (None, false) => return Err(EngineError::InvalidParams("name a report id, or --all".into())),
        };
        let mut removed = Vec::new();
        for id in ids {
            let (path, id) = self.report_path(&id)?;
            std::fs::remove_file(&path).map_err(|e| read_error(&id, e))?;
            removed.push(id);
        }
        Ok(removed)
    }

    pub async fn capture(&self, name: &ServiceName) -> Result<CaptureReply, EngineError> {
        self.check_known(std::slice::from_ref(name))?;
        let reporter = self.inner.crash.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let reporter = reporter.ok_or(EngineError::Stopping)?;
        let id = reporter.capture_now(name.as_str()).await?;
        let (path, id) = self.report_path(&id)?;
        Ok(CaptureReply { id, path: path.display().to_string() })
    }
}

/// report.json, the archive's first entry.
pub fn read_report_json(path: &Path) -> std::io::Result<serde_json::Value> {
    let file = std::fs::File::open(path)?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in ar.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == "report.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return serde_json::from_str(&text).map_err(std::io::Error::other);
        }
    }
    Err(std::io::Error::other("no report.json"))
}

fn stamp_to_rfc3339(s: &str) -> String {
    if s.len() != 16 {
        return s.to_string();
    }
    format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15])
}
