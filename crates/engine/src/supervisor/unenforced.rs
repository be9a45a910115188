//! What a unit asks for that this engine does not do yet. Each is said plainly in status, the
//! tray and the window (`ServiceStatus::unenforced`), never ignored in silence: a user who wrote
//! `MemoryMax=1G` must not believe the service is held to it.

use gitvisor_units::Unit;

/// One sentence per key the unit sets and the engine does not enforce, naming the key.
pub fn unenforced(unit: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    let limits =
        "resource limits need cgroups, which this version does not use yet; the service runs without it";
    if unit.memory_max.is_some() {
        out.push(format!("MemoryMax= is not enforced: {limits}"));
    }
    if unit.cpu_quota.is_some() {
        out.push(format!("CPUQuota= is not enforced: {limits}"));
    }
    if unit.tasks_max.is_some() {
        out.push(format!("TasksMax= is not enforced: {limits}"));
    }
    if unit.private_pids {
        out.push("PrivatePIDs= is not enforced: the service runs in the engine's PID namespace".into());
    }
    if unit.health.url.as_deref().is_some_and(|u| !u.starts_with("http://")) {
        out.push("HealthCheckURL= is not probed: only http:// URLs are (the engine has no TLS)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Unit {
        let ctx = crate::units::specifier_context();
        gitvisor_units::load_unit("t.service", text.as_bytes(), &ctx).expect("a valid unit").unit
    }

    #[test]
    fn every_key_the_engine_does_not_enforce_is_named() {
        let u = unit(
            "[Service]\nExecStart=/bin/true\nMemoryMax=1G\nCPUQuota=20%\nTasksMax=10\nPrivatePIDs=yes\n\
             HealthCheckURL=https://127.0.0.1/health\n",
        );
        let said = unenforced(&u);
        let keys: Vec<&str> = said.iter().map(|s| s.split(' ').next().unwrap()).collect();
        assert_eq!(keys, ["MemoryMax=", "CPUQuota=", "TasksMax=", "PrivatePIDs=", "HealthCheckURL="]);
        let plain = unit("[Service]\nExecStart=/bin/true\nHealthCheckURL=http://127.0.0.1/health\n");
        assert!(unenforced(&plain).is_empty(), "{:?}", unenforced(&plain));
    }
}
