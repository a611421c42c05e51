//! The thin layer that touches PM2: its home, its daemon's socket, and the `pm2` program.

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use super::App;

/// PM2's home, as PM2 itself reads it: `PM2_HOME`, else `~/.pm2`.
pub fn home() -> PathBuf {
    if let Some(home) = std::env::var_os("PM2_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = std::env::var_os("HOME").unwrap_or_else(|| OsString::from("/"));
    Path::new(&user_home).join(".pm2")
}

/// The `pm2` program to run: `PM2_PORT_PM2`, else `pm2` on `PATH`.
pub fn program() -> OsString {
    std::env::var_os("PM2_PORT_PM2")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from("pm2"))
}

/// Whether a daemon answers on `$PM2_HOME/rpc.sock`. A missing socket means no daemon ever ran;
/// a refused connection, a stale socket from a dead one. Neither starts a daemon.
pub fn daemon_alive(home: &Path) -> bool {
    UnixStream::connect(home.join("rpc.sock")).is_ok()
}

/// Run `pm2 ARGS` and return its output; a non-zero exit is an error that quotes its stderr.
pub fn run(args: &[&str]) -> Result<Output> {
    let program = program();
    let output = Command::new(&program)
        .args(args)
        // PM2's daemon error handler re-runs `node $_ update`: make `$_` point at pm2 itself.
        .env("_", &program)
        .output()
        .map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "`{}` not found; install PM2 with `npm install -g pm2`, or point `PM2_PORT_PM2` at it",
                    program.to_string_lossy()
                )
            } else {
                anyhow::Error::new(err).context(format!("failed to run `{}`", program.to_string_lossy()))
            }
        })?;
    if !output.status.success() {
        bail!(
            "`pm2 {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// Every app PM2 knows: the live daemon's list (when one runs) and the apps saved in `dump.pm2`
/// that the live list does not have, since `pm2 resurrect` brings them back. Never starts a daemon.
pub fn apps(home: &Path) -> Result<Vec<App>> {
    let mut apps = if daemon_alive(home) {
        let out = run(&["jlist"])?;
        super::parse_jlist(&String::from_utf8_lossy(&out.stdout))?
    } else {
        Vec::new()
    };
    let dump = home.join("dump.pm2");
    match std::fs::read_to_string(&dump) {
        Ok(text) => {
            let saved = super::parse_dump(&text)
                .with_context(|| format!("cannot read `{}`", dump.display()))?;
            for app in saved {
                if !apps.iter().any(|a| a.name == app.name) {
                    apps.push(app);
                }
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read `{}`", dump.display()));
        }
    }
    Ok(apps)
}
