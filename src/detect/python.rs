//! Python projects: Django (`manage.py`), FastAPI and Flask (requirements.txt, pyproject.toml),
//! run from the project's virtualenv when it has one.

use std::collections::{BTreeMap, BTreeSet};

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
        return Ok(fastapi(files, pyproject.as_ref(), &deps, &runner));
    }
    if deps.contains("flask") {
        return Ok(Some(Detection::new(
            "flask",
            launch(runner.words("flask"), &["run"], &["--port", "{port}"]),
        )));
    }
    Ok(None)
}

/// A dependency as the manifests declare it.
#[derive(Debug, Default)]
struct Dep {
    /// Its extras (`standard` of `fastapi[standard]`).
    extras: BTreeSet<String>,
    /// Its version constraints, each of one line or table: PEP 440 (`>=2,<3`), or Poetry's
    /// (`^2.1`) when the flag says so.
    constraints: Vec<(String, bool)>,
}

/// The dependencies of requirements.txt and pyproject.toml, by normalised name.
#[derive(Debug, Default)]
struct Deps(BTreeMap<String, Dep>);

impl Deps {
    fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Whether `name` is required with one of `extras`.
    fn has_extra(&self, name: &str, extras: &[&str]) -> bool {
        self.0
            .get(name)
            .is_some_and(|d| extras.iter().any(|e| d.extras.contains(*e)))
    }

    fn add(&mut self, name: String, extras: BTreeSet<String>, constraint: (String, bool)) {
        let dep = self.0.entry(name).or_default();
        dep.extras.extend(extras);
        if !constraint.0.trim().is_empty() {
            dep.constraints.push(constraint);
        }
    }

    /// A PEP 508 requirement (`FastAPI[standard]>=0.110 ; python_version >= "3.9"`).
    fn add_requirement(&mut self, req: &str) {
        if let Some((name, extras, constraint)) = parse_requirement(req) {
            self.add(name, extras, (constraint, false));
        }
    }

    /// An entry of a `[tool.poetry.dependencies]` table: a constraint (`"^2.1"`) or a table
    /// (`{ version = "^2.1", extras = ["dotenv"] }`).
    fn add_poetry(&mut self, name: &str, value: &toml_edit::Item) {
        let Some(name) = requirement_name(name) else {
            return;
        };
        let (version, extras) = match value.as_str() {
            Some(v) => (v.to_string(), BTreeSet::new()),
            None => (
                value
                    .get("version")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string(),
                value
                    .get("extras")
                    .and_then(|e| e.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str())
                            .map(|e| e.to_ascii_lowercase())
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        };
        self.add(name, extras, (version, true));
    }
}

/// The extras of `fastapi` that bring in fastapi-cli (`fastapi dev`).
const FASTAPI_CLI_EXTRAS: &[&str] = &["standard", "standard-no-fastapi-cloud-cli", "all"];

/// FastAPI: `fastapi dev` when pyproject.toml names the app (`[tool.fastapi]` `entrypoint`, which
/// fastapi-cli reads) and fastapi-cli is a dependency (`fastapi[standard]`, `fastapi-cli`); else
/// uvicorn on the entrypoint or the first of `main.py`, `app.py`, `app/main.py`, `src/main.py`.
/// Both bind 127.0.0.1 by default.
fn fastapi(
    files: &dyn Files,
    pyproject: Option<&DocumentMut>,
    deps: &Deps,
    runner: &Runner,
) -> Option<Detection> {
    let entrypoint = pyproject
        .and_then(|doc| doc.get("tool")?.get("fastapi")?.get("entrypoint")?.as_str())
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let cli = deps.has_extra("fastapi", FASTAPI_CLI_EXTRAS) || deps.contains("fastapi-cli");
    if entrypoint.is_some() && cli {
        return Some(Detection::new(
            "fastapi",
            launch(runner.words("fastapi"), &["dev"], &["--port", "{port}"]),
        ));
    }
    let module = match entrypoint {
        Some(entrypoint) => entrypoint.to_string(),
        None => [
            ("main.py", "main"),
            ("app.py", "app"),
            ("app/main.py", "app.main"),
            ("src/main.py", "src.main"),
        ]
        .iter()
        .find(|(file, _)| files.exists(file))
        .map(|(_, module)| format!("{module}:app"))?,
    };
    Some(Detection::new(
        "fastapi",
        launch(
            runner.words("uvicorn"),
            &[&module, "--reload"],
            &["--port", "{port}"],
        ),
    ))
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

/// The dependencies in requirements.txt and pyproject.toml: `[project]`'s dependencies and
/// optional dependencies, the dependency groups (PEP 735), and Poetry's dependency tables.
fn dependencies(files: &dyn Files, pyproject: Option<&DocumentMut>) -> Result<Deps> {
    let mut deps = Deps::default();
    if let Some(text) = files.read("requirements.txt")? {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if !line.is_empty() && !line.starts_with('-') {
                deps.add_requirement(line);
            }
        }
    }
    let Some(doc) = pyproject else {
        return Ok(deps);
    };
    let mut add_array = |item: Option<&toml_edit::Item>| {
        for req in item
            .and_then(|i| i.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            deps.add_requirement(req);
        }
    };
    let project = doc.get("project");
    add_array(project.and_then(|p| p.get("dependencies")));
    let groups = [
        project.and_then(|p| p.get("optional-dependencies")),
        doc.get("dependency-groups"),
    ];
    for (_, group) in groups
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_table_like())
        .flat_map(|t| t.iter())
    {
        add_array(Some(group));
    }
    if let Some(poetry) = doc.get("tool").and_then(|t| t.get("poetry")) {
        let mut tables = vec![poetry.get("dependencies"), poetry.get("dev-dependencies")];
        if let Some(groups) = poetry.get("group").and_then(|g| g.as_table_like()) {
            tables.extend(groups.iter().map(|(_, g)| g.get("dependencies")));
        }
        for (name, value) in tables
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_table_like())
            .flat_map(|t| t.iter())
        {
            deps.add_poetry(name, value);
        }
    }
    Ok(deps)
}

/// The distribution name at the start of a PEP 508 requirement, normalised: lowercase, `-` for
/// `_` and `.`.
fn requirement_name(req: &str) -> Option<String> {
    let name: String = req
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then(|| name.to_ascii_lowercase().replace(['_', '.'], "-"))
}

/// A PEP 508 requirement's name, extras and version constraint (before any marker; empty for a
/// URL).
fn parse_requirement(req: &str) -> Option<(String, BTreeSet<String>, String)> {
    let req = req.split(';').next().unwrap_or_default().trim();
    let name = requirement_name(req)?;
    let mut rest = req
        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .trim_start();
    let mut extras = BTreeSet::new();
    if let Some(inner) = rest.strip_prefix('[')
        && let Some((list, after)) = inner.split_once(']')
    {
        extras = list
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        rest = after.trim_start();
    }
    let constraint = if rest.starts_with('@') {
        String::new()
    } else {
        rest.trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
            .to_string()
    };
    Some((name, extras, constraint))
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
    fn fastapi_dev_when_the_cli_is_there_and_pyproject_names_the_app() {
        let project = |deps: &str, tool: &str| {
            format!("[project]\nname = \"api\"\ndependencies = [{deps}]\n{tool}")
        };
        let tool = "[tool.fastapi]\nentrypoint = \"api.server:app\"\n";
        for deps in [
            "\"fastapi[standard]>=0.115\"",
            "\"fastapi\", \"fastapi-cli\"",
            "\"FastAPI[all]\"",
        ] {
            let pyproject = project(deps, tool);
            assert_eq!(
                line(detect, "/srv/api", &[("pyproject.toml", &pyproject)]),
                "fastapi dev --port 3003",
                "{deps}"
            );
        }
        // No fastapi-cli: uvicorn on the entrypoint.
        let pyproject = project("\"fastapi\", \"uvicorn\"", tool);
        assert_eq!(
            line(detect, "/srv/api", &[("pyproject.toml", &pyproject)]),
            "uvicorn api.server:app --reload --port 3003"
        );
        // No entrypoint: uvicorn on the module found.
        let pyproject = project("\"fastapi[standard]\"", "");
        assert_eq!(
            line(
                detect,
                "/srv/api",
                &[("pyproject.toml", &pyproject), ("app/main.py", "")]
            ),
            "uvicorn app.main:app --reload --port 3003"
        );
        // Poetry's extras.
        let poetry = format!(
            "[tool.poetry.dependencies]\nfastapi = {{ version = \"^0.115\", extras = [\"standard\"] }}\n{tool}"
        );
        assert_eq!(
            line(
                detect,
                "/srv/api",
                &[("pyproject.toml", &poetry), (".venv/bin/python", "")]
            ),
            ".venv/bin/fastapi dev --port 3003"
        );
    }

    #[test]
    fn requirements_with_extras_and_constraints() {
        let (name, extras, constraint) =
            parse_requirement("FastAPI[Standard, all] >=0.110,<1 ; python_version >= '3.9'")
                .unwrap();
        assert_eq!(name, "fastapi");
        assert_eq!(extras.into_iter().collect::<Vec<_>>(), ["all", "standard"]);
        assert_eq!(constraint, ">=0.110,<1");
        let (name, extras, constraint) =
            parse_requirement("django-push @ git+https://example.com/x.git").unwrap();
        assert_eq!(
            (name.as_str(), extras.len(), constraint.as_str()),
            ("django-push", 0, "")
        );
        assert_eq!(parse_requirement("Flask (==0.12.2)").unwrap().2, "==0.12.2");
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
