//! Asking the user, when detection found no dev command and a terminal is there to ask on:
//! choose a package.json script, the workspace's packages, or type a command; then whether to
//! save the answer in buildflowz.toml (which the command's plan then writes).

use anyhow::{Context, Result};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Select};

use crate::buildflowz_toml;
use crate::buildflowz_toml::Answer;
use crate::detect::node;
use crate::error::InputError;
use crate::sys::project::Project;

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
pub fn ask(project: &Project, can_save: bool) -> Result<(Answer, bool)> {
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
    // Saving is the plan's to do, with the rest of what the command writes.
    let save = can_save
        && Confirm::with_theme(theme.as_ref())
            .with_prompt(format!("Save this in {}?", toml.display()))
            .default(true)
            .interact_opt()
            .context("cannot read the answer from the terminal")?
            .ok_or_else(cancelled)?;
    Ok((answer, save))
}
