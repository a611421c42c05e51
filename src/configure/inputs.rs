//! Gathering a project's side: its settings, each app's directory and detected dev command (asking
//! on a terminal when nothing is found), and the ecosystem file already there.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use super::Request;
use crate::buildflowz_toml::ProjectConfig;
use crate::detect::{self, Detection, Files, Launch};
use crate::ecosystem::read::{self, Existing};
use crate::error::{InputError, RuntimeError};
use crate::ports::PortRange;
use crate::sys::project::Project;

/// One app of the project, as read from its manifests.
pub(super) struct AppInput {
    /// `--name`, `name` in buildflowz.toml or in `[[apps]]`.
    pub(super) name: Option<String>,
    /// The name to derive from when none is given: the directory's.
    pub(super) default_name: String,
    /// Its working directory (absolute).
    pub(super) cwd: PathBuf,
    pub(super) detection: Detection,
    /// `port` in buildflowz.toml or `[[apps]]`.
    pub(super) preferred: Option<u16>,
    /// The app's own `[env]` (over the project's).
    pub(super) env: serde_json::Map<String, Value>,
    /// The address its dev server is told to listen on: `host` in `[[apps]]` or buildflowz.toml,
    /// else loopback.
    pub(super) host: std::net::IpAddr,
}

/// The project's side of what was gathered.
pub(super) struct Inputs {
    pub(super) project: Project,
    pub(super) config: ProjectConfig,
    pub(super) apps: Vec<AppInput>,
    pub(super) flox: bool,
    /// Read under the lock, after detection.
    pub(super) existing: Option<Existing>,
    /// buildflowz.toml as it was read, to see under the lock whether it changed meanwhile.
    pub(super) config_text: Option<String>,
    pub(super) range: PortRange,
}

impl Inputs {
    /// The project's directory and its apps': what "own" means for ports and names.
    pub(super) fn own_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.project.dir.clone()];
        for app in &self.apps {
            if !dirs.contains(&app.cwd) {
                dirs.push(app.cwd.clone());
            }
        }
        dirs
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

/// [`detect_in`], and when it finds nothing, the command of the project's ecosystem file (its only
/// app's `bash -c` line: a BuildFlowz file, or pm2-port's own), kept as the user's.
fn detect_or_keep(project: &Project, command: Option<String>) -> Result<Detection> {
    match detect_in(project, command) {
        Err(err)
            if matches!(
                err.downcast_ref::<RuntimeError>(),
                Some(RuntimeError::NoDevCommand { .. })
            ) =>
        {
            let kept = project
                .read(crate::ecosystem::FILE_NAME)?
                .map(read::classify)
                .and_then(|existing| existing.command);
            let Some(line) = kept else {
                return Err(err);
            };
            Ok(Detection {
                framework: None,
                package_manager: None,
                notes: vec![format!(
                    "no dev command detected: `{}`'s own command is kept ({line}); \
                     `--command` or `command` in buildflowz.toml replaces it",
                    crate::ecosystem::FILE_NAME
                )],
                launch: Launch::Shell(line),
                env: Vec::new(),
            })
        }
        other => other,
    }
}

pub(super) fn inputs(req: &Request) -> Result<Inputs> {
    let project = Project::open(&req.dir)?;
    let mut config = project.config()?.unwrap_or_default();
    // The command asked, after a first try found nothing: the answer stands in for
    // buildflowz.toml's word.
    if let Some((answer, _)) = &req.answer {
        answer.apply(&mut config);
    }
    let result = inputs_with(req, project.clone(), config);
    let mut inputs = result?;
    inputs.config_text = project.read(crate::buildflowz_toml::FILE_NAME)?;
    Ok(inputs)
}

/// Whether buildflowz.toml changed since the inputs were gathered (another pm2-port's `--force`
/// carried settings into it while this one waited for the lock).
pub(super) fn config_changed(inputs: &Inputs) -> Result<bool> {
    Ok(inputs.project.read(crate::buildflowz_toml::FILE_NAME)? != inputs.config_text)
}

fn inputs_with(req: &Request, project: Project, config: ProjectConfig) -> Result<Inputs> {
    let range = super::resolve_range(req.range, Some(&config))?;
    let apps = if config.apps.is_empty() {
        let command = req.command.clone().or_else(|| config.command.clone());
        vec![AppInput {
            name: req.name.clone().or_else(|| config.name.clone()),
            default_name: project.dir_name(),
            cwd: project.dir.clone(),
            detection: detect_or_keep(&project, command)?,
            preferred: config.port,
            env: serde_json::Map::new(),
            host: config
                .host_for(None)
                .unwrap_or(crate::buildflowz_toml::DEFAULT_HOST),
        }]
    } else {
        let toml = project.dir.join(crate::buildflowz_toml::FILE_NAME);
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
                host: config
                    .host_for(Some(app))
                    .unwrap_or(crate::buildflowz_toml::DEFAULT_HOST),
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
        config_text: None,
    })
}

pub(super) fn read_existing(file: &Path) -> Result<Option<Existing>> {
    Ok(crate::sys::files::read_text(file)?.map(read::classify))
}

/// Whether a file's command (in `$PORT` form) is not what detection gives: `--command` or
/// `command` in buildflowz.toml is the user's word and never differs.
fn differs_from_detection(launch: &Launch, command: &str, port: Option<u16>) -> bool {
    match launch {
        Launch::Shell(_) => false,
        launch => !read::same_command(
            &read::portable_command(&launch.command_line(port.unwrap_or(0)), port),
            command,
        ),
    }
}

/// A file of BuildFlowz's shape whose command is not what detection gives was edited by its
/// user (another command): it is theirs, so it is treated as hand-written, never stripped.
pub(super) fn settle_owner(inputs: &mut Inputs) {
    let Some(existing) = inputs.existing.as_mut() else {
        return;
    };
    let (Some(app), Some(command)) = (
        inputs.apps.first(),
        existing.extras.as_ref().and_then(|e| e.command.as_deref()),
    ) else {
        return;
    };
    let port = existing.apps.first().and_then(|a| a.port);
    if existing.owner == read::Owner::BuildFlowz
        && inputs.apps.len() == 1
        && differs_from_detection(&app.detection.launch, command, port)
    {
        existing.owner = read::Owner::Hand;
    }
}

/// The settings a hand-written file holds beyond pm2-port's own keys, as `env.KEY`, `pm2.KEY`,
/// `command` (the command only when detection would not give it anyway).
fn extras_to_carry(inputs: &Inputs) -> Option<(&read::Extras, Option<&str>)> {
    let existing = inputs.existing.as_ref()?;
    let extras = existing.extras.as_ref()?;
    if existing.owner != read::Owner::Hand || !inputs.config.apps.is_empty() {
        return None;
    }
    let port = existing.apps.first().and_then(|a| a.port);
    let app = inputs.apps.first()?;
    let command = extras
        .command
        .as_deref()
        .filter(|c| differs_from_detection(&app.detection.launch, c, port));
    (!extras.env.is_empty() || !extras.pm2.is_empty() || command.is_some())
        .then_some((extras, command))
}

/// What `--force` would carry, for the message that refuses a hand-written file.
pub(super) fn carry_note(inputs: &Inputs) -> String {
    let Some((extras, command)) = extras_to_carry(inputs) else {
        return String::new();
    };
    let keys: Vec<String> = command
        .map(|_| "command".to_string())
        .into_iter()
        .chain(extras.env.keys().map(|k| format!("env.{k}")))
        .chain(extras.pm2.keys().map(|k| format!("pm2.{k}")))
        .collect();
    format!(
        ", and what it sets beyond pm2-port's keys ({}) is carried into buildflowz.toml",
        keys.join(", ")
    )
}

/// `--force` over a hand-written file: carry what it sets beyond pm2-port's keys into
/// buildflowz.toml (keys the user set there already win), and into these inputs, so that the new
/// file keeps them. Returns what to write, or `None` when there is nothing to carry.
pub(super) fn carry_extras(inputs: &mut Inputs) -> Result<Option<crate::buildflowz_toml::Carried>> {
    // With [[apps]] the file's settings have no single app to go to: say so, keep them in `.bak`.
    if let Some(existing) = &inputs.existing
        && let Some(extras) = &existing.extras
        && existing.owner == read::Owner::Hand
        && !inputs.config.apps.is_empty()
        && !(extras.env.is_empty() && extras.pm2.is_empty())
    {
        let left = extras
            .env
            .keys()
            .map(|k| format!("env.{k}"))
            .chain(extras.pm2.keys().map(|k| format!("pm2.{k}")))
            .map(|k| format!("`{k}` (this project has [[apps]]: set it in their tables)"))
            .collect();
        return Ok(Some(crate::buildflowz_toml::Carried {
            text: inputs.config_text.clone().unwrap_or_default(),
            added: Vec::new(),
            left,
        }));
    }
    let Some((extras, command)) = extras_to_carry(inputs) else {
        return Ok(None);
    };
    let path = inputs.project.dir.join(crate::buildflowz_toml::FILE_NAME);
    let text = inputs
        .project
        .read(crate::buildflowz_toml::FILE_NAME)?
        .unwrap_or_default();
    let carried = crate::buildflowz_toml::carry(&path, &text, &extras.env, &extras.pm2, command)?;
    let config = crate::buildflowz_toml::parse(&path, &carried.text)?;
    if let (Some(line), None) = (&config.command, &inputs.config.command) {
        inputs.apps[0].detection = Detection {
            framework: None,
            package_manager: None,
            launch: Launch::Shell(line.clone()),
            env: Vec::new(),
            notes: Vec::new(),
        };
    }
    inputs.config = config;
    Ok(Some(carried))
}
