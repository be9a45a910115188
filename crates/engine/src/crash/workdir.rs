//! What a service's captures walk (SPEC 6; docs/crash-reports.md, Captures): its working
//! directory, unless `[Capture] Enabled=no`; without a `WorkingDirectory=`, its home directory,
//! and only with `[Capture] Enabled=yes` (a whole home is rarely what anyone wants walked). A
//! service that has neither has no capture: no baseline, no `workdir/` in its reports, and a
//! manual capture is refused with the reason.

use std::fmt;
use std::path::PathBuf;

use gitvisor_capture::Limits;
use gitvisor_units::Unit;

/// Why a service has no capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOff {
    /// `[Capture] Enabled=no`.
    Disabled,
    /// No `WorkingDirectory=`, and capture not asked for.
    NoWorkingDirectory,
}

impl fmt::Display for CaptureOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaptureOff::Disabled => "its unit turns capture off ([Capture] Enabled=no)",
            CaptureOff::NoWorkingDirectory => {
                "it has no WorkingDirectory= (capturing would walk the whole home directory; \
                 [Capture] Enabled=yes allows that)"
            }
        })
    }
}

/// Why the service has no capture; `None` when it has one.
pub fn capture_off(unit: &Unit) -> Option<CaptureOff> {
    match (unit.capture.enabled, &unit.working_directory) {
        (Some(false), _) => Some(CaptureOff::Disabled),
        (None, None) => Some(CaptureOff::NoWorkingDirectory),
        (Some(true), _) | (None, Some(_)) => None,
    }
}

/// The directory a capture of the service walks.
pub fn root(unit: &Unit) -> PathBuf {
    unit.working_directory.clone().or_else(dirs::home_dir).unwrap_or_else(|| PathBuf::from("/"))
}

pub fn limits(unit: &Unit) -> Limits {
    Limits {
        max_file_size: unit.capture.max_file_size,
        max_total_size: unit.capture.max_total_size,
        exclude: unit.capture.exclude.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(working_directory: Option<&str>, enabled: Option<bool>) -> Unit {
        let name = gitvisor_units::UnitName::parse("web.service").unwrap();
        let mut u = Unit::new(name, gitvisor_units::ExecCommand::default());
        u.working_directory = working_directory.map(PathBuf::from);
        u.capture.enabled = enabled;
        u
    }

    #[test]
    fn capture_needs_a_working_directory_or_being_asked_for() {
        assert_eq!(capture_off(&unit(Some("/srv/app"), None)), None);
        assert_eq!(capture_off(&unit(None, None)), Some(CaptureOff::NoWorkingDirectory));
        assert_eq!(capture_off(&unit(None, Some(true))), None, "Enabled=yes: its home");
        assert_eq!(capture_off(&unit(Some("/srv/app"), Some(false))), Some(CaptureOff::Disabled));
        assert_eq!(capture_off(&unit(None, Some(false))), Some(CaptureOff::Disabled));
    }
}
