//! `%` specifiers: arbitrary templates expanded for arbitrary unit names (when they are names)
//! and contexts. Never panics; `%%` round-trips; expansion is per specifier.
#![no_main]

use std::path::PathBuf;

use arbitrary::Arbitrary;
use gitvisor_units::specifiers::expand;
use gitvisor_units::{name, SpecifierContext, UnitName};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    value: String,
    /// A unit name, a template's instance name, or neither.
    name: String,
    instance: String,
    home: String,
    user: String,
    uid: u32,
    runtime_dir: String,
}

fuzz_target!(|input: Input| {
    let ctx = SpecifierContext {
        home: PathBuf::from(&input.home),
        user: input.user.clone(),
        uid: input.uid,
        runtime_dir: PathBuf::from(&input.runtime_dir),
    };
    let mut names: Vec<UnitName> = UnitName::parse(&input.name).into_iter().collect();
    if let Some(template) = names.first().filter(|n| n.is_template()) {
        names.extend(template.instantiate(&input.instance));
    }
    // Instances with every character a name may have, so %I's unescaping sees them all.
    names.extend(UnitName::parse(&format!("w@{}", input.instance)));
    for name in &names {
        check(&input.value, name, &ctx);
    }
});

fn check(value: &str, unit: &UnitName, ctx: &SpecifierContext) {
    let expanded = expand(value, unit, ctx);
    if !value.contains('%') {
        assert_eq!(expanded.as_deref(), Ok(value), "no specifier, no change");
    }
    // `%%` is a literal `%`: any text with its `%` doubled expands to itself.
    let escaped = value.replace('%', "%%");
    assert_eq!(expand(&escaped, unit, ctx).as_deref(), Ok(value), "{escaped:?}");
    // A text that expands ends on a whole specifier, so expansion goes piece by piece.
    if let Ok(once) = &expanded {
        let twice = expand(&format!("{value}{value}"), unit, ctx);
        assert_eq!(twice, Ok(format!("{once}{once}")), "{value:?} twice");
    }
    let one = |spec: &str| expand(spec, unit, ctx).unwrap_or_else(|e| panic!("{spec}: {e}"));
    assert_eq!(one("%n"), format!("{}.service", unit.as_str()));
    assert_eq!(one("%N"), unit.as_str());
    assert_eq!(one("%p"), unit.prefix());
    assert_eq!(one("%i"), unit.instance().unwrap_or(""));
    assert_eq!(one("%I"), name::unescape(unit.instance().unwrap_or("")));
    assert_eq!(one("%h"), ctx.home.to_string_lossy());
    assert_eq!(one("%u"), ctx.user);
    assert_eq!(one("%U"), ctx.uid.to_string());
    assert_eq!(one("%t"), ctx.runtime_dir.to_string_lossy());
    assert!(expand("%", unit, ctx).is_err(), "a lone % is an error");
}
