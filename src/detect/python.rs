//! Python projects: Django (`manage.py`), FastAPI and Flask (requirements.txt, pyproject.toml),
//! run from the project's virtualenv when it has one.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{Detection, Files, Launch};
use crate::config::line_col;
use crate::error::InputError;

/// The directory of the project's virtualenv executables (`.venv/bin/`), or `""` for `PATH`.
fn venv_bin(files: &dyn Files) -> &'static str {
    if files.exists(".venv/bin/python") {
        ".venv/bin/"
    } else if files.exists("venv/bin/python") {
        "venv/bin/"
    } else {
        ""
    }
}

fn python(files: &dyn Files) -> String {
    match venv_bin(files) {
        "" => "python3".to_string(),
        bin => format!("{bin}python"),
    }
}

pub fn django(files: &dyn Files) -> Result<Option<Detection>> {
    let Some(manage) = files.read("manage.py")? else {
        return Ok(None);
    };
    if !manage.contains("django") && !dependencies(files)?.contains("django") {
        return Ok(None);
    }
    let py = python(files);
    Ok(Some(Detection::new(
        "django",
        Launch::words(&[&py, "manage.py", "runserver"], &["127.0.0.1:{port}"]),
    )))
}

pub fn detect(files: &dyn Files) -> Result<Option<Detection>> {
    let deps = dependencies(files)?;
    let bin = venv_bin(files);
    if deps.contains("fastapi") {
        let Some(module) = [
            ("main.py", "main"),
            ("app.py", "app"),
            ("app/main.py", "app.main"),
            ("src/main.py", "src.main"),
        ]
        .iter()
        .find(|(file, _)| files.exists(file))
        .map(|(_, module)| format!("{module}:app")) else {
            return Ok(None);
        };
        let uvicorn = format!("{bin}uvicorn");
        return Ok(Some(Detection::new(
            "fastapi",
            Launch::words(&[&uvicorn, &module, "--reload"], &["--port", "{port}"]),
        )));
    }
    if deps.contains("flask") {
        let flask = format!("{bin}flask");
        return Ok(Some(Detection::new(
            "flask",
            Launch::words(&[&flask, "run"], &["--port", "{port}"]),
        )));
    }
    Ok(None)
}

/// Normalised names of the dependencies in requirements.txt and pyproject.toml.
fn dependencies(files: &dyn Files) -> Result<BTreeSet<String>> {
    let mut deps = BTreeSet::new();
    if let Some(text) = files.read("requirements.txt")? {
        deps.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty() && !l.starts_with('-'))
                .filter_map(requirement_name),
        );
    }
    if let Some(text) = files.read("pyproject.toml")? {
        let doc: toml_edit::DocumentMut = text.parse().map_err(|err: toml_edit::TomlError| {
            let (line, column) = err
                .span()
                .map_or((1, 1), |span| line_col(&text, span.start));
            InputError::Manifest {
                path: files.dir().join("pyproject.toml"),
                line,
                column,
                message: err.message().trim().to_string(),
            }
        })?;
        let strings = |item: Option<&toml_edit::Item>| -> Vec<String> {
            item.and_then(|i| i.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().and_then(requirement_name))
                        .collect()
                })
                .unwrap_or_default()
        };
        deps.extend(strings(
            doc.get("project").and_then(|p| p.get("dependencies")),
        ));
        if let Some(groups) = doc
            .get("project")
            .and_then(|p| p.get("optional-dependencies"))
            .and_then(|g| g.as_table_like())
        {
            for (_, group) in groups.iter() {
                deps.extend(strings(Some(group)));
            }
        }
        if let Some(poetry) = doc
            .get("tool")
            .and_then(|t| t.get("poetry"))
            .and_then(|p| p.get("dependencies"))
            .and_then(|d| d.as_table_like())
        {
            deps.extend(poetry.iter().map(|(k, _)| k.to_ascii_lowercase()));
        }
    }
    Ok(deps)
}

/// The distribution name at the start of a PEP 508 requirement, lowercased.
fn requirement_name(req: &str) -> Option<String> {
    let name: String = req
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then(|| name.to_ascii_lowercase().replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::mem::MemFiles;

    /// The command line on port 3003 of what `detector` finds in `files`.
    fn line(
        detector: fn(&dyn Files) -> Result<Option<Detection>>,
        dir: &str,
        files: &[(&str, &str)],
    ) -> String {
        let files = MemFiles::new(dir, files);
        detector(&files)
            .unwrap()
            .expect("detected")
            .launch
            .command_line(3003)
    }

    const MANAGE: &str = "from django.core.management import execute_from_command_line\n";

    #[test]
    fn django_binds_loopback() {
        assert_eq!(
            line(django, "/srv/site", &[("manage.py", MANAGE)]),
            "python3 manage.py runserver 127.0.0.1:3003"
        );
        assert_eq!(
            line(
                django,
                "/srv/site",
                &[("manage.py", MANAGE), (".venv/bin/python", "")]
            ),
            ".venv/bin/python manage.py runserver 127.0.0.1:3003"
        );
    }

    #[test]
    fn requirement_names() {
        assert_eq!(
            requirement_name("FastAPI[all]>=0.110").as_deref(),
            Some("fastapi")
        );
        assert_eq!(
            requirement_name("uvicorn == 0.29").as_deref(),
            Some("uvicorn")
        );
        assert_eq!(
            requirement_name("Django_Extensions").as_deref(),
            Some("django-extensions")
        );
        assert_eq!(requirement_name(">=1"), None);
    }
}
