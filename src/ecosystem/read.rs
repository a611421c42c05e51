//! What is already on disk at `DIR/ecosystem.config.cjs`, and whose it is.

use std::path::PathBuf;

use serde_json::Value;

use super::{HEADER_MARK, jslit};
use crate::pm2::port_value;

/// An app as read back from an existing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingApp {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub cwd: Option<PathBuf>,
}

/// Who wrote the existing file, which decides whether pm2-port may replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// pm2-port (its header): regenerated freely.
    Pm2Port,
    /// BuildFlowz's shell scripts (their exact shape): adopted, port kept.
    BuildFlowz,
    /// Anything else: replaced only with `--force`.
    Hand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub text: String,
    pub owner: Owner,
    pub apps: Vec<ExistingApp>,
}

impl Existing {
    /// The port the file gives the app `name`; with `or_only`, the port of the file's only app
    /// whatever its name (a single-app project renamed, or a hand-written file).
    pub fn port_of(&self, name: &str, or_only: bool) -> Option<u16> {
        self.apps
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .or(match self.apps.as_slice() {
                [only] if or_only => Some(only),
                _ => None,
            })
            .and_then(|a| a.port)
    }
}

/// The keys of a BuildFlowz app object.
const BUILDFLOWZ_KEYS: &[&str] = &[
    "name",
    "cwd",
    "script",
    "args",
    "env",
    "autorestart",
    "watch",
];

/// Classify a file's text and read its apps.
pub fn classify(text: String) -> Existing {
    let exports = jslit::module_exports(&text);
    let apps: Vec<&Value> = exports
        .as_ref()
        .and_then(|v| v.get("apps"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let owner = if text.starts_with(HEADER_MARK) {
        Owner::Pm2Port
    } else if !apps.is_empty() && apps.iter().all(|a| is_buildflowz_app(a)) {
        Owner::BuildFlowz
    } else {
        Owner::Hand
    };
    let mut read: Vec<ExistingApp> = apps
        .iter()
        .map(|a| ExistingApp {
            name: a.get("name").and_then(Value::as_str).map(str::to_string),
            cwd: a.get("cwd").and_then(Value::as_str).map(PathBuf::from),
            port: a
                .get("env")
                .and_then(|e| e.get("PORT"))
                .and_then(port_value),
        })
        .collect();
    if exports.is_none() {
        // Code we do not evaluate: take the first `PORT: N` / `PORT=N` it mentions, for the message.
        read.push(ExistingApp {
            name: None,
            cwd: None,
            port: scan_port(&text),
        });
    }
    Existing {
        text,
        owner,
        apps: read,
    }
}

fn is_buildflowz_app(app: &Value) -> bool {
    let Some(obj) = app.as_object() else {
        return false;
    };
    let args_ok = obj
        .get("args")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() == 2 && a[0] == "-c" && a[1].is_string());
    obj.keys().all(|k| BUILDFLOWZ_KEYS.contains(&k.as_str()))
        && obj.get("script").and_then(Value::as_str) == Some("bash")
        && args_ok
        && obj
            .get("env")
            .and_then(|e| e.get("PORT"))
            .and_then(port_value)
            .is_some()
}

fn scan_port(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("PORT") {
        let mut i = from + at + 4;
        from = i;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'"' | b'\'') {
            i += 1;
        }
        if i >= bytes.len() || !matches!(bytes[i], b':' | b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'"' | b'\'') {
            i += 1;
        }
        let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = digits.parse::<u16>()
            && port > 0
        {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ecosystem::BUILDFLOWZ_EXAMPLE as BUILDFLOWZ;

    #[test]
    fn buildflowz_is_adopted() {
        let e = classify(BUILDFLOWZ.to_string());
        assert_eq!(e.owner, Owner::BuildFlowz);
        assert_eq!(e.port_of("shop", false), Some(3003));
        assert_eq!(e.port_of("other", true), Some(3003));
        assert_eq!(e.port_of("other", false), None);
    }

    #[test]
    fn hand_written() {
        let e = classify(BUILDFLOWZ.replace("watch: false", "watch: true, instances: 2"));
        assert_eq!(e.owner, Owner::Hand);
        assert_eq!(e.port_of("shop", true), Some(3003));
        let e = classify("const port = 4100;\nmodule.exports = { apps: [{ name: 'x', env: { PORT: port } }] };\n// PORT=4100\n".into());
        assert_eq!(e.owner, Owner::Hand);
        assert_eq!(e.port_of("x", true), Some(4100));
    }
}
