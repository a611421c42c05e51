//! Asking the user, when detection found no dev command and a terminal is there to ask on:
//! choose a package.json script, the workspace's packages, or type a command; then offer to save
//! the answer in buildflowz.toml (with `toml_edit`, so the file's comments and order survive).

use std::path::Path;

use anyhow::{Context, Result};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Select};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::buildflowz_toml::{self, AppConfig, ProjectConfig};
use crate::detect::node;
use crate::error::InputError;
use crate::sys::files::{self, atomic_write};
use crate::sys::project::Project;

/// What the user chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Command(String),
    /// One app per workspace package (relative directories).
    Apps(Vec<String>),
}

impl Answer {
    /// Apply the answer to the project's settings, as if buildflowz.toml had said it.
    pub fn apply(&self, config: &mut ProjectConfig) {
        match self {
            Answer::Command(cmd) => config.command = Some(cmd.clone()),
            Answer::Apps(dirs) => {
                config.apps = dirs
                    .iter()
                    .map(|d| AppConfig {
                        dir: Some(d.clone()),
                        ..AppConfig::default()
                    })
                    .collect();
            }
        }
    }
}

fn theme() -> Box<dyn Theme> {
    if crate::style::stderr_color() {
        Box::new(ColorfulTheme::default())
    } else {
        Box::new(SimpleTheme)
    }
}

fn cancelled() -> anyhow::Error {
    InputError::Usage("cancelled at the prompt; nothing was written".into()).into()
}

/// Ask for the dev command of `project`. `can_save`: offer to write buildflowz.toml.
pub fn ask(project: &Project, can_save: bool) -> Result<Answer> {
    let theme = theme();
    let scripts = node::scripts(project)?;
    let workspace = node::workspace::apps(project)?;
    eprintln!(
        "pm2-port found no single dev command for `{}`.",
        project.dir.display()
    );
    let mut items: Vec<String> = Vec::new();
    let mut answers: Vec<Option<Answer>> = Vec::new();
    if let Some((pm, scripts)) = &scripts {
        let width = scripts.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, text) in scripts {
            items.push(format!("{name:<width$}  {text}"));
            answers.push(Some(Answer::Command(node::run_script_line(*pm, name))));
        }
    }
    // At a root that holds several apps, offering them is the answer to start from.
    let default = if workspace.is_empty() { 0 } else { items.len() };
    if !workspace.is_empty() {
        items.push(format!(
            "each workspace package with a dev script as its own app ({})",
            workspace.join(", ")
        ));
        answers.push(Some(Answer::Apps(workspace.clone())));
    }
    items.push("type a command…".to_string());
    answers.push(None);

    let choice = Select::with_theme(theme.as_ref())
        .with_prompt("How is this project's dev server started?")
        .items(&items)
        .default(default)
        .interact_opt()
        .context("cannot read the answer from the terminal")?
        .ok_or_else(cancelled)?;
    let answer = match answers[choice].clone() {
        Some(a) => a,
        None => {
            let cmd: String = Input::with_theme(theme.as_ref())
                .with_prompt("Dev command (a shell line; the port is in $PORT)")
                .interact_text()
                .context("cannot read the answer from the terminal")?;
            Answer::Command(cmd.trim().to_string())
        }
    };
    let toml = project.dir.join(buildflowz_toml::FILE_NAME);
    if can_save
        && Confirm::with_theme(theme.as_ref())
            .with_prompt(format!("Save this in {}?", toml.display()))
            .default(true)
            .interact_opt()
            .context("cannot read the answer from the terminal")?
            .ok_or_else(cancelled)?
    {
        save(&toml, &answer)?;
        say!("saved in `{}`", toml.display());
    }
    Ok(answer)
}

/// Write the answer into buildflowz.toml, keeping everything else of the file as it was.
pub fn save(path: &Path, answer: &Answer) -> Result<()> {
    let text = files::read_text(path)?.unwrap_or_default();
    let new = edited(&text, answer).with_context(|| format!("cannot edit `{}`", path.display()))?;
    atomic_write(path, &new)
}

/// The text of buildflowz.toml with the answer added (pure, for tests).
pub fn edited(text: &str, answer: &Answer) -> Result<String> {
    let mut doc: DocumentMut = text.parse()?;
    match answer {
        Answer::Command(cmd) => {
            doc["command"] = value(cmd.as_str());
        }
        Answer::Apps(dirs) => {
            let mut apps = ArrayOfTables::new();
            for dir in dirs {
                let mut t = Table::new();
                t["dir"] = value(dir.as_str());
                apps.push(t);
            }
            doc["apps"] = Item::ArrayOfTables(apps);
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAND: &str = "# Settings for this project, by hand.\nflox = false   # no flox here\n\n[env]\n# logs\nDEBUG = \"app:*\"  # all of them\n";

    #[test]
    fn a_command_keeps_comments_and_order() {
        let out = edited(HAND, &Answer::Command("npm run watch".into())).unwrap();
        assert_eq!(
            out,
            "# Settings for this project, by hand.\nflox = false   # no flox here\ncommand = \"npm run watch\"\n\n[env]\n# logs\nDEBUG = \"app:*\"  # all of them\n"
        );
    }

    #[test]
    fn apps_are_appended_as_tables() {
        let out = edited(
            HAND,
            &Answer::Apps(vec!["packages/web".into(), "packages/api".into()]),
        )
        .unwrap();
        assert!(out.starts_with(HAND), "{out}");
        assert!(
            out.ends_with("[[apps]]\ndir = \"packages/web\"\n\n[[apps]]\ndir = \"packages/api\"\n"),
            "{out}"
        );
        let c = crate::buildflowz_toml::parse(Path::new("b.toml"), &out).unwrap();
        assert_eq!(c.apps.len(), 2);
    }
}
