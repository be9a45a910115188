//! Report file names: `crash-NAME-YYYYMMDDTHHMMSSZ-ID.tar.gz` (and `capture-…` for manual
//! captures). Ids given by users are checked against this form before any path is built.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportName {
    pub kind: &'static str,
    pub service: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub stamp: String,
    pub nonce: String,
}

impl ReportName {
    pub fn new(kind: &'static str, service: &str, at: SystemTime) -> ReportName {
        let stamp = stamp(at);
        let nanos = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let nonce = format!("{:06x}", (nanos ^ (std::process::id() << 8)) & 0xff_ffff);
        ReportName { kind, service: service.to_string(), stamp, nonce }
    }

    /// The id users see and type: the file name without `.tar.gz`.
    pub fn id(&self) -> String {
        format!("{}-{}-{}-{}", self.kind, self.service, self.stamp, self.nonce)
    }

    pub fn file_name(&self) -> String {
        format!("{}.tar.gz", self.id())
    }

    /// Parses an id (or a file name); `None` for anything not of our making.
    pub fn parse(id: &str) -> Option<ReportName> {
        let id = id.strip_suffix(".tar.gz").unwrap_or(id);
        let (kind, rest) = if let Some(r) = id.strip_prefix("crash-") {
            ("crash", r)
        } else if let Some(r) = id.strip_prefix("capture-") {
            ("capture", r)
        } else {
            return None;
        };
        let (rest, nonce) = rest.rsplit_once('-')?;
        let (service, stamp) = rest.rsplit_once('-')?;
        let stamp_ok = stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && stamp[..8].bytes().all(|b| b.is_ascii_digit())
            && stamp[9..15].bytes().all(|b| b.is_ascii_digit());
        let nonce_ok = !nonce.is_empty() && nonce.len() <= 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        let service_ok = !service.is_empty()
            && service.len() <= 128
            && service.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
            && service != "."
            && service != "..";
        (stamp_ok && nonce_ok && service_ok).then(|| ReportName {
            kind,
            service: service.to_string(),
            stamp: stamp.to_string(),
            nonce: nonce.to_string(),
        })
    }

    /// The report's path in `dir`, for a valid name only.
    pub fn path_in(&self, dir: &Path) -> Result<PathBuf, String> {
        gitvisor_state::join_inside(dir, &self.file_name()).map_err(|e| e.to_string())
    }
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn stamp(at: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(at).to_string();
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let n = ReportName::new("crash", "web@8080", at);
        assert!(n.id().starts_with("crash-web@8080-20261118T110640Z-"), "{}", n.id());
        assert_eq!(ReportName::parse(&n.id()), Some(n.clone()));
        assert_eq!(ReportName::parse(&n.file_name()), Some(n));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "crash-",
            "crash-web-20261018T010101Z",
            "crash-../x-20261018T010101Z-abc",
            "crash-a/b-20261018T010101Z-abc",
            "crash-web-2026101XT010101Z-abc",
            "crash-web-20261018T010101Z-xyz",
            "report-web-20261018T010101Z-abc",
            "/etc/passwd",
        ] {
            assert_eq!(ReportName::parse(bad), None, "{bad}");
        }
    }
}
