//! The set of units the engine runs: loaded from the services directory, with templates kept for
//! instances, every invalid file reported with its diagnostics, and the dependency plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitvisor_graph::{plan, Node, Plan};
use gitvisor_units::{
    load_instance, load_timer, load_unit, Severity, SpecifierContext, Timer, Unit, UnitName,
};

/// Why a name gives no unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstantiateError {
    #[error("no unit named {0}")]
    NoUnit(String),
    /// The name cannot be a unit's (the message quotes it).
    #[error("{0}")]
    BadName(String),
    /// The template's file has errors for this instance: `file:line: message` each.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Default)]
pub struct UnitSet {
    pub units: BTreeMap<String, Arc<Unit>>,
    /// Template files by prefix (`web@`): file name and bytes.
    pub templates: BTreeMap<String, (String, Vec<u8>)>,
    /// `file:line: message` of every file that could not be loaded.
    pub invalid: Vec<String>,
    pub warnings: Vec<String>,
    /// Instances named by a template's `DefaultInstance=`: enabled.
    pub default_instances: std::collections::BTreeSet<String>,
    /// Units (or template prefixes like `web@`) whose file has errors, with the errors.
    pub invalid_units: BTreeMap<String, String>,
    /// Timer units (`NAME.timer`) by name without the suffix.
    pub timers: BTreeMap<String, Arc<Timer>>,
}

/// A unit file's text loaded as `t.service`, for tests of what reads units.
#[cfg(test)]
pub fn test_unit(text: &str) -> Unit {
    load_unit("t.service", text.as_bytes(), &specifier_context()).expect("a valid unit").unit
}

/// [`test_unit`] of `[Service] ExecStart=/bin/true` and `extra` lines.
#[cfg(test)]
pub fn test_service(extra: &str) -> Unit {
    test_unit(&format!("[Service]\nExecStart=/bin/true\n{extra}\n"))
}

pub fn specifier_context() -> SpecifierContext {
    let uid = nix::unistd::Uid::current();
    let user = nix::unistd::User::from_uid(uid).ok().flatten();
    SpecifierContext {
        home: user.as_ref().map(|u| u.dir.clone()).or_else(dirs::home_dir).unwrap_or_else(|| "/".into()),
        user: user.map(|u| u.name).unwrap_or_else(|| uid.to_string()),
        uid: uid.as_raw(),
        runtime_dir: dirs::runtime_dir().unwrap_or_else(|| format!("/run/user/{uid}").into()),
    }
}

impl UnitSet {
    /// Loads unit files given as (file name, bytes): the `*.service` and `*.timer` blobs of a
    /// commit.
    pub fn load_files(files: Vec<(String, Vec<u8>)>, ctx: &SpecifierContext) -> UnitSet {
        let mut set = UnitSet::default();
        for (name, bytes) in files {
            set.add_file(&name, bytes, ctx);
        }
        set
    }

    fn add_file(&mut self, file: &str, bytes: Vec<u8>, ctx: &SpecifierContext) {
        if file.ends_with(gitvisor_units::name::TIMER_SUFFIX) {
            match load_timer(file, &bytes, ctx) {
                Ok(loaded) => {
                    self.warnings.extend(loaded.warnings.iter().map(ToString::to_string));
                    self.timers.insert(loaded.timer.name.as_str().to_string(), Arc::new(loaded.timer));
                }
                Err(diags) => self.report(file, diags),
            }
            return;
        }
        let name = match UnitName::from_file_name(file) {
            Ok(n) => n,
            Err(e) => {
                self.invalid.push(format!("{file}: {e}"));
                return;
            }
        };
        if name.is_template() {
            // Validate the template once with a placeholder instance, so its errors show early.
            let default_instance = match load_instance(file, &bytes, "instance", ctx) {
                Ok(loaded) => loaded.unit.default_instance,
                Err(diags) => {
                    self.report(name.as_str(), diags);
                    return;
                }
            };
            let prefix = name.as_str().to_string();
            self.templates.insert(prefix.clone(), (file.to_string(), bytes));
            if let Some(inst) = default_instance {
                let name = format!("{prefix}{inst}");
                match self.instantiate(&name, ctx) {
                    Ok(_) => {
                        self.default_instances.insert(name);
                    }
                    Err(e) => self.invalid.push(format!("{file}: DefaultInstance={inst}: {e}")),
                }
            }
            return;
        }
        match load_unit(file, &bytes, ctx) {
            Ok(loaded) => {
                self.warnings.extend(loaded.warnings.iter().map(ToString::to_string));
                self.units.insert(name.as_str().to_string(), Arc::new(loaded.unit));
            }
            Err(diags) => self.report(name.as_str(), diags),
        }
    }

    fn report(&mut self, name: &str, diags: Vec<gitvisor_units::Diagnostic>) {
        let mut errors = Vec::new();
        for d in diags {
            match d.severity {
                Severity::Error => errors.push(d.to_string()),
                Severity::Warning => self.warnings.push(d.to_string()),
            }
        }
        self.invalid.extend(errors.iter().cloned());
        self.invalid_units.insert(name.to_string(), errors.join("; "));
    }

    /// Makes `web@8080` from the template `web@.service` if there is one.
    pub fn instantiate(&mut self, name: &str, ctx: &SpecifierContext) -> Result<Arc<Unit>, InstantiateError> {
        if let Some(u) = self.units.get(name) {
            return Ok(u.clone());
        }
        let parsed = UnitName::parse(name).map_err(|e| InstantiateError::BadName(e.to_string()))?;
        let no_unit = || InstantiateError::NoUnit(name.to_string());
        let (Some(template), Some(instance)) = (parsed.template(), parsed.instance()) else {
            return Err(no_unit());
        };
        let (file, bytes) = self.templates.get(template.as_str()).ok_or_else(no_unit)?;
        let loaded = load_instance(file, bytes, instance, ctx).map_err(|d| {
            InstantiateError::Invalid(d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        let unit = Arc::new(loaded.unit);
        self.units.insert(name.to_string(), unit.clone());
        Ok(unit)
    }

    /// Started with the engine: `[Install] WantedBy=`, or a template's default instance.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.default_instances.contains(name) || self.units.get(name).is_some_and(|u| u.enabled())
    }

    pub fn plan(&self) -> Plan {
        let nodes: Vec<Node> = self.units.iter().map(|(name, u)| node_of(name, u)).collect();
        plan(&nodes)
    }
}

/// A unit as the dependency graph sees it: `BindsTo=` pulls in and orders as `Requires=` does.
pub fn node_of(name: &str, u: &Unit) -> Node {
    let mut requires = u.requires.clone();
    requires.extend(u.binds_to.iter().filter(|b| !u.requires.contains(b)).cloned());
    Node {
        name: name.to_string(),
        requires,
        wants: u.wants.clone(),
        after: u.after.clone(),
        before: u.before.clone(),
        part_of: u.part_of.clone(),
        requisite: u.requisite.clone(),
    }
}
