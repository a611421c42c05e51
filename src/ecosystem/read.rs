//! What is already on disk at `DIR/ecosystem.config.cjs`, and whose it is.

use std::path::PathBuf;

use serde_json::Value;

use super::{HEADER_MARK, jslit};
use crate::pm2::port_value;

// The file's model lives with the rest of the server's.
pub use crate::model::{Existing, ExistingApp, Extras, Owner};

/// The keys of a BuildFlowz app object: all of them, and no other.
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
    } else if exports.as_ref().is_some_and(is_buildflowz) {
        Owner::BuildFlowz
    } else {
        Owner::Hand
    };
    let extras = match apps.as_slice() {
        [app] if owner != Owner::Pm2Port => extras_of(app),
        _ => None,
    };
    let mut read: Vec<ExistingApp> = apps
        .iter()
        .map(|a| ExistingApp {
            name: a.get("name").and_then(Value::as_str).map(str::to_string),
            cwd: a.get("cwd").and_then(Value::as_str).map(PathBuf::from),
            port: match a.get("port").and_then(crate::js::pm2_number) {
                // PM2 reads its `port` option as a number and, when that is truthy, copies it
                // over `env.PORT`.
                Some(n) if n != 0.0 && !n.is_nan() => crate::js::port(n),
                _ => a
                    .get("env")
                    .and_then(|e| e.get("PORT"))
                    .and_then(port_value),
            },
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
    let command = match apps.as_slice() {
        [app] => command_of(app),
        _ => None,
    };
    Existing {
        text,
        owner,
        apps: read,
        extras,
        command,
    }
}

/// Whether `module.exports` is exactly what BuildFlowz writes (docs/product.md section 6):
/// `{ apps }` with one app of exactly BuildFlowz's keys, `script: "bash"`, `args: ["-c", "export
/// PORT=N && ..."]`, `env: { PORT: N }` with the same N, `autorestart: true`, `watch: false`.
/// Anything more or else is somebody's work.
fn is_buildflowz(exports: &Value) -> bool {
    let Some(top) = exports.as_object() else {
        return false;
    };
    let Some([app]) = top.get("apps").and_then(Value::as_array).map(Vec::as_slice) else {
        return false;
    };
    let Some(obj) = app.as_object() else {
        return false;
    };
    let port = obj
        .get("env")
        .and_then(Value::as_object)
        .filter(|env| env.len() == 1)
        .and_then(|env| env.get("PORT"))
        .filter(|p| p.is_u64())
        .and_then(port_value);
    let command = match obj.get("args").and_then(Value::as_array).map(Vec::as_slice) {
        Some([dash_c, Value::String(line)]) if dash_c == "-c" => Some(line.as_str()),
        _ => None,
    };
    top.len() == 1
        && obj.len() == BUILDFLOWZ_KEYS.len()
        && BUILDFLOWZ_KEYS.iter().all(|k| obj.contains_key(*k))
        && obj.get("name").is_some_and(Value::is_string)
        && obj.get("cwd").is_some_and(Value::is_string)
        && obj.get("script").and_then(Value::as_str) == Some("bash")
        && obj.get("autorestart") == Some(&Value::Bool(true))
        && obj.get("watch") == Some(&Value::Bool(false))
        && port.is_some_and(|p| {
            command.is_some_and(|c| {
                c.strip_prefix(&format!("export PORT={p} && "))
                    .is_some_and(|rest| !rest.trim().is_empty())
            })
        })
}

/// What `--force` carries over from a hand-written app object.
fn extras_of(app: &Value) -> Option<Extras> {
    let obj = app.as_object()?;
    let mut extras = Extras::default();
    if let Some(env) = obj.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            if k != "PORT" {
                extras.env.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in obj {
        let default = match k.as_str() {
            "name" | "cwd" | "script" | "args" | "env" => continue,
            "autorestart" => Some(Value::Bool(true)),
            "watch" => Some(Value::Bool(false)),
            _ => None,
        };
        if default.as_ref() != Some(v) {
            extras.pm2.insert(k.clone(), v.clone());
        }
    }
    extras.command = command_of(app);
    Some(extras)
}

/// The command of an app object started as `bash -c LINE`, in the `$PORT` form of
/// [`portable_command`].
fn command_of(app: &Value) -> Option<String> {
    let port = app
        .get("env")
        .and_then(|e| e.get("PORT"))
        .and_then(port_value);
    if app.get("script").and_then(Value::as_str) == Some("bash")
        && let Some([dash_c, Value::String(line)]) =
            app.get("args").and_then(Value::as_array).map(Vec::as_slice)
        && dash_c == "-c"
    {
        return Some(portable_command(line, port)).filter(|c| !c.trim().is_empty());
    }
    None
}

/// Whether two command lines start the same dev server, whatever port flags they pass: both in
/// the `$PORT` form of [`portable_command`], compared without `--port $PORT`, `-p $PORT`,
/// `--port=$PORT`, `--strictPort`, `--ci`, `--exact-port`, `-H 127.0.0.1` and a trailing `--`
/// (BuildFlowz passed flags that pm2-port leaves to `PORT`, and the other way round).
pub fn same_command(a: &str, b: &str) -> bool {
    fn core(line: &str) -> Vec<&str> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if matches!(w, "--port" | "-p" | "--http-port") && words.get(i + 1) == Some(&"$PORT") {
                i += 2;
                continue;
            }
            // The host pm2-port passes by default, and Storybook's companions of the port flag.
            if matches!(w, "-H" | "--host" | "--hostname")
                && words.get(i + 1) == Some(&crate::detect::LOOPBACK)
            {
                i += 2;
                continue;
            }
            if w.ends_with("=$PORT") && w.starts_with('-')
                || matches!(w, "--strictPort" | "--ci" | "--exact-port")
            {
                i += 1;
                continue;
            }
            out.push(w);
            i += 1;
        }
        while out.last() == Some(&"--") {
            out.pop();
        }
        out
    }
    core(a) == core(b)
}

/// A `bash -c` line as a buildflowz.toml `command`: without BuildFlowz's `export PORT=N && ` and
/// `flox activate -- ` (pm2-port adds its own), the port number written as `$PORT`.
pub fn portable_command(line: &str, port: Option<u16>) -> String {
    let mut rest = line.trim();
    if let Some(p) = port {
        rest = rest
            .strip_prefix(&format!("export PORT={p} && "))
            .unwrap_or(rest);
    }
    rest = rest.strip_prefix("flox activate -- ").unwrap_or(rest);
    let Some(p) = port else {
        return rest.to_string();
    };
    let p = p.to_string();
    // Whole numbers only: 30031 or v3003 stay as they are.
    let mut out = String::new();
    let mut last = 0;
    for (at, _) in rest.match_indices(&p) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + p.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !word(before) && !word(after) {
            out.push_str(&rest[last..at]);
            out.push_str("$PORT");
            last = at + p.len();
        }
    }
    out.push_str(&rest[last..]);
    out
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

    /// PM2 copies a truthy `port` option over `env.PORT` (measured with PM2 7: the app gets
    /// PORT=4000 with or without an `env`); `port: 0` is not truthy.
    #[test]
    fn the_port_option_is_the_port() {
        let port = |text: &str| classify(text.to_string()).apps[0].port;
        assert_eq!(
            port(
                "module.exports = { apps: [{ name: 'a', script: 'x', port: 4000, env: { PORT: 3000 } }] };"
            ),
            Some(4000)
        );
        assert_eq!(
            port("module.exports = { apps: [{ name: 'a', script: 'x', port: '4001' }] };"),
            Some(4001)
        );
        assert_eq!(
            port(
                "module.exports = { apps: [{ name: 'a', script: 'x', port: 0, env: { PORT: 3000 } }] };"
            ),
            Some(3000)
        );
        // As PM2 reads them (measured): parseFloat("0xA0F1") is 0, so PORT stays; [41005] is 41005.
        let file = |port: &str| {
            format!(
                "module.exports = {{ apps: [{{ name: 'a', script: 'x', port: {port}, env: {{ PORT: 41001 }} }}] }};"
            )
        };
        assert_eq!(port(&file("'0xA0F1'")), Some(41001));
        assert_eq!(port(&file("[41005]")), Some(41005));
        assert_eq!(port(&file("' 41006 '")), Some(41006));
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
