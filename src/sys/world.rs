//! Gathering the [`World`] once per command: PM2's apps, the registry's reservations, the
//! kernel's listening sockets and, where it matters, which process owns a socket.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::model::Processes;
use crate::model::World;
use crate::sys::registry;

/// Where PM2 and pm2-port keep their state.
#[derive(Debug, Clone)]
pub struct Context {
    pub pm2_home: PathBuf,
    pub state: PathBuf,
    /// Whether this command drives PM2 (`start`, `bump`, `doctor --fix`) and so may run the `pm2`
    /// program to read its list when the daemon's socket answers in a way pm2-port does not
    /// understand. Read-only commands never run it: it can start a daemon and writes into
    /// `PM2_HOME`.
    pub runs_pm2: bool,
}

impl Context {
    pub fn from_env() -> Context {
        let pm2_home = crate::sys::pm2_cli::home();
        let state = registry::state_dir(&pm2_home);
        Context {
            pm2_home,
            state,
            runs_pm2: false,
        }
    }

    /// This context for a command that drives PM2.
    pub fn driving_pm2(&self) -> Context {
        Context {
            runs_pm2: true,
            ..self.clone()
        }
    }

    /// PM2's apps, live and saved ([`crate::sys::pm2_cli::apps`]).
    pub fn pm2_apps(&self) -> Result<Vec<crate::model::App>> {
        crate::sys::pm2_cli::apps(&self.pm2_home, self.runs_pm2)
    }
}

#[cfg(target_os = "linux")]
/// Read a `/proc/net` table in large chunks. The kernel walks its whole socket hash table again for
/// every `read` call (milliseconds on a machine with much memory), so the small first reads of
/// `read_to_string` are costly, and so is the final empty read: a read that leaves much of the
/// buffer unfilled already means the end (the kernel fills the buffer while records remain).
fn read_proc_table(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    const CHUNK: usize = 256 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        let space = buf.len() - len;
        len += n;
        if n == 0 || space - n > 4096 {
            break;
        }
        buf.resize(len + CHUNK, 0);
    }
    buf.truncate(len);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Every listening TCP socket, IPv4 and IPv6: from sock_diag, else from `/proc/net/tcp*`.
#[cfg(target_os = "linux")]
pub fn listeners() -> Result<Vec<crate::model::Listener>> {
    match crate::sys::sockdiag::listeners() {
        Ok(all) => return Ok(all),
        Err(err) => verbose!("socket diagnostics unavailable ({err}); reading /proc/net/tcp*"),
    }
    let mut all = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match read_proc_table(file) {
            Ok(text) => all.extend(crate::ports::procnet::parse(&text)),
            // No IPv6 in this kernel: nothing listens there.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(err) => {
                return anyhow::Context::with_context(Err(err), || format!("cannot read `{file}`"));
            }
        }
    }
    Ok(all)
}

/// Every listening TCP socket, IPv4 and IPv6, that `lsof` shows: without `/proc` (macOS, the
/// BSDs), only one's own processes' unless root (said once, as a warning).
#[cfg(not(target_os = "linux"))]
pub fn listeners() -> Result<Vec<crate::model::Listener>> {
    Ok(crate::sys::lsof::sockets()?
        .into_iter()
        .map(|s| s.listener)
        .collect())
}

/// The listeners on `port`.
pub fn listeners_on(port: u16) -> Result<Vec<crate::model::Listener>> {
    Ok(listeners()?
        .into_iter()
        .filter(|l| l.port == port)
        .collect())
}

/// Poll until `done` holds for the listeners on `port`, or `timeout` passes; the last listeners.
pub fn wait_port(
    port: u16,
    timeout: Duration,
    done: impl Fn(&[crate::model::Listener]) -> bool,
) -> Result<(bool, Vec<crate::model::Listener>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = listeners_on(port)?;
        if done(&now) {
            return Ok((true, now));
        }
        if Instant::now() >= deadline {
            return Ok((false, now));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the server says, apart from pm2-port's own registry: PM2's apps and the listening
/// sockets. Read before the registry lock is taken, so that a slow or stopped PM2 daemon delays
/// only this command, never every other pm2-port waiting for the lock (pm2-port's own
/// allocations are in the registry, which is read under the lock).
#[derive(Debug, Clone, Default)]
pub struct Server {
    pub apps: Vec<crate::model::App>,
    pub listeners: Vec<crate::model::Listener>,
}

/// Read PM2's apps and the listening sockets.
pub fn server(ctx: &Context) -> Result<Server> {
    Ok(Server {
        apps: ctx.pm2_apps()?,
        listeners: listeners()?,
    })
}

/// The world as seen by the project whose directories are `own` (empty: by nobody), and the
/// registry it came with.
pub fn gather(ctx: &Context, own: &[PathBuf]) -> Result<(World, registry::Loaded)> {
    assemble(ctx, server(ctx)?, own)
}

/// The world of `server` and the registry (read now: under the lock, for a writer).
pub fn assemble(
    ctx: &Context,
    server: Server,
    own: &[PathBuf],
) -> Result<(World, registry::Loaded)> {
    let Server { apps, listeners } = server;
    let known: Vec<PathBuf> = apps.iter().filter_map(|a| a.cwd.clone()).collect();
    let loaded = registry::load(&ctx.state, &known)?;
    if loaded.keep_broken_as.is_some() {
        warn!(
            "the registry `{}` was corrupt; rebuilt it from its copy, PM2 and the projects' ecosystem files ({} projects); the next `init` keeps the broken file aside",
            ctx.state.join(registry::REGISTRY_FILE).display(),
            loaded.registry.projects.len()
        );
    }
    verbose!(
        "PM2 ({}): {} apps; {} listening sockets; registry `{}`: {} projects",
        ctx.pm2_home.display(),
        apps.len(),
        listeners.len(),
        ctx.state.join(registry::REGISTRY_FILE).display(),
        loaded.registry.projects.len()
    );
    let mut world = World {
        reservations: loaded.registry.reservations(),
        apps,
        listeners,
        files: loaded.files.clone(),
        ..World::default()
    };
    if !own.is_empty() {
        classify_own_listeners(&mut world, own, &ctx.pm2_home);
    }
    Ok((world, loaded))
}

/// Mark the listeners that belong to the project's running apps' process trees (all of them,
/// not only those on its ports: `doctor --fix` adopts a port an app drifted to), and those PM2's
/// daemon holds on the ports of the project's apps (cluster mode).
fn classify_own_listeners(world: &mut World, own: &[PathBuf], pm2_home: &Path) {
    let own_apps: Vec<&crate::model::App> = world
        .apps
        .iter()
        .filter(|a| own.iter().any(|d| a.belongs_to(d)))
        .collect();
    let own_pids: HashSet<u32> = own_apps
        .iter()
        .filter(|a| a.status == crate::model::Status::Online)
        .filter_map(|a| a.pid)
        .collect();
    if own_pids.is_empty() || world.listeners.is_empty() {
        return;
    }
    let own_ports: HashSet<u16> = own_apps.iter().filter_map(|a| a.port).collect();
    let procs = Processes::read(&world.listeners, pm2_home);
    for l in &world.listeners {
        if procs.owner(l).is_none() {
            world.unknown_inodes.insert(l.inode);
        } else if procs.held_by(l, &own_pids)
            || (procs.held_by_daemon(l) && own_ports.contains(&l.port))
        {
            world.own_inodes.insert(l.inode);
        }
    }
}

/// The ecosystem file of every project directory the world mentions.
pub fn read_files(
    world: &crate::model::World,
) -> std::collections::HashMap<std::path::PathBuf, crate::ecosystem::read::Existing> {
    let dirs = world
        .apps
        .iter()
        .filter_map(|a| {
            Some(crate::inventory::project_of(
                world,
                &a.name,
                a.cwd.as_ref()?,
            ))
        })
        .chain(world.reservations.iter().map(|r| r.dir.clone()));
    let mut files = world.files.clone();
    for dir in dirs {
        if files.contains_key(&dir) {
            continue;
        }
        if let Ok(Some(text)) = crate::sys::files::read_text(&dir.join(crate::ecosystem::FILE_NAME))
        {
            files.insert(dir, crate::ecosystem::read::classify(text));
        }
    }
    files
}
