//! The service environment for `env.txt`, with secret-looking values hidden.

/// Parts of a variable name that mark its value as a secret (case-insensitive).
const SECRET_MARKS: &[&str] =
    &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE"];

pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKS.iter().any(|m| upper.contains(m))
}

/// `NAME=value` lines, secret values replaced by `<redacted>`.
pub fn env_text(env: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in env {
        let v = if is_secret(k) { "<redacted>" } else { v.as_str() };
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_names_are_redacted_case_insensitively() {
        let env: Vec<(String, String)> = [
            ("API_TOKEN", "t0k3n"),
            ("db_password", "hunter2"),
            ("AwsSecretAccessKey", "x"),
            ("SESSION_COOKIE", "c"),
            ("HOME", "/home/u"),
            ("GREETING", "hello"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let text = env_text(&env);
        assert!(!text.contains("t0k3n") && !text.contains("hunter2") && !text.contains("=c\n"));
        assert!(text.contains("API_TOKEN=<redacted>\n"));
        assert!(text.contains("HOME=/home/u\n") && text.contains("GREETING=hello\n"));
    }
}
