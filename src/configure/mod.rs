//! Configuring one project: the engine behind `init` and `bump` (and `start`).
//!
//! Gather (the project's files, PM2, sockets, the registry) → plan (a pure function of what was
//! gathered: name, port, rendered file) → act (write the file and the registry, or show the diff
//! for `--dry-run`). Outside `--dry-run` the registry lock is held from gathering to the last write.

mod allocate;
mod inputs;
mod names;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

use crate::detect::{Launch, shell};
use crate::ecosystem::FILE_NAME;
use crate::ecosystem::read::{Existing, Owner};
use crate::ecosystem::render::{self, AppSpec};
use crate::error::{InputError, RuntimeError};
use crate::model::World;
use crate::model::{Entry, RegApp, Registry};
use crate::ports::PortRange;
use crate::sys::files;
use crate::sys::registry;
use crate::sys::world::{self, Context};
use inputs::{AppInput, Inputs};

/// What the user asked for.
pub use crate::buildflowz_toml::Answer;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub port: Option<u16>,
    pub command: Option<String>,
    pub range: Option<PortRange>,
    pub dry_run: bool,
    pub force: bool,
    pub yes: bool,
    /// `bump`: move the project's apps off their current ports.
    pub bump: bool,
    /// The app that `port` and `bump` apply to, in a project of several apps (default: all for
    /// `bump`; `port` needs it when there are several).
    pub only: Option<String>,
    /// The answer to the prompt the command put when detection found nothing, and whether to
    /// save it in buildflowz.toml.
    pub answer: Option<(Answer, bool)>,
}

/// `init --json` and `bump --json`: docs/product.md section 2.1.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub changed: bool,
    pub dry_run: bool,
    pub apps: Vec<AppReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    pub name: String,
    pub cwd: PathBuf,
    pub port: u16,
    pub previous_port: Option<u16>,
    pub command: String,
    pub framework: Option<&'static str>,
    pub package_manager: Option<&'static str>,
    pub flox: bool,
}

/// What configuring will do.
pub struct Plan {
    pub file: PathBuf,
    /// The new text of buildflowz.toml, when it changes: the extra settings of a hand-written file
    /// that `--force` replaces, and the command given with `--command`.
    pub config: Option<String>,
    /// buildflowz.toml as it was, for the diff of a dry run.
    pub config_old: Option<String>,
    pub old: Option<Existing>,
    pub new: String,
    pub report: Report,
    pub registry: Registry,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.report.changed
    }
}

/// The `bash -c` line for `app` on `port`, inside flox when the project uses it.
fn command_line(inputs: &Inputs, app: &AppInput, command: &str) -> String {
    if !inputs.flox {
        return command.to_string();
    }
    let inner = match &app.detection.launch {
        // A user's line may be a compound command: give flox one program to run.
        Launch::Shell(line) => format!("bash -c {}", shell::quote_word(line)),
        // flox runs its command directly: leading `NAME=value` words need `env`.
        Launch::Words { words, .. }
            if words
                .first()
                .and_then(|w| w.split_once('='))
                .is_some_and(|(n, _)| shell::is_name(n)) =>
        {
            format!("env {command}")
        }
        Launch::Words { .. } => command.to_string(),
    };
    format!(
        "flox activate -d {} -- {inner}",
        shell::quote_word(&inputs.project.dir.to_string_lossy())
    )
}

/// The pure middle: choose names and ports, render the file, update the registry.
fn plan(
    req: &Request,
    inputs: Inputs,
    carried: Option<crate::buildflowz_toml::Carried>,
    world: &World,
    mut registry: Registry,
) -> Result<Plan> {
    let dir = inputs.project.dir.clone();
    let file = dir.join(FILE_NAME);
    let own = inputs.own_dirs();
    if let Some(existing) = &inputs.existing
        && existing.owner == Owner::Hand
        && !req.force
    {
        return Err(RuntimeError::HandWrittenFile {
            path: file,
            port_note: existing
                .apps
                .iter()
                .find_map(|a| a.port)
                .map_or(String::new(), |p| format!(" (it sets PORT {p})")),
            carry_note: inputs::carry_note(&inputs),
        }
        .into());
    }

    // An [[apps]] directory that is a project of its own would be two projects in one place.
    if let Some(app) = inputs
        .apps
        .iter()
        .find(|a| a.cwd != dir && registry.projects.contains_key(&a.cwd))
    {
        return Err(RuntimeError::Other(format!(
            "`{}` is a project of its own (configured with `pm2-port init` there); give it back with `pm2-port release {}`, or take it out of the [[apps]] of `{}`",
            app.cwd.display(),
            app.cwd.display(),
            dir.join(crate::buildflowz_toml::FILE_NAME).display()
        ))
        .into());
    }
    let mut notes = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for app in &inputs.apps {
        notes.extend(app.detection.notes.iter().cloned());
        if app.host != crate::buildflowz_toml::DEFAULT_HOST && !app.detection.takes_host() {
            notes.push(format!(
                "`host = \"{}\"` in buildflowz.toml is not passed to `{}`: pm2-port knows no way to give {} an address; it listens where its own configuration or code says",
                app.host,
                app.cwd.display(),
                app.detection.framework.unwrap_or("this command"),
            ));
        }
        let name = names::choose_name(app, &inputs, &own, world, &mut notes)?;
        if names.contains(&name) {
            return Err(InputError::Usage(format!(
                "two apps of `{}` are named `{name}`; give each a distinct `name`",
                dir.display()
            ))
            .into());
        }
        names.push(name);
    }

    if let Some(only) = &req.only
        && !names.contains(only)
    {
        return Err(InputError::Usage(format!(
            "no app named `{only}` in `{}` (its apps: {})",
            dir.display(),
            names.join(", ")
        ))
        .into());
    }
    let choices = allocate::choose_ports(req, &inputs, &names, &own, world)?;

    let mut specs = Vec::new();
    let mut reports = Vec::new();
    let mut reg_apps = Vec::new();
    for ((app, name), (choice, current)) in inputs.apps.iter().zip(&names).zip(choices) {
        verbose!(
            "`{name}`: {} in `{}`; port {} ({:?}, range {})",
            app.detection.framework.unwrap_or("no known framework"),
            app.cwd.display(),
            choice.port,
            choice.reason,
            inputs.range
        );
        if choice.reason == crate::ports::Reason::Requested
            && crate::ports::browser_blocked(choice.port)
        {
            notes.push(format!(
                "port {} is one that browsers refuse to open (ERR_UNSAFE_PORT): `{name}` will run, but a browser cannot show it; choose another with `--port`",
                choice.port
            ));
        }
        for (port, holder) in &choice.passed_over {
            notes.push(format!(
                "port {port} is taken by {holder}; moving `{name}` to {}",
                choice.port
            ));
        }

        let host = &app.host.to_string();
        let command = app.detection.launch.command_line_on(choice.port, host);
        let mut pm2_opts: Vec<(String, Value)> = inputs.config.pm2.clone().into_iter().collect();
        let mut take = |key: &str, default: bool| {
            pm2_opts
                .iter()
                .position(|(k, _)| k == key)
                .map_or(Value::Bool(default), |i| pm2_opts.remove(i).1)
        };
        let autorestart = take("autorestart", true);
        let watch = take("watch", false);
        let mut env: Vec<(String, Value)> = Vec::new();
        let mut push = |k: &str, v: Value| match env.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k.to_string(), v)),
        };
        for (k, v) in &app.detection.env {
            push(k, Value::from(v.replace("{host}", host)));
        }
        for (k, v) in inputs.config.env.iter().chain(&app.env) {
            push(k, v.clone());
        }
        specs.push(AppSpec {
            name: name.clone(),
            cwd: app.cwd.to_string_lossy().into_owned(),
            command_line: command_line(&inputs, app, &command),
            port: choice.port,
            env,
            autorestart,
            watch,
            pm2: pm2_opts,
        });
        reg_apps.push(RegApp {
            name: name.clone(),
            port: choice.port,
            cwd: (app.cwd != dir).then(|| app.cwd.clone()),
        });
        reports.push(AppReport {
            name: name.clone(),
            cwd: app.cwd.clone(),
            port: choice.port,
            previous_port: current.filter(|p| *p != choice.port),
            command,
            framework: app.detection.framework,
            package_manager: app.detection.package_manager.map(|p| p.as_str()),
            flox: inputs.flox,
        });
    }
    for key in inputs.config.pm2.keys() {
        if let Some(why) = crate::pm2::options::ignored_among(key, &inputs.config.pm2) {
            let hint = crate::pm2::options::suggest(key)
                .filter(|_| crate::pm2::options::canonical(key).is_none())
                .map(|s| format!(" (`{s}`?)"))
                .unwrap_or_default();
            notes.push(format!(
                "PM2 ignores `pm2.{}` of buildflowz.toml{hint}: {why}",
                crate::buildflowz_toml::toml_key(key)
            ));
        }
    }
    if inputs
        .existing
        .as_ref()
        .is_some_and(|e| e.owner == Owner::BuildFlowz)
    {
        notes.push(format!(
            "adopting BuildFlowz's `{}` (its port is kept unless taken)",
            file.display()
        ));
    }
    let new = render::render(&specs);
    registry
        .projects
        .insert(dir.clone(), Entry { apps: reg_apps });
    let report = Report {
        file: file.clone(),
        changed: inputs.existing.as_ref().is_none_or(|o| o.text != new),
        dry_run: req.dry_run,
        apps: reports,
    };
    if let Some(c) = &carried {
        let toml = dir.join(crate::buildflowz_toml::FILE_NAME);
        let verb = if req.dry_run {
            "would carry"
        } else {
            "carried"
        };
        if !c.added.is_empty() {
            notes.push(format!(
                "{verb} {} from the hand-written file into `{}`",
                some_of(&c.added),
                toml.display()
            ));
        }
        if !c.left.is_empty() {
            notes.push(format!(
                "not carried into `{}`: {}; they stay in `{}.bak`",
                toml.display(),
                some_of(&c.left),
                file.display()
            ));
        }
    }
    // What the user chose with `--command` sticks: saved where the next run reads it.
    let config_old = inputs.config_text.clone();
    let mut config = carried.filter(|c| !c.added.is_empty()).map(|c| c.text);
    if let Some(command) = &req.command {
        let toml = dir.join(crate::buildflowz_toml::FILE_NAME);
        let base = config
            .as_deref()
            .or(config_old.as_deref())
            .unwrap_or_default();
        if let Some(text) = crate::buildflowz_toml::set_command(&toml, base, command)? {
            let verb = if req.dry_run { "would save" } else { "saved" };
            notes.push(format!(
                "{verb} the command to `{}`, so that `init` and `start` keep running it (change it there, or with `--command` again)",
                toml.display()
            ));
            config = Some(text);
        }
    }
    // The prompt's answer, when the user wanted it kept.
    if let Some((answer, true)) = &req.answer {
        let toml = dir.join(crate::buildflowz_toml::FILE_NAME);
        let base = config
            .as_deref()
            .or(config_old.as_deref())
            .unwrap_or_default();
        let text = crate::buildflowz_toml::answer_edited(base, answer)
            .with_context(|| format!("cannot edit `{}`", toml.display()))?;
        let verb = if req.dry_run { "would save" } else { "saved" };
        notes.push(format!("{verb} the answer in `{}`", toml.display()));
        config = Some(text);
    }
    Ok(Plan {
        file,
        config,
        config_old,
        old: inputs.existing,
        new,
        report,
        registry,
        notes,
    })
}

/// A list for a message: all of it when short, else its first ten and how many more.
fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 10;
    if items.len() <= SHOWN + 2 {
        return items.join(", ");
    }
    format!(
        "{} and {} more",
        items[..SHOWN].join(", "),
        items.len() - SHOWN
    )
}

/// Configure the project of `req`: gather, plan, and (outside `--dry-run`) write.
///
/// The writes are ordered so that a kill at any point leaves no two projects sharing a port: the
/// registry first (with this project in it), then the ecosystem file. Killed in between, the
/// registry names a project whose file is missing or still has the old port; the next command
/// reads the file, which is the truth (registry::load), and writes the registry back.
pub fn configure(ctx: &Context, req: &Request) -> Result<Plan> {
    let mut inputs = inputs::inputs(req)?;
    // PM2 and the sockets before the lock: a slow daemon must not hold up other pm2-ports.
    let server = world::server(ctx)?;
    let _lock = if req.dry_run {
        None
    } else {
        Some(registry::lock(&ctx.state)?)
    };
    if !req.dry_run && inputs::config_changed(&inputs)? {
        inputs = inputs::inputs(req)?;
    }
    let file = inputs.project.dir.join(FILE_NAME);
    // Read under the lock: another pm2-port may be writing this very file.
    inputs.existing = inputs::read_existing(&file)?;
    inputs::settle_owner(&mut inputs);
    if req.bump && inputs.existing.is_none() {
        return Err(RuntimeError::NotConfigured {
            dir: inputs.project.dir.clone(),
        }
        .into());
    }
    let carried = if req.force {
        inputs::carry_extras(&mut inputs)?
    } else {
        None
    };
    let (world, loaded) = world::assemble(ctx, server, &inputs.own_dirs())?;
    let before = loaded.registry.clone();
    let plan = plan(req, inputs, carried, &world, loaded.registry)?;
    if req.dry_run {
        return Ok(plan);
    }
    let mut dirs: Vec<PathBuf> = plan.registry.projects.keys().cloned().collect();
    dirs.push(
        plan.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    );
    registry::remove_leftovers(&ctx.state, &dirs);
    // buildflowz.toml, which `--force` writes under the lock.
    files::remove_leftovers(&plan.file.with_file_name(crate::buildflowz_toml::FILE_NAME));
    if plan.changed()
        && let Some(old) = &plan.old
        && old.owner == Owner::Hand
    {
        let (bak, moved) = files::backup(&plan.file, &old.text)?;
        if let Some(moved) = moved {
            note!("kept the earlier backup as `{}`", moved.display());
        }
        note!("saved the hand-written file as `{}`", bak.display());
    }
    // buildflowz.toml before the registry and the ecosystem file: it is what the next run reads,
    // so a kill after this write still leaves the user's choice to be rendered then.
    if let Some(text) = &plan.config {
        let dir = plan.file.parent().unwrap_or(Path::new("."));
        let toml = dir.join(crate::buildflowz_toml::FILE_NAME);
        // Settings carried from a private hand-written file stay private.
        if plan.old.as_ref().is_some_and(|o| o.owner == Owner::Hand) {
            files::atomic_write_no_more_open_than(&toml, text, &plan.file)?;
        } else {
            files::atomic_write(&toml, text)?;
        }
    }
    if plan.registry != before || loaded.stale || !ctx.state.join(registry::REGISTRY_FILE).exists()
    {
        registry::save(&ctx.state, &plan.registry, loaded.keep_broken_as.as_deref())?;
    }
    if plan.changed() {
        files::atomic_write(&plan.file, &plan.new)?;
    }
    Ok(plan)
}

/// A unified diff of the files a plan writes (the ecosystem file, buildflowz.toml), as `git diff`
/// would show it.
pub fn unified_diff(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.changed() {
        out.push_str(&file_diff(
            FILE_NAME,
            plan.old.as_ref().map(|o| o.text.as_str()),
            &plan.new,
        ));
    }
    if let Some(text) = &plan.config {
        out.push_str(&file_diff(
            crate::buildflowz_toml::FILE_NAME,
            plan.config_old.as_deref(),
            text,
        ));
    }
    out
}

fn file_diff(name: &str, old: Option<&str>, new: &str) -> String {
    let a = if old.is_some() {
        format!("a/{name}")
    } else {
        "/dev/null".to_string()
    };
    let body = similar::TextDiff::from_lines(old.unwrap_or(""), new)
        .unified_diff()
        .context_radius(3)
        .to_string();
    format!("--- {a}\n+++ b/{name}\n{body}")
}

/// The allocation range: `--range`, else `range` in buildflowz.toml, else `PM2_PORT_RANGE`, else
/// 3000-3100.
pub fn resolve_range(
    flag: Option<crate::ports::PortRange>,
    config: Option<&crate::buildflowz_toml::ProjectConfig>,
) -> Result<crate::ports::PortRange, crate::error::InputError> {
    if let Some(r) = flag.or_else(|| config.and_then(|c| c.range)) {
        return Ok(r);
    }
    match std::env::var("PM2_PORT_RANGE") {
        Ok(s) if !s.trim().is_empty() => s
            .parse()
            .map_err(|e| crate::error::InputError::Usage(format!("PM2_PORT_RANGE: {e}"))),
        _ => Ok(crate::ports::PortRange::DEFAULT),
    }
}
