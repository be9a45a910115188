//! What a crash report operation (list, show, export, remove, capture) can fail with.

#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    #[error("{0:?} is not a crash report id (crash-NAME-YYYYMMDDTHHMMSSZ-ID)")]
    NotAnId(String),
    #[error("no crash report {0}")]
    NoReport(String),
    #[error("{prefix:?} names {count} crash reports: give more of the id")]
    Ambiguous { prefix: String, count: usize },
    #[error("there are no crash reports")]
    NoneYet,
    /// A report's path would leave the reports directory (never expected of a parsed id).
    #[error("{0}")]
    Path(String),
    #[error("{id}: {message}")]
    Read { id: String, message: String },
    #[error("export target {0} must be an absolute path")]
    RelativeTarget(String),
    #[error("cannot {action} {path}: {source}")]
    Write { action: &'static str, path: String, source: std::io::Error },
    #[error("{0}")]
    Capture(String),
    /// The service has no capture (docs/crash-reports.md, Captures).
    #[error("cannot capture {service}: {why}")]
    CaptureOff { service: String, why: super::workdir::CaptureOff },
}
