//! Choosing each app's PM2 name: explicit names are checked, derived ones made addressable and
//! unique on the server.

use std::path::PathBuf;

use anyhow::Result;

use super::inputs::{AppInput, Inputs};
use crate::error::{InputError, RuntimeError};
use crate::model::World;

/// The PM2 name of `app`. An explicit one (`--name`, `name` in buildflowz.toml or `[[apps]]`) is
/// refused when another project uses it. Otherwise: the name already in the file (a single-app
/// project), else the directory's, disambiguated when another project uses it.
pub(super) fn choose_name(
    app: &AppInput,
    inputs: &Inputs,
    own: &[PathBuf],
    world: &World,
    notes: &mut Vec<String>,
) -> Result<String> {
    if let Some(name) = app.name.clone() {
        if let Some(why) = crate::pm2::names::unaddressable(&name) {
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
    let base = crate::pm2::names::addressable(&raw);
    if base != raw {
        notes.push(format!(
            "PM2 cannot address the name `{raw}` ({}); the app is named `{base}` (set `name` in buildflowz.toml to choose)",
            crate::pm2::names::unaddressable(&raw).unwrap_or("it has spaces or commas")
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
