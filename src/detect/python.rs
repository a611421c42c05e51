//! Python projects: Django (`manage.py`), FastAPI and Flask (requirements.txt, pyproject.toml),
//! run from the project's virtualenv when it has one.

use std::collections::BTreeSet;

use anyhow::Result;
use toml_edit::DocumentMut;

use super::{Detection, Files, Launch};
use crate::config::line_col;
use crate::error::InputError;

/// What runs the project's Python programs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Runner {
    /// `uv run`: a `uv.lock` in the project's directory or an ancestor up to its workspace root
    /// (`lock` is its relative path); it wins over a virtualenv, which uv manages itself.
    Uv { lock: String },
    /// The project's virtualenv (`.venv/bin/` or `venv/bin/`).
    Venv(&'static str),
    /// `poetry run`: a Poetry project (`poetry.lock`, or `[tool.poetry]` in pyproject.toml)
    /// without uv and without a virtualenv in the project.
    Poetry,
    /// The tools on `PATH` (`python3`).
    Path,
}

impl Runner {
    fn of(files: &dyn Files, pyproject: Option<&DocumentMut>) -> Runner {
        if let Some(lock) = super::workspace_dirs(files)
            .into_iter()
            .map(|up| format!("{up}uv.lock"))
            .find(|lock| files.exists(lock))
        {
            return Runner::Uv { lock };
        }
        if files.exists(".venv/bin/python") {
            Runner::Venv(".venv/bin/")
        } else if files.exists("venv/bin/python") {
            Runner::Venv("venv/bin/")
        } else if files.exists("poetry.lock")
            || pyproject.is_some_and(|doc| doc.get("tool").and_then(|t| t.get("poetry")).is_some())
        {
            Runner::Poetry
        } else {
            Runner::Path
        }
    }

    /// The words that run `program` (`python`, `uvicorn`, `flask`, ...).
    fn words(&self, program: &str) -> Vec<String> {
        match self {
            Runner::Uv { .. } => vec!["uv".into(), "run".into(), program.into()],
            Runner::Poetry => vec!["poetry".into(), "run".into(), program.into()],
            Runner::Venv(bin) => vec![format!("{bin}{program}")],
            Runner::Path if program == "python" => vec!["python3".into()],
            Runner::Path => vec![program.into()],
        }
    }
}

/// `words` (the program's, then its arguments) and the port arguments.
fn launch(mut words: Vec<String>, args: &[&str], port_args: &[&str]) -> Launch {
    words.extend(args.iter().map(|a| a.to_string()));
    Launch::Words {
        words,
        port_args: port_args.iter().map(|a| a.to_string()).collect(),
        separator: false,
    }
}

pub fn django(files: &dyn Files) -> Result<Option<Detection>> {
    let Some(manage) = files.read("manage.py")? else {
        return Ok(None);
    };
    let pyproject = pyproject(files)?;
    if !manage.contains("django") && !dependencies(files, pyproject.as_ref())?.contains("django") {
        return Ok(None);
    }
    let runner = Runner::of(files, pyproject.as_ref());
    Ok(Some(Detection::new(
        "django",
        launch(
            runner.words("python"),
            &["manage.py", "runserver"],
            &["127.0.0.1:{port}"],
        ),
    )))
}

pub fn detect(files: &dyn Files) -> Result<Option<Detection>> {
    let pyproject = pyproject(files)?;
    let deps = dependencies(files, pyproject.as_ref())?;
    let runner = Runner::of(files, pyproject.as_ref());
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
        return Ok(Some(Detection::new(
            "fastapi",
            launch(
                runner.words("uvicorn"),
                &[&module, "--reload"],
                &["--port", "{port}"],
            ),
        )));
    }
    if deps.contains("flask") {
        return Ok(Some(Detection::new(
            "flask",
            launch(runner.words("flask"), &["run"], &["--port", "{port}"]),
        )));
    }
    Ok(None)
}

/// pyproject.toml, parsed.
fn pyproject(files: &dyn Files) -> Result<Option<DocumentMut>> {
    let Some(text) = files.read("pyproject.toml")? else {
        return Ok(None);
    };
    let doc = text.parse().map_err(|err: toml_edit::TomlError| {
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
    Ok(Some(doc))
}

/// Normalised names of the dependencies in requirements.txt and pyproject.toml.
fn dependencies(files: &dyn Files, pyproject: Option<&DocumentMut>) -> Result<BTreeSet<String>> {
    let mut deps = BTreeSet::new();
    if let Some(text) = files.read("requirements.txt")? {
        deps.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty() && !l.starts_with('-'))
                .filter_map(requirement_name),
        );
    }
    if let Some(doc) = pyproject {
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
    fn uv_lock_here_or_up_to_the_workspace_root_runs_through_uv() {
        // Its own lock wins over its virtualenv.
        assert_eq!(
            line(
                django,
                "/srv/site",
                &[
                    ("manage.py", MANAGE),
                    ("uv.lock", ""),
                    (".venv/bin/python", "")
                ]
            ),
            "uv run python manage.py runserver 127.0.0.1:3003"
        );
        // A workspace member: the lock is at the repository's root.
        let member = [
            (
                "pyproject.toml",
                "[project]\nname = \"api\"\ndependencies = [\"fastapi\"]\n",
            ),
            ("app/main.py", "app = FastAPI()\n"),
            ("../../uv.lock", ""),
            ("../../.git/HEAD", ""),
        ];
        assert_eq!(
            line(detect, "/srv/repo/services/api", &member),
            "uv run uvicorn app.main:app --reload --port 3003"
        );
        // Not above the repository's root.
        let mut outside = member.to_vec();
        outside[3] = ("../.git/HEAD", "");
        assert_eq!(
            line(detect, "/srv/repo/services/api", &outside),
            "uvicorn app.main:app --reload --port 3003"
        );
        let flask = [
            ("requirements.txt", "flask\n"),
            ("app.py", ""),
            ("../uv.lock", ""),
        ];
        assert_eq!(
            line(detect, "/srv/repo/web", &flask),
            "uv run flask run --port 3003"
        );
    }

    #[test]
    fn poetry_projects_run_through_poetry_unless_the_venv_is_in_the_project() {
        let poetry = "[tool.poetry.dependencies]\npython = \"^3.12\"\nfastapi = \"^0.110\"\n";
        let main = ("main.py", "app = FastAPI()\n");
        assert_eq!(
            line(detect, "/srv/api", &[("pyproject.toml", poetry), main]),
            "poetry run uvicorn main:app --reload --port 3003"
        );
        // Poetry 2: [project] and poetry.lock.
        let pep621 = "[project]\nname = \"api\"\ndependencies = [\"fastapi\"]\n";
        assert_eq!(
            line(
                detect,
                "/srv/api",
                &[("pyproject.toml", pep621), ("poetry.lock", ""), main]
            ),
            "poetry run uvicorn main:app --reload --port 3003"
        );
        // In-project virtualenv (`virtualenvs.in-project`): its binaries.
        assert_eq!(
            line(
                detect,
                "/srv/api",
                &[
                    ("pyproject.toml", poetry),
                    ("poetry.lock", ""),
                    (".venv/bin/python", ""),
                    main
                ]
            ),
            ".venv/bin/uvicorn main:app --reload --port 3003"
        );
        // uv first.
        assert_eq!(
            line(
                detect,
                "/srv/api",
                &[
                    ("pyproject.toml", poetry),
                    ("poetry.lock", ""),
                    ("uv.lock", ""),
                    main
                ]
            ),
            "uv run uvicorn main:app --reload --port 3003"
        );
        assert_eq!(
            line(
                django,
                "/srv/site",
                &[("manage.py", MANAGE), ("poetry.lock", "")]
            ),
            "poetry run python manage.py runserver 127.0.0.1:3003"
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
