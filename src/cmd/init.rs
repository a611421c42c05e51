//! `pm2-port init`: detect the dev command, choose the port, write `ecosystem.config.cjs`.
//!
//! Gather (files, PM2, sockets) → plan (a pure function of what was gathered) → act (write, or
//! show the diff for `--dry-run`).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::cli::InitArgs;
use crate::config::ProjectConfig;
use crate::detect::{self, Detection, Launch, shell};
use crate::ecosystem::read::{self, Existing, Owner};
use crate::ecosystem::render::{self, AppSpec};
use crate::ecosystem::{FILE_NAME, write};
use crate::error::RuntimeError;
use crate::ports::{self, Choice, PortRange, Reason, Wish, World};
use crate::project::Project;
use crate::{pm2, world};

/// `init --json`: product.md section 2.1.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub changed: bool,
    pub dry_run: bool,
    pub apps: Vec<AppReport>,
}

#[derive(Debug, Serialize)]
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

/// Everything `init` needs to know, read once.
pub struct Gathered {
    pub project: Project,
    pub config: ProjectConfig,
    pub detection: Detection,
    pub flox: bool,
    pub existing: Option<Existing>,
    pub world: World,
    pub range: PortRange,
}

/// What `init` will do.
pub struct Plan {
    pub file: PathBuf,
    pub old: Option<Existing>,
    pub new: String,
    pub choice: Choice,
    pub report: Report,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.report.changed
    }
}

pub fn gather(args: &InitArgs) -> Result<Gathered> {
    let project = Project::open(&args.dir)?;
    let config = project.config()?.unwrap_or_default();
    let range = super::resolve_range(args.range.range, Some(&config))?;
    let command = args.command.clone().or_else(|| config.command.clone());
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
                // The interactive prompt comes here when stdin is a terminal and --yes is absent.
                let _interactive = !args.yes && std::io::stdin().is_terminal();
                return Err(RuntimeError::NoDevCommand {
                    dir: project.dir.clone(),
                }
                .into());
            }
        },
    };
    let flox = config
        .flox
        .unwrap_or_else(|| detect::Files::exists(&project, ".flox/env/manifest.toml"));
    let file = project.dir.join(FILE_NAME);
    let existing = match std::fs::read(&file) {
        Ok(bytes) => Some(read::classify(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(
                anyhow::Error::new(err).context(format!("cannot read `{}`", file.display()))
            );
        }
    };
    let world = world::gather(&pm2::cli::home())?;
    Ok(Gathered {
        project,
        config,
        detection,
        flox,
        existing,
        world,
        range,
    })
}

/// The pure middle: choose the port and render the file.
pub fn plan(g: Gathered, args: &InitArgs) -> Result<Plan> {
    let dir = &g.project.dir;
    let file = dir.join(FILE_NAME);
    let name = args
        .name
        .clone()
        .or_else(|| g.config.name.clone())
        .unwrap_or_else(|| g.project.dir_name());
    let current = g.existing.as_ref().and_then(|e| e.port_of(&name));
    if let Some(existing) = &g.existing
        && existing.owner == Owner::Hand
        && !args.force
    {
        return Err(RuntimeError::HandWrittenFile {
            path: file,
            port_note: current.map_or(String::new(), |p| format!(" (it sets PORT {p})")),
        }
        .into());
    }
    let wish = Wish {
        requested: args.port,
        current,
        preferred: g.config.port,
    };
    let choice = ports::choose(&g.world, dir, &wish, g.range, &[])?;

    let mut notes = g.detection.notes.clone();
    for (port, holder) in &choice.passed_over {
        notes.push(format!(
            "port {port} is taken by {holder}; moving `{name}` to {}",
            choice.port
        ));
    }
    if g.existing
        .as_ref()
        .is_some_and(|e| e.owner == Owner::BuildFlowz)
    {
        notes.push(format!(
            "adopting BuildFlowz's `{}` (port kept unless taken)",
            file.display()
        ));
    }

    let command = g.detection.launch.command_line(choice.port);
    let command_line = if g.flox {
        let inner = match &g.detection.launch {
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

    let mut pm2_opts: Vec<(String, Value)> = g.config.pm2.clone().into_iter().collect();
    let mut take = |key: &str, default: bool| {
        pm2_opts
            .iter()
            .position(|(k, _)| k == key)
            .map_or(Value::Bool(default), |i| pm2_opts.remove(i).1)
    };
    let autorestart = take("autorestart", true);
    let watch = take("watch", false);
    let mut env: Vec<(String, Value)> = g
        .detection
        .env
        .iter()
        .filter(|(k, _)| !g.config.env.contains_key(*k))
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    env.extend(g.config.env.clone());

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
    let previous_port = current.filter(|p| *p != choice.port);
    let report = Report {
        file: file.clone(),
        changed: g.existing.as_ref().is_none_or(|o| o.text != new),
        dry_run: args.dry_run,
        apps: vec![AppReport {
            name,
            cwd: dir.clone(),
            port: choice.port,
            previous_port,
            command,
            framework: g.detection.framework,
            package_manager: g.detection.package_manager.map(|p| p.as_str()),
            flox: g.flox,
        }],
    };
    Ok(Plan {
        file,
        old: g.existing,
        new,
        choice,
        report,
        notes,
    })
}

/// Write the file (or show the diff), then report.
pub fn act(plan: &Plan, args: &InitArgs) -> Result<()> {
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    let old_text = plan.old.as_ref().map_or("", |o| o.text.as_str());
    if args.dry_run {
        if plan.changed() {
            let diff = unified_diff(old_text, &plan.new, plan.old.is_some());
            if args.json {
                eprint!("{diff}");
            } else {
                print!("{diff}");
            }
        }
    } else if plan.changed() {
        if let Some(old) = &plan.old
            && old.owner == Owner::Hand
        {
            let bak = write::backup(&plan.file, &old.text)?;
            eprintln!("note: saved the hand-written file as `{}`", bak.display());
        }
        write::atomic_write(&plan.file, &plan.new)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&plan.report)?);
    } else {
        print_human(plan, args.dry_run);
    }
    Ok(())
}

fn print_human(plan: &Plan, dry_run: bool) {
    let verb = match (plan.changed(), dry_run) {
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
    if plan.choice.reason == Reason::Lowest && plan.old.is_none() && !dry_run {
        println!("start it with `pm2 start {}`", plan.file.display());
    }
}

/// A unified diff of the file, as `git diff` would show it.
fn unified_diff(old: &str, new: &str, existed: bool) -> String {
    let a = if existed {
        format!("a/{FILE_NAME}")
    } else {
        "/dev/null".to_string()
    };
    let body = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .to_string();
    format!("--- {a}\n+++ b/{FILE_NAME}\n{body}")
}

pub fn run(args: &InitArgs) -> Result<()> {
    let gathered = gather(args)?;
    let plan = plan(gathered, args)?;
    act(&plan, args)
}
