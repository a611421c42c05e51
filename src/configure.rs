//! Configuring one project: the engine behind `init` and `bump` (and `start`).
//!
//! Gather (the project's files, PM2, sockets, the registry) → plan (a pure function of what was
//! gathered: name, port, rendered file) → act (write the file and the registry, or show the diff
//! for `--dry-run`). Outside `--dry-run` the registry lock is held from gathering to the last write.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::config::ProjectConfig;
use crate::detect::{self, Detection, Files, Launch, shell};
use crate::ecosystem::read::{self, Existing, Owner};
use crate::ecosystem::render::{self, AppSpec};
use crate::ecosystem::{FILE_NAME, write};
use crate::error::{InputError, RuntimeError};
use crate::ports::{self, Choice, Holder, PortRange, Wish, Wished, World};
use crate::project::Project;
use crate::prompt;
use crate::registry::{self, Entry, RegApp, Registry};
use crate::world::{self, Context};

/// What the user asked for.
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
}

/// `init --json` and `bump --json`: product.md section 2.1.
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

/// One app of the project, as read from its manifests.
struct AppInput {
    /// `--name`, `name` in buildflowz.toml or in `[[apps]]`.
    name: Option<String>,
    /// The name to derive from when none is given: the directory's.
    default_name: String,
    /// Its working directory (absolute).
    cwd: PathBuf,
    detection: Detection,
    /// `port` in buildflowz.toml or `[[apps]]`.
    preferred: Option<u16>,
    /// The app's own `[env]` (over the project's).
    env: serde_json::Map<String, Value>,
}

/// The project's side of what was gathered.
struct Inputs {
    project: Project,
    config: ProjectConfig,
    apps: Vec<AppInput>,
    flox: bool,
    /// Read under the lock, after detection.
    existing: Option<Existing>,
    range: PortRange,
}

impl Inputs {
    /// The project's directory and its apps': what "own" means for ports and names.
    fn own_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.project.dir.clone()];
        for app in &self.apps {
            if !dirs.contains(&app.cwd) {
                dirs.push(app.cwd.clone());
            }
        }
        dirs
    }
}

/// What configuring will do.
pub struct Plan {
    pub file: PathBuf,
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

fn detect_in(project: &Project, command: Option<String>) -> Result<Detection> {
    if let Some(line) = command {
        return Ok(Detection {
            framework: None,
            package_manager: None,
            launch: Launch::Shell(line),
            env: Vec::new(),
            notes: Vec::new(),
        });
    }
    detect::detect(project)?.ok_or_else(|| {
        RuntimeError::NoDevCommand {
            dir: project.dir.clone(),
        }
        .into()
    })
}

/// Whether a missing dev command may be asked for: a terminal, and no `--yes`.
fn interactive(req: &Request) -> bool {
    !req.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn inputs(req: &Request) -> Result<Inputs> {
    let project = Project::open(&req.dir)?;
    let mut config = project.config()?.unwrap_or_default();
    match inputs_with(req, project.clone(), config.clone()) {
        Err(err)
            if interactive(req)
                && matches!(
                    err.downcast_ref::<RuntimeError>(),
                    Some(RuntimeError::NoDevCommand { dir }) if *dir == project.dir
                ) =>
        {
            let answer = prompt::ask(&project, !req.dry_run)?;
            answer.apply(&mut config);
            inputs_with(req, project, config)
        }
        other => other,
    }
}

fn inputs_with(req: &Request, project: Project, config: ProjectConfig) -> Result<Inputs> {
    let range = crate::cmd::resolve_range(req.range, Some(&config))?;
    let apps = if config.apps.is_empty() {
        let command = req.command.clone().or_else(|| config.command.clone());
        vec![AppInput {
            name: req.name.clone().or_else(|| config.name.clone()),
            default_name: project.dir_name(),
            cwd: project.dir.clone(),
            detection: detect_in(&project, command)?,
            preferred: config.port,
            env: serde_json::Map::new(),
        }]
    } else {
        let toml = project.dir.join(crate::config::FILE_NAME);
        for (flag, set) in [
            ("--name", req.name.is_some()),
            ("--command", req.command.is_some()),
        ] {
            if set {
                return Err(InputError::Usage(format!(
                    "`{flag}` cannot apply to the several [[apps]] of `{}`; set it in their tables",
                    toml.display()
                ))
                .into());
            }
        }
        let mut apps = Vec::new();
        for app in &config.apps {
            let rel = app.dir.clone().unwrap_or_else(|| ".".to_string());
            let outside = || {
                InputError::Usage(format!(
                    "`{}`: [[apps]] `dir = \"{rel}\"` is not a directory inside the project",
                    toml.display()
                ))
            };
            let sub = Project::open(&project.dir.join(&rel)).map_err(|_| outside())?;
            if !sub.dir.starts_with(&project.dir) {
                return Err(outside().into());
            }
            apps.push(AppInput {
                name: app.name.clone(),
                default_name: sub.dir_name(),
                detection: detect_in(&sub, app.command.clone())?,
                cwd: sub.dir,
                preferred: app.port,
                env: app.env.clone(),
            });
        }
        apps
    };
    if req.port.is_some() && req.only.is_none() && apps.len() > 1 {
        return Err(InputError::Usage(
            "`--port` needs one app; this project has several [[apps]]: set `port` in their tables"
                .into(),
        )
        .into());
    }
    let flox = config
        .flox
        .unwrap_or_else(|| project.exists(".flox/env/manifest.toml"));
    Ok(Inputs {
        project,
        config,
        apps,
        flox,
        existing: None,
        range,
    })
}

fn read_existing(file: &Path) -> Result<Option<Existing>> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(Some(read::classify(
            String::from_utf8_lossy(&bytes).into_owned(),
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(anyhow::Error::new(err).context(format!("cannot read `{}`", file.display())))
        }
    }
}

/// The PM2 name of `app`. An explicit one (`--name`, `name` in buildflowz.toml or `[[apps]]`) is
/// refused when another project uses it. Otherwise: the name already in the file (a single-app
/// project), else the directory's, disambiguated when another project uses it.
fn choose_name(
    app: &AppInput,
    inputs: &Inputs,
    own: &[PathBuf],
    world: &World,
    notes: &mut Vec<String>,
) -> Result<String> {
    if let Some(name) = app.name.clone() {
        if let Some(why) = crate::pm2::unaddressable(&name) {
            return Err(InputError::Usage(format!(
                "the app name `{name}` cannot be used: {why}; choose another with `--name` or `name` in buildflowz.toml"
            ))
            .into());
        }
        if let Some(other) = world.name_used_elsewhere(&name, own) {
            return Err(RuntimeError::NameTaken {
                name,
                other: other.display().to_string(),
            }
            .into());
        }
        return Ok(name);
    }
    let from_file = inputs
        .existing
        .as_ref()
        .filter(|_| inputs.apps.len() == 1)
        .and_then(|e| match e.apps.as_slice() {
            [only] => only.name.clone(),
            _ => None,
        });
    let raw = from_file.unwrap_or_else(|| app.default_name.clone());
    let base = crate::pm2::addressable(&raw);
    if base != raw {
        notes.push(format!(
            "PM2 cannot address the name `{raw}` ({}); the app is named `{base}` (set `name` in buildflowz.toml to choose)",
            crate::pm2::unaddressable(&raw).unwrap_or("it has spaces or commas")
        ));
    }
    let Some(other) = world.name_used_elsewhere(&base, own) else {
        return Ok(base);
    };
    let parent = app
        .cwd
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    let candidates = parent
        .map(|p| format!("{base}-{p}"))
        .into_iter()
        .chain((2..).map(|i| format!("{base}-{i}")));
    for candidate in candidates {
        if world.name_used_elsewhere(&candidate, own).is_none() {
            notes.push(format!(
                "the name `{base}` is used by `{}`; this project's app is named `{candidate}` (set `name` in buildflowz.toml to choose)",
                other.display()
            ));
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded list of candidates")
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

/// Each app's port, and the port it had. Ports the apps already have (or were asked for) are
/// settled for every app first, then preferred ports, then the lowest free ones: adding an app, or
/// reordering `[[apps]]`, never moves another app off its port.
fn choose_ports(
    req: &Request,
    inputs: &Inputs,
    names: &[String],
    own: &[PathBuf],
    world: &World,
) -> Result<Vec<(Choice, Option<u16>)>> {
    let single = inputs.apps.len() == 1;
    let current: Vec<Option<u16>> = names
        .iter()
        .map(|n| inputs.existing.as_ref().and_then(|e| e.port_of(n, single)))
        .collect();
    let targeted = |name: &String| req.only.as_ref().is_none_or(|o| o == name);
    // What each app may not take besides its siblings' ports: the port `bump` moves it off.
    let avoid: Vec<Option<(u16, Holder)>> = names
        .iter()
        .zip(&current)
        .map(|(n, c)| {
            c.filter(|_| req.bump && targeted(n))
                .map(|p| (p, Holder::Current))
        })
        .collect();
    let mut chosen: Vec<Option<Choice>> = vec![None; names.len()];
    let mut passed: Vec<Vec<(u16, Holder)>> = vec![Vec::new(); names.len()];
    let mut taken: Vec<(u16, Holder)> = Vec::new();
    let reserved = |taken: &[(u16, Holder)], i: usize| -> Vec<(u16, Holder)> {
        taken.iter().cloned().chain(avoid[i].clone()).collect()
    };
    let stages = [
        |req: &Request, bump: bool, current: Option<u16>, _pref: Option<u16>| Wish {
            requested: req.port,
            current: current.filter(|_| !bump),
            preferred: None,
        },
        |_req: &Request, bump: bool, _current: Option<u16>, pref: Option<u16>| Wish {
            requested: None,
            current: None,
            preferred: pref.filter(|_| !bump),
        },
    ];
    for stage in stages {
        for (i, name) in names.iter().enumerate() {
            if chosen[i].is_some() {
                continue;
            }
            let bump = req.bump && targeted(name);
            let mut wish = stage(req, bump, current[i], inputs.apps[i].preferred);
            if !targeted(name) {
                wish.requested = None;
            }
            match ports::wished(world, own, &wish, &reserved(&taken, i))? {
                Wished::Got(mut c) => {
                    c.passed_over.splice(0..0, std::mem::take(&mut passed[i]));
                    taken.push((c.port, Holder::Sibling { name: name.clone() }));
                    chosen[i] = Some(c);
                }
                Wished::PassedOver(p) => passed[i].extend(p),
            }
        }
    }
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let choice = match chosen[i].take() {
            Some(c) => c,
            None => {
                let c = ports::lowest(
                    world,
                    own,
                    inputs.range,
                    &reserved(&taken, i),
                    std::mem::take(&mut passed[i]),
                )?;
                taken.push((c.port, Holder::Sibling { name: name.clone() }));
                c
            }
        };
        out.push((choice, current[i]));
    }
    Ok(out)
}

/// The pure middle: choose names and ports, render the file, update the registry.
fn plan(req: &Request, inputs: Inputs, world: &World, mut registry: Registry) -> Result<Plan> {
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
        }
        .into());
    }

    let mut notes = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for app in &inputs.apps {
        notes.extend(app.detection.notes.iter().cloned());
        let name = choose_name(app, &inputs, &own, world, &mut notes)?;
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
    let choices = choose_ports(req, &inputs, &names, &own, world)?;

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
        for (port, holder) in &choice.passed_over {
            notes.push(format!(
                "port {port} is taken by {holder}; moving `{name}` to {}",
                choice.port
            ));
        }

        let command = app.detection.launch.command_line(choice.port);
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
            push(k, Value::from(*v));
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
    Ok(Plan {
        file,
        old: inputs.existing,
        new,
        report,
        registry,
        notes,
    })
}

/// Configure the project of `req`: gather, plan, and (outside `--dry-run`) write.
pub fn configure(ctx: &Context, req: &Request) -> Result<Plan> {
    let mut inputs = inputs(req)?;
    let _lock = if req.dry_run {
        None
    } else {
        Some(registry::lock(&ctx.state)?)
    };
    // Read under the lock: another pm2-port may be writing this very file.
    inputs.existing = read_existing(&inputs.project.dir.join(FILE_NAME))?;
    if req.bump && inputs.existing.is_none() {
        return Err(RuntimeError::NotConfigured {
            dir: inputs.project.dir.clone(),
        }
        .into());
    }
    let (world, loaded) = world::gather(ctx, &inputs.own_dirs())?;
    let registry = loaded.registry;
    let before = registry.clone();
    let plan = plan(req, inputs, &world, registry)?;
    if !req.dry_run {
        if plan.changed() {
            if let Some(old) = &plan.old
                && old.owner == Owner::Hand
            {
                let bak = write::backup(&plan.file, &old.text)?;
                note!("saved the hand-written file as `{}`", bak.display());
            }
            write::atomic_write(&plan.file, &plan.new)?;
        }
        if plan.registry != before
            || loaded.keep_broken_as.is_some()
            || !ctx.state.join(registry::REGISTRY_FILE).exists()
        {
            registry::save(&ctx.state, &plan.registry, loaded.keep_broken_as.as_deref())?;
        }
    }
    Ok(plan)
}

/// A unified diff of the file, as `git diff` would show it.
pub fn unified_diff(plan: &Plan) -> String {
    let old = plan.old.as_ref().map_or("", |o| o.text.as_str());
    let a = if plan.old.is_some() {
        format!("a/{FILE_NAME}")
    } else {
        "/dev/null".to_string()
    };
    let body = similar::TextDiff::from_lines(old, &plan.new)
        .unified_diff()
        .context_radius(3)
        .to_string();
    format!("--- {a}\n+++ b/{FILE_NAME}\n{body}")
}

/// Print notes, the diff of a dry run, and the report (JSON or human).
pub fn print(plan: &Plan, json: bool) -> Result<()> {
    for note in &plan.notes {
        note!("{note}");
    }
    if plan.report.dry_run && plan.changed() {
        let diff = unified_diff(plan);
        if json {
            eprint!("{diff}");
        } else {
            out!("{diff}")?;
        }
    }
    if json {
        outln!("{}", serde_json::to_string(&plan.report)?)?;
        return Ok(());
    }
    if crate::output::level() < crate::output::NORMAL {
        return Ok(());
    }
    let verb = match (plan.changed(), plan.report.dry_run) {
        (false, _) => "unchanged",
        (true, true) => "would write",
        (true, false) => "wrote",
    };
    outln!("{verb} {}", plan.file.display())?;
    for app in &plan.report.apps {
        let what: Vec<&str> = [app.framework, app.package_manager]
            .into_iter()
            .flatten()
            .chain(app.flox.then_some("flox"))
            .collect();
        let moved = app
            .previous_port
            .map_or(String::new(), |p| format!(" (was {p})"));
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("  [{}]", what.join(", "))
        };
        outln!(
            "  {}  http://localhost:{}{moved}  {}{what}",
            app.name,
            app.port,
            app.command
        )?;
    }
    Ok(())
}
