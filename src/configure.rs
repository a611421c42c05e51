//! Configuring one project: the engine behind `init` and `bump` (and `start`).
//!
//! Gather (the project's files, PM2, sockets, the registry) → plan (a pure function of what was
//! gathered: name, port, rendered file) → act (write the file and the registry, or show the diff
//! for `--dry-run`). Outside `--dry-run` the registry lock is held from gathering to the last write.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::config::ProjectConfig;
use crate::detect::{self, Detection, Files, Launch, shell};
use crate::ecosystem::read::{self, Existing, Owner};
use crate::ecosystem::render::{self, AppSpec};
use crate::ecosystem::{FILE_NAME, write};
use crate::error::RuntimeError;
use crate::ports::{self, Holder, PortRange, Wish, World};
use crate::project::Project;
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
    /// `bump`: move the project off its current port.
    pub bump: bool,
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

/// The project's side of what was gathered.
struct Inputs {
    project: Project,
    config: ProjectConfig,
    detection: Detection,
    flox: bool,
    /// Read under the lock, after detection.
    existing: Option<Existing>,
    range: PortRange,
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

fn inputs(req: &Request) -> Result<Inputs> {
    let project = Project::open(&req.dir)?;
    let config = project.config()?.unwrap_or_default();
    let range = crate::cmd::resolve_range(req.range, Some(&config))?;
    let command = req.command.clone().or_else(|| config.command.clone());
    let detection = match command {
        Some(line) => Detection {
            framework: None,
            package_manager: None,
            launch: Launch::Shell(line),
            env: Vec::new(),
            notes: Vec::new(),
        },
        None => match detect::detect(&project)? {
            Some(d) => d,
            None => {
                return Err(RuntimeError::NoDevCommand {
                    dir: project.dir.clone(),
                }
                .into());
            }
        },
    };
    let flox = config
        .flox
        .unwrap_or_else(|| project.exists(".flox/env/manifest.toml"));
    Ok(Inputs {
        project,
        config,
        detection,
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

/// The app's PM2 name: `--name`, else `name` in buildflowz.toml (both refused when another
/// directory uses them), else the name already in the file, else the directory's name; the last
/// two are disambiguated when another directory uses them.
fn choose_name(
    req: &Request,
    inputs: &Inputs,
    world: &World,
    notes: &mut Vec<String>,
) -> Result<String> {
    let dir = &inputs.project.dir;
    if let Some(name) = req.name.clone().or_else(|| inputs.config.name.clone()) {
        if name.is_empty() {
            return Err(crate::error::InputError::Usage("the app name is empty".into()).into());
        }
        if let Some(other) = world.name_used_elsewhere(&name, dir) {
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
        .and_then(|e| match e.apps.as_slice() {
            [only] => only.name.clone(),
            _ => None,
        });
    let base = from_file.unwrap_or_else(|| inputs.project.dir_name());
    let Some(other) = world.name_used_elsewhere(&base, dir) else {
        return Ok(base);
    };
    let parent = dir
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    let candidates = parent
        .map(|p| format!("{base}-{p}"))
        .into_iter()
        .chain((2..).map(|i| format!("{base}-{i}")));
    for candidate in candidates {
        if world.name_used_elsewhere(&candidate, dir).is_none() {
            notes.push(format!(
                "the name `{base}` is used by `{}`; this project's app is named `{candidate}` (set `name` in buildflowz.toml to choose)",
                other.display()
            ));
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded list of candidates")
}

/// The pure middle: choose the name and port, render the file, update the registry.
fn plan(req: &Request, inputs: Inputs, world: &World, mut registry: Registry) -> Result<Plan> {
    let dir = inputs.project.dir.clone();
    let file = dir.join(FILE_NAME);
    let mut notes = inputs.detection.notes.clone();
    let name = choose_name(req, &inputs, world, &mut notes)?;
    let current = inputs.existing.as_ref().and_then(|e| e.port_of(&name));
    if let Some(existing) = &inputs.existing
        && existing.owner == Owner::Hand
        && !req.force
    {
        return Err(RuntimeError::HandWrittenFile {
            path: file,
            port_note: current.map_or(String::new(), |p| format!(" (it sets PORT {p})")),
        }
        .into());
    }
    let (wish, avoid) = if req.bump {
        let avoid: Vec<(u16, Holder)> = current.map(|p| (p, Holder::Current)).into_iter().collect();
        (
            Wish {
                requested: req.port,
                ..Wish::default()
            },
            avoid,
        )
    } else {
        (
            Wish {
                requested: req.port,
                current,
                preferred: inputs.config.port,
            },
            Vec::new(),
        )
    };
    let choice = ports::choose(world, Some(&dir), &wish, inputs.range, &avoid)?;
    for (port, holder) in &choice.passed_over {
        notes.push(format!(
            "port {port} is taken by {holder}; moving `{name}` to {}",
            choice.port
        ));
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

    let command = inputs.detection.launch.command_line(choice.port);
    let command_line = if inputs.flox {
        let inner = match &inputs.detection.launch {
            // A user's line may be a compound command: give flox one program to run.
            Launch::Shell(line) => format!("bash -c {}", shell::quote_word(line)),
            Launch::Words { .. } => command.clone(),
        };
        format!(
            "flox activate -d {} -- {inner}",
            shell::quote_word(&dir.to_string_lossy())
        )
    } else {
        command.clone()
    };

    let mut pm2_opts: Vec<(String, Value)> = inputs.config.pm2.clone().into_iter().collect();
    let mut take = |key: &str, default: bool| {
        pm2_opts
            .iter()
            .position(|(k, _)| k == key)
            .map_or(Value::Bool(default), |i| pm2_opts.remove(i).1)
    };
    let autorestart = take("autorestart", true);
    let watch = take("watch", false);
    let mut env: Vec<(String, Value)> = inputs
        .detection
        .env
        .iter()
        .filter(|(k, _)| !inputs.config.env.contains_key(*k))
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    env.extend(inputs.config.env.clone());

    let spec = AppSpec {
        name: name.clone(),
        cwd: dir.to_string_lossy().into_owned(),
        command_line,
        port: choice.port,
        env,
        autorestart,
        watch,
        pm2: pm2_opts,
    };
    let new = render::render(std::slice::from_ref(&spec));
    registry.projects.insert(
        dir.clone(),
        Entry {
            apps: vec![RegApp {
                name: name.clone(),
                port: choice.port,
            }],
        },
    );
    let report = Report {
        file: file.clone(),
        changed: inputs.existing.as_ref().is_none_or(|o| o.text != new),
        dry_run: req.dry_run,
        apps: vec![AppReport {
            name,
            cwd: dir,
            port: choice.port,
            previous_port: current.filter(|p| *p != choice.port),
            command,
            framework: inputs.detection.framework,
            package_manager: inputs.detection.package_manager.map(|p| p.as_str()),
            flox: inputs.flox,
        }],
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
    let (world, registry) = world::gather(ctx, Some(&inputs.project.dir), !req.dry_run)?;
    let before = registry.clone();
    let plan = plan(req, inputs, &world, registry)?;
    if !req.dry_run {
        if plan.changed() {
            if let Some(old) = &plan.old
                && old.owner == Owner::Hand
            {
                let bak = write::backup(&plan.file, &old.text)?;
                eprintln!("note: saved the hand-written file as `{}`", bak.display());
            }
            write::atomic_write(&plan.file, &plan.new)?;
        }
        if plan.registry != before || !ctx.state.join(registry::REGISTRY_FILE).exists() {
            registry::save(&ctx.state, &plan.registry)?;
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
        eprintln!("note: {note}");
    }
    if plan.report.dry_run && plan.changed() {
        let diff = unified_diff(plan);
        if json {
            eprint!("{diff}");
        } else {
            print!("{diff}");
        }
    }
    if json {
        println!("{}", serde_json::to_string(&plan.report)?);
        return Ok(());
    }
    let verb = match (plan.changed(), plan.report.dry_run) {
        (false, _) => "unchanged",
        (true, true) => "would write",
        (true, false) => "wrote",
    };
    println!("{verb} {}", plan.file.display());
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
        println!(
            "  {}  http://localhost:{}{moved}  {}{what}",
            app.name, app.port, app.command
        );
    }
    Ok(())
}
