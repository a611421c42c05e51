//! The thin layer that touches PM2: its home, its daemon's socket, and the `pm2` program.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Result, bail};

use crate::model::App;
use crate::sys::pm2_rpc as rpc;

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

/// Fail, saying how to install PM2, when the `pm2` program cannot be found.
pub fn ensure_installed() -> Result<()> {
    let program = program();
    let path = Path::new(&program);
    let found = if path.components().count() > 1 {
        path.is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(path).is_file()))
    };
    if !found {
        bail!(
            "`{}` not found; install PM2 with `npm install -g pm2` (Node.js >= 18), or point `PM2_PORT_PM2` at it",
            program.to_string_lossy()
        );
    }
    Ok(())
}

/// How long one `pm2` command may take: `PM2_PORT_PM2_TIMEOUT` seconds, else 120.
fn timeout() -> std::time::Duration {
    let secs = std::env::var("PM2_PORT_PM2_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(120);
    std::time::Duration::from_secs(secs)
}

/// Run `pm2 ARGS` and return its output, within [`timeout`]; a non-zero exit is an error that
/// quotes its stderr.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Result<Output> {
    let program = program();
    let shown = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    verbose!("running `pm2 {shown}`");
    let mut command = Command::new(&program);
    command
        .args(args)
        // PM2's daemon error handler re-runs `node $_ update`: make `$_` point at pm2 itself.
        .env("_", &program);
    let output = match crate::sys::proc::run(&mut command, timeout(), None) {
        Ok(output) => output,
        Err(crate::sys::proc::RunError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "`{}` not found; install PM2 with `npm install -g pm2`, or point `PM2_PORT_PM2` at it",
                program.to_string_lossy()
            )
        }
        Err(crate::sys::proc::RunError::TimedOut { after, .. }) => bail!(
            "`pm2 {shown}` did not finish within {}s and was stopped; is PM2's daemon in `{}` stuck? (`pm2 kill` restarts it; PM2_PORT_PM2_TIMEOUT=SECS waits longer)",
            after.as_secs(),
            home().display()
        ),
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("failed to run `{}`", program.to_string_lossy())));
        }
    };
    if !output.status.success() {
        bail!(
            "`pm2 {shown}` failed ({}): {}",
            output.status,
            why_failed(&output)
        );
    }
    Ok(output)
}

/// What a failed `pm2` said: its stderr, else its `[PM2][ERROR]` and `[PM2][WARN]` lines of stdout
/// (where `pm2 start` puts why it refused a file), without their colours, on one line.
fn why_failed(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = crate::text::strip_csi(&stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = crate::text::strip_csi(&stdout);
    let tagged = |l: &str| {
        let tag = ["[PM2][ERROR]", "[PM2][WARN]"]
            .into_iter()
            .find(|t| l.starts_with(t))?;
        Some(format!("{tag} {}", l[tag.len()..].trim()))
    };
    let lines: Vec<String> = if stderr.trim().is_empty() {
        stdout.lines().map(str::trim).filter_map(tagged).collect()
    } else {
        stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| tagged(l).unwrap_or_else(|| l.to_string()))
            .collect()
    };
    if lines.is_empty() {
        "it printed no reason".to_string()
    } else {
        lines.join("; ")
    }
}

/// `pm2 delete NAME`.
pub fn delete(name: &str) -> Result<()> {
    run(&["delete", name]).map(drop)
}

/// `pm2 start FILE --only NAME`: PM2 reads the file and starts (or restarts) that app.
pub fn start_only(file: &Path, name: &str) -> Result<()> {
    run(&[
        OsStr::new("start"),
        file.as_os_str(),
        OsStr::new("--only"),
        OsStr::new(name),
    ])
    .map(drop)
}

/// `pm2 save`: what `pm2 resurrect` (and boot scripts) bring back.
pub fn save() -> Result<()> {
    run(&["save"]).map(drop)
}

/// Every app PM2 knows: the live daemon's list (when one runs) and the apps saved in `dump.pm2`
/// that the live list does not have, since `pm2 resurrect` brings them back. Never starts a daemon:
/// the list comes from the daemon's socket. When a daemon answers there in a way this client does
/// not understand, a command that drives PM2 anyway (`runs_pm2`) asks `pm2 jlist`; any other
/// fails, since running `pm2` could start a daemon and writes into `PM2_HOME`.
pub fn apps(home: &Path, runs_pm2: bool) -> Result<Vec<App>> {
    apps_and_daemon(home, runs_pm2).map(|(apps, _)| apps)
}

/// [`apps`], and whether a daemon answered on its socket (`false`: no socket, or a stale one).
pub fn apps_and_daemon(home: &Path, runs_pm2: bool) -> Result<(Vec<App>, bool)> {
    let answer = rpc::process_list(home);
    let daemon_runs = !matches!(answer, rpc::Answer::NoSocket | rpc::Answer::Stale);
    let mut apps = match answer {
        rpc::Answer::NoSocket => {
            verbose!("no PM2 daemon socket in `{}`", home.display());
            Vec::new()
        }
        rpc::Answer::Stale => {
            verbose!(
                "PM2's daemon socket in `{}` is stale: no daemon runs",
                home.display()
            );
            Vec::new()
        }
        rpc::Answer::List(apps) => {
            verbose!("PM2's daemon listed {} apps", apps.len());
            apps
        }
        rpc::Answer::Failed(why) => {
            bail!(
                "cannot ask PM2's daemon for its apps through `{}`: {why}",
                home.join("rpc.sock").display()
            )
        }
        rpc::Answer::Unexpected(why) if !runs_pm2 => {
            bail!(
                "PM2's daemon answered `{}` with {why}, which this pm2-port does not understand; check it with `pm2 jlist`, or update pm2-port",
                home.join("rpc.sock").display()
            )
        }
        rpc::Answer::Unexpected(why) => {
            note!("PM2's daemon socket answered with {why}; asking `pm2 jlist` instead");
            let out = run(&["jlist"])?;
            crate::pm2::parse_jlist(&String::from_utf8_lossy(&out.stdout))?
        }
    };
    let dump = home.join("dump.pm2");
    match crate::sys::files::read_text(&dump) {
        Ok(Some(text)) => match crate::pm2::parse_dump(&text) {
            Ok(saved) => {
                for mut app in saved {
                    if !apps.iter().any(|a| a.name == app.name) {
                        // With a daemon running, an app only in the dump was deleted from PM2
                        // since the last `pm2 save`; it comes back on `pm2 resurrect` all the same.
                        if daemon_runs {
                            app.status = crate::model::Status::DumpOnly;
                        }
                        apps.push(app);
                    }
                }
            }
            // PM2 itself keeps going with a broken dump; so do we, but say so.
            Err(err) => warn!("ignoring `{}`: {err:#}", dump.display()),
        },
        Ok(None) => {}
        Err(err) => return Err(err),
    }
    resolve_cwds(&mut apps);
    Ok((apps, daemon_runs))
}

/// Resolve each app's directory: PM2 keeps `pm_cwd` as it was given (`$(pwd)` may hold a
/// symlink), and pm2-port knows projects by their resolved directories.
pub fn resolve_cwds(apps: &mut [App]) {
    for app in apps {
        if let Some(cwd) = &app.cwd {
            app.cwd = Some(crate::sys::files::canonical(cwd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    /// As PM2 7 prints them: a refused file on stdout (the banner and all), a missing app on
    /// stderr, both in colour.
    #[test]
    fn why_pm2_failed_is_its_error_lines_without_colour() {
        assert_eq!(
            why_failed(&failed(
                "                        -------------\n__/\\\\\\\\\n\x1b[32m[PM2] \x1b[39mSpawning PM2 daemon\n\x1b[33m[PM2][WARN] \x1b[39mExpect \"autorestart\" to be a typeof [object Boolean], but now is [object String]\n",
                ""
            )),
            "[PM2][WARN] Expect \"autorestart\" to be a typeof [object Boolean], but now is [object String]"
        );
        assert_eq!(
            why_failed(&failed(
                "",
                "\x1b[31m[PM2][ERROR] \x1b[39mProcess or Namespace app not found\n"
            )),
            "[PM2][ERROR] Process or Namespace app not found"
        );
        assert_eq!(why_failed(&failed("ok\n", "")), "it printed no reason");
    }
}
