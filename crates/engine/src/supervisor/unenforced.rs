//! What a unit asks for that this engine does not do, here or yet. Each is said plainly in
//! status, the tray and the window (`ServiceStatus::unenforced`), never ignored in silence: a
//! user who wrote `MemoryMax=1G` must not believe the service is held to it.

use gitvisor_units::Unit;

/// One sentence per key the unit sets and the engine does not enforce, naming the key.
/// `limits`: whether resource limits can be enforced here (asked only of a unit that sets one):
/// `Err` says why not; `pid_namespaces`: the same for `PrivatePIDs=`.
pub fn unenforced(
    unit: &Unit,
    limits: impl FnOnce() -> Result<(), String>,
    pid_namespaces: impl FnOnce() -> Result<(), String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if super::cgroup::has_limits(unit) {
        if let Err(why) = limits() {
            let keys = [
                ("MemoryMax=", unit.memory_max.is_some()),
                ("CPUQuota=", unit.cpu_quota.is_some()),
                ("TasksMax=", unit.tasks_max.is_some()),
            ];
            for (key, _) in keys.iter().filter(|(_, set)| *set) {
                out.push(format!("{key} is not enforced: {why}; the service runs without it"));
            }
        }
    }
    if unit.private_pids {
        if let Err(why) = pid_namespaces() {
            out.push(format!(
                "PrivatePIDs= is not enforced: {why}; the service runs in the engine's PID namespace"
            ));
        }
    }
    if unit.health.url.as_deref().is_some_and(|u| !u.starts_with("http://")) {
        out.push("HealthCheckURL= is not probed: only http:// URLs are (the engine has no TLS)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::units::test_unit as unit;

    #[test]
    fn every_key_the_engine_does_not_enforce_is_named() {
        let u = unit(
            "[Service]\nExecStart=/bin/true\nMemoryMax=1G\nCPUQuota=20%\nTasksMax=10\nPrivatePIDs=yes\n\
             HealthCheckURL=https://127.0.0.1/health\n",
        );
        let no_pidns = || Err("this engine cannot make PID namespaces".to_string());
        let said = unenforced(&u, || Err("no usable cgroup: none mounted".into()), no_pidns);
        let keys: Vec<&str> = said.iter().map(|s| s.split(' ').next().unwrap()).collect();
        assert_eq!(keys, ["MemoryMax=", "CPUQuota=", "TasksMax=", "PrivatePIDs=", "HealthCheckURL="]);
        assert_eq!(
            said[0],
            "MemoryMax= is not enforced: no usable cgroup: none mounted; the service runs without it"
        );
        // Where cgroups can be used, the limits are enforced: not listed.
        let keys: Vec<String> =
            unenforced(&u, || Ok(()), no_pidns).into_iter().map(|s| s[..12].to_string()).collect();
        assert_eq!(keys, ["PrivatePIDs=", "HealthCheckU"]);
        assert_eq!(
            unenforced(&u, || Ok(()), no_pidns)[0],
            "PrivatePIDs= is not enforced: this engine cannot make PID namespaces; the service runs in the engine's PID namespace"
        );
        // Where PID namespaces can be made, PrivatePIDs= is enforced.
        assert_eq!(unenforced(&u, || Ok(()), || Ok(())).len(), 1);
        // A unit without limits never asks.
        let plain = unit("[Service]\nExecStart=/bin/true\nHealthCheckURL=http://127.0.0.1/health\n");
        assert!(unenforced(&plain, || panic!("asked without limits"), || panic!("asked")).is_empty());
    }
}
