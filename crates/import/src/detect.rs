//! Which kind of source a file is: by its name first (`Procfile`, `Procfile.dev`,
//! `process-compose.yaml`, `ecosystem.config.js`, `*.service`), then by its content.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Procfile,
    Compose,
    Pm2,
    Systemd,
}

pub fn detect(path: &Path, text: &str) -> Option<Kind> {
    let name = path.file_name()?.to_string_lossy().to_string();
    let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default();
    if name == "Procfile" || name.starts_with("Procfile.") {
        return Some(Kind::Procfile);
    }
    if name.starts_with("process-compose") && matches!(ext.as_str(), "yaml" | "yml") {
        return Some(Kind::Compose);
    }
    if name.starts_with("ecosystem") && matches!(ext.as_str(), "json" | "js" | "cjs") {
        return Some(Kind::Pm2);
    }
    match ext.as_str() {
        "service" | "timer" => return Some(Kind::Systemd),
        "yaml" | "yml" if text.lines().any(|l| l.trim_end() == "processes:") => return Some(Kind::Compose),
        "json" | "js" | "cjs" if text.contains("apps") => return Some(Kind::Pm2),
        _ => {}
    }
    let lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if !lines.is_empty() && lines.iter().all(|l| crate::procfile::parse_line(l).is_some()) {
        return Some(Kind::Procfile);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_then_by_content() {
        let d = |p: &str, t: &str| detect(Path::new(p), t);
        assert_eq!(d("/a/Procfile.dev", ""), Some(Kind::Procfile));
        assert_eq!(d("/a/process-compose.yml", ""), Some(Kind::Compose));
        assert_eq!(d("/a/ecosystem.config.cjs", ""), Some(Kind::Pm2));
        assert_eq!(d("/a/web.service", ""), Some(Kind::Systemd));
        assert_eq!(d("/a/dev.yaml", "version: \"0.5\"\nprocesses:\n  a:\n"), Some(Kind::Compose));
        assert_eq!(d("/a/pm2.json", "{\"apps\": []}"), Some(Kind::Pm2));
        assert_eq!(d("/a/procs", "# dev\nweb: node web.js\n"), Some(Kind::Procfile));
        assert_eq!(d("/a/notes.txt", "hello world\n"), None);
    }
}
