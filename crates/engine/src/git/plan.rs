//! The sync plan, a pure function: what to do to go from the units that run to those of a new
//! commit. A change of Description (or of comments, which never reach a `Unit`) restarts
//! nothing; an invalid unit in the new commit keeps its last valid version.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitvisor_units::Unit;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    /// Gone from the commit: stop and unregister.
    pub removed: Vec<String>,
    /// Effective configuration changed: the new unit replaces the old (restarting it if active).
    pub changed: Vec<(String, Arc<Unit>)>,
    /// Only the description changed: the new unit is taken without a restart.
    pub relabelled: Vec<(String, Arc<Unit>)>,
    /// New in the commit: register (and start if enabled).
    pub added: Vec<(String, Arc<Unit>)>,
    /// Invalid in the commit while a valid version runs: keep it, with this error.
    pub kept: Vec<(String, String)>,
}

/// Two units run the same way: equal but for their description.
pub fn same_effect(a: &Unit, b: &Unit) -> bool {
    let mut a = a.clone();
    a.description.clone_from(&b.description);
    a == *b
}

/// `current`: what runs now. `next`: the valid units of the new commit (instances included).
/// `invalid`: units (or template prefixes such as `web@`) whose file in the new commit has
/// errors, with the errors.
pub fn plan(
    current: &BTreeMap<String, Arc<Unit>>,
    next: &BTreeMap<String, Arc<Unit>>,
    invalid: &BTreeMap<String, String>,
) -> SyncPlan {
    let mut p = SyncPlan::default();
    let invalid_for = |name: &str| -> Option<&String> {
        invalid
            .get(name)
            .or_else(|| name.split_once('@').and_then(|(pre, _)| invalid.get(&format!("{pre}@"))))
    };
    for (name, old) in current {
        match next.get(name) {
            Some(new) if **new == **old => {}
            Some(new) if same_effect(old, new) => p.relabelled.push((name.clone(), new.clone())),
            Some(new) => p.changed.push((name.clone(), new.clone())),
            None => match invalid_for(name) {
                Some(err) => p.kept.push((name.clone(), err.clone())),
                None => p.removed.push(name.clone()),
            },
        }
    }
    for (name, new) in next {
        if !current.contains_key(name) {
            p.added.push((name.clone(), new.clone()));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitvisor_units::{load_unit, SpecifierContext};

    fn unit(name: &str, text: &str) -> Arc<Unit> {
        let ctx = SpecifierContext {
            home: "/home/u".into(),
            user: "u".into(),
            uid: 1000,
            runtime_dir: "/run/user/1000".into(),
        };
        Arc::new(load_unit(&format!("{name}.service"), text.as_bytes(), &ctx).unwrap().unit)
    }

    fn map(units: &[(&str, &str)]) -> BTreeMap<String, Arc<Unit>> {
        units.iter().map(|(n, t)| (n.to_string(), unit(n, t))).collect()
    }

    #[test]
    fn added_removed_changed_and_unchanged() {
        let cur = map(&[
            ("a", "[Service]\nExecStart=/bin/a\n"),
            ("b", "[Service]\nExecStart=/bin/b\n"),
            ("c", "[Service]\nExecStart=/bin/c\n"),
        ]);
        let next = map(&[
            ("a", "[Service]\nExecStart=/bin/a\n"),
            ("b", "[Service]\nExecStart=/bin/b2\n"),
            ("d", "[Service]\nExecStart=/bin/d\n"),
        ]);
        let p = plan(&cur, &next, &BTreeMap::new());
        assert_eq!(p.removed, vec!["c"]);
        assert_eq!(p.changed.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(p.added.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), vec!["d"]);
        assert!(p.relabelled.is_empty() && p.kept.is_empty());
    }

    #[test]
    fn description_and_comments_restart_nothing() {
        let cur = map(&[("a", "[Unit]\nDescription=old\n[Service]\nExecStart=/bin/a\n")]);
        let next =
            map(&[("a", "# a comment\n[Unit]\nDescription=new\n[Service]\n; another\nExecStart=/bin/a\n")]);
        let p = plan(&cur, &next, &BTreeMap::new());
        assert!(p.changed.is_empty());
        assert_eq!(p.relabelled.len(), 1);
        let next = map(&[("a", "# only a comment\n[Unit]\nDescription=old\n[Service]\nExecStart=/bin/a\n")]);
        assert_eq!(plan(&cur, &next, &BTreeMap::new()), SyncPlan::default());
    }

    #[test]
    fn an_invalid_unit_keeps_its_running_version() {
        let cur = map(&[("a", "[Service]\nExecStart=/bin/a\n"), ("w@1", "[Service]\nExecStart=/bin/w\n")]);
        let invalid: BTreeMap<String, String> = [
            ("a".to_string(), "a.service:2: bad".to_string()),
            ("w@".to_string(), "w@.service:1: bad".to_string()),
        ]
        .into();
        let p = plan(&cur, &BTreeMap::new(), &invalid);
        assert!(p.removed.is_empty());
        assert_eq!(
            p.kept,
            vec![("a".into(), "a.service:2: bad".into()), ("w@1".into(), "w@.service:1: bad".into())]
        );
    }
}
