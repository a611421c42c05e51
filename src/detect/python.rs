//! Python projects: Django (`manage.py`), FastAPI and Flask (requirements.txt and its includes,
//! pyproject.toml), run through `uv run` in a uv project, else from the project's virtualenv, else
//! through `poetry run` in a Poetry project.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use toml_edit::DocumentMut;

use super::{Detection, Files, Launch};
use crate::buildflowz_toml::line_col;
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
            &["{host}:{port}"],
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
        return flask(files, &deps, &runner).map(Some);
    }
    Ok(None)
}

/// Flask: `flask run`, which finds the app through `FLASK_APP` (which it reads from `.env` and
/// `.flaskenv` itself when python-dotenv is installed), else in `wsgi.py` or `app.py`. Without
/// those, pm2-port names the app: a module at the root that creates it (`FLASK_APP=flasky.py`),
/// else a package whose `create_app` takes no argument (`flask --app PKG`, Flask 2.2 and later;
/// `FLASK_APP=PKG` before).
fn flask(files: &dyn Files, deps: &Deps, runner: &Runner) -> Result<Detection> {
    let run = |assign: Option<String>, app_option: Option<&str>| {
        let mut words: Vec<String> = assign.into_iter().collect();
        words.extend(runner.words("flask"));
        if let Some(app) = app_option {
            words.extend(["--app".to_string(), app.to_string()]);
        }
        launch(words, &["run"], &["--port", "{port}"])
    };
    let mut notes = Vec::new();
    let launch = if let Some((file, app)) = flask_app_in_env_files(files)? {
        if deps.contains("python-dotenv") || deps.has_extra("flask", &["dotenv"]) {
            run(None, None)
        } else {
            notes.push(format!(
                "`{file}` sets FLASK_APP, but flask reads it only with python-dotenv, which is not among the dependencies: FLASK_APP is passed on the command line; install python-dotenv for the other settings of `{file}`"
            ));
            run(Some(format!("FLASK_APP={app}")), None)
        }
    } else if files.exists("wsgi.py") || files.exists("app.py") {
        run(None, None)
    } else if let Some(module) = flask_app_module(files, &mut notes)? {
        run(Some(format!("FLASK_APP={module}")), None)
    } else if let Some(package) = flask_factory_package(files)? {
        if flask_before_2_2(files, deps, runner) {
            run(Some(format!("FLASK_APP={package}")), None)
        } else {
            run(None, Some(&package))
        }
    } else {
        run(None, None)
    };
    let mut detection = Detection::new("flask", launch);
    detection.notes = notes;
    Ok(detection)
}

/// `FLASK_APP` as `.env` or else `.flaskenv` sets it (Flask gives `.env` precedence): the file and
/// the value. A `.env` that cannot be read is passed over: it is often a secret manager's FIFO.
fn flask_app_in_env_files(files: &dyn Files) -> Result<Option<(&'static str, String)>> {
    let env = files.read(".env").ok().flatten();
    for (file, text) in [(".env", env), (".flaskenv", files.read(".flaskenv")?)] {
        if let Some(app) = text.and_then(|t| dotenv_value(&t, "FLASK_APP")) {
            return Ok(Some((file, app)));
        }
    }
    Ok(None)
}

/// The value a dotenv file gives `key` (the last assignment; quotes and comments as
/// python-dotenv reads them), when not empty.
fn dotenv_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.trim() != key {
            continue;
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
            _ => strip_comment(value).trim(),
        };
        found = Some(value.to_string());
    }
    found.filter(|v| !v.is_empty())
}

/// The app a Python module creates at its top level (`app = Flask(__name__)`, `app =
/// create_app(...)`), as Flask finds it by its name `app` or `application`.
fn creates_app(source: &str) -> bool {
    source.lines().any(|line| {
        let Some(rest) = line
            .strip_prefix("application")
            .or_else(|| line.strip_prefix("app"))
        else {
            return false;
        };
        let rest = rest.trim_start();
        rest.starts_with('=')
            && !rest.starts_with("==")
            && ["Flask(", "create_app(", "make_app("]
                .iter()
                .any(|call| rest.contains(call))
    })
}

/// A factory Flask can call without arguments: `def create_app(...)` or `def make_app(...)` at the
/// top level whose parameters all have defaults.
fn has_argless_factory(source: &str) -> bool {
    ["def create_app(", "def make_app("].iter().any(|def| {
        source
            .match_indices(def)
            .filter(|(at, _)| *at == 0 || source[..*at].ends_with('\n'))
            .any(|(at, _)| {
                let params = &source[at + def.len()..];
                let mut depth = 0;
                let end = params.char_indices().find_map(|(i, c)| {
                    match c {
                        '(' | '[' | '{' => depth += 1,
                        ')' | ']' | '}' if depth == 0 => return Some(i),
                        ')' | ']' | '}' => depth -= 1,
                        _ => {}
                    }
                    None
                });
                end.is_some_and(|end| {
                    split_top_level(&params[..end]).iter().all(|p| {
                        let p = p.split('#').next().unwrap_or_default().trim();
                        p.is_empty() || p.starts_with('*') || p == "/" || p.contains('=')
                    })
                })
            })
    })
}

/// `text` split at the commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[from..]);
    out
}

/// A module at the project's root, other than the `wsgi.py` and `app.py` Flask finds by itself,
/// that creates the app (`flasky.py`): named like the directory when several do, else the first.
fn flask_app_module(files: &dyn Files, notes: &mut Vec<String>) -> Result<Option<String>> {
    let mut modules = Vec::new();
    for name in files.list("") {
        if !name.ends_with(".py") || name.starts_with('.') {
            continue;
        }
        if let Some(source) = files.read(&name)?
            && creates_app(&source)
        {
            modules.push(name);
        }
    }
    let dir = files
        .dir()
        .file_name()
        .map(|n| format!("{}.py", n.to_string_lossy()))
        .unwrap_or_default();
    let Some(pick) = modules
        .iter()
        .find(|m| **m == dir)
        .or(modules.first())
        .cloned()
    else {
        return Ok(None);
    };
    if modules.len() > 1 {
        notes.push(format!(
            "chose `{pick}` as FLASK_APP among {}; set `command` in buildflowz.toml to run another",
            modules.join(", ")
        ));
    }
    Ok(Some(pick))
}

/// A package at the project's root whose `__init__.py` creates the app or has a factory Flask can
/// call without arguments.
fn flask_factory_package(files: &dyn Files) -> Result<Option<String>> {
    for name in files.list("") {
        let init = format!("{name}/__init__.py");
        if name.starts_with('.') || !super::shell::is_name(&name) || !files.exists(&init) {
            continue;
        }
        if let Some(source) = files.read(&init)?
            && (creates_app(&source) || has_argless_factory(&source))
        {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether the Flask the project pins predates 2.2, which added `flask --app`: the version in
/// its lockfile (uv.lock, poetry.lock) when it has one, else the dependency's constraints.
fn flask_before_2_2(files: &dyn Files, deps: &Deps, runner: &Runner) -> bool {
    const APP_OPTION: &[u64] = &[2, 2];
    let lock = match runner {
        Runner::Uv { lock } => Some(lock.as_str()),
        _ if files.exists("poetry.lock") => Some("poetry.lock"),
        _ => None,
    };
    if let Some(locked) = lock.and_then(|lock| locked_version(files, lock, "flask")) {
        return version_cmp(&locked, APP_OPTION).is_lt();
    }
    deps.0.get("flask").is_some_and(|dep| {
        dep.constraints
            .iter()
            .filter_map(|(text, poetry)| upper_bound(text, *poetry))
            .any(|(bound, inclusive)| {
                let cmp = version_cmp(&bound, APP_OPTION);
                cmp.is_lt() || (cmp.is_eq() && !inclusive)
            })
    })
}

/// The version of `name` in a uv.lock or poetry.lock (`[[package]]` tables).
fn locked_version(files: &dyn Files, lock: &str, name: &str) -> Option<Vec<u64>> {
    let doc: DocumentMut = files.read(lock).ok()??.parse().ok()?;
    doc.get("package")?
        .as_array_of_tables()?
        .iter()
        .find(|p| {
            p.get("name")
                .and_then(|n| n.as_str())
                .and_then(requirement_name)
                .is_some_and(|n| n == name)
        })
        .and_then(|p| p.get("version")?.as_str())
        .and_then(parse_version)
}

/// The numeric release of a version (`2.2.0rc1` → 2.2.0).
fn parse_version(text: &str) -> Option<Vec<u64>> {
    let text = text.trim().trim_start_matches('v');
    let mut out = Vec::new();
    for part in text.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse() else {
            break;
        };
        out.push(n);
        if digits.len() < part.len() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn version_cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// `version` with its component `at` incremented and the later ones dropped (`1.4.2`, 1 → 1.5).
fn bump(version: &[u64], at: usize) -> Vec<u64> {
    let mut out = version[..=at].to_vec();
    out[at] += 1;
    out
}

/// The lowest upper bound a version constraint sets (`<2.2`, `==0.12.2`, `~=2.1.0`, Poetry's
/// `^1.1`), and whether it is itself allowed; `None` when it sets none.
fn upper_bound(constraint: &str, poetry: bool) -> Option<(Vec<u64>, bool)> {
    if constraint.contains("||") {
        return None;
    }
    let clauses: Vec<&str> = if poetry {
        constraint
            .split(',')
            .flat_map(str::split_whitespace)
            .collect()
    } else {
        constraint.split(',').collect()
    };
    let mut best: Option<(Vec<u64>, bool)> = None;
    for clause in clauses {
        let clause = clause.trim();
        let at = clause
            .find(|c: char| c.is_ascii_digit() || c == '*')
            .unwrap_or(clause.len());
        let (op, text) = (clause[..at].trim(), clause[at..].trim());
        let Some(v) = parse_version(text) else {
            continue;
        };
        let wildcard = text.ends_with(".*");
        let bound = match op {
            "" if !poetry => None,
            "==" | "===" | "" if wildcard => Some((bump(&v, v.len() - 1), false)),
            "==" | "===" | "" => Some((v, true)),
            "<" => Some((v, false)),
            "<=" => Some((v, true)),
            "~=" if v.len() >= 2 => Some((bump(&v, v.len() - 2), false)),
            "^" if poetry => {
                let at = v.iter().position(|n| *n != 0).unwrap_or(v.len() - 1);
                Some((bump(&v, at), false))
            }
            "~" if poetry => Some((bump(&v, if v.len() >= 2 { 1 } else { 0 }), false)),
            _ => None,
        };
        if let Some(bound) = bound
            && best
                .as_ref()
                .is_none_or(|b| version_cmp(&bound.0, &b.0).is_lt())
        {
            best = Some(bound);
        }
    }
    best
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

/// How deep `-r FILE` includes are followed from requirements.txt.
const MAX_INCLUDE_DEPTH: usize = 5;

/// Add the requirements of the file `rel` to `deps`, following its `-r FILE` / `--requirement
/// FILE` includes (relative to the including file, as pip reads them) up to
/// [`MAX_INCLUDE_DEPTH`], each file once. A missing file adds nothing.
fn read_requirements(
    files: &dyn Files,
    rel: &str,
    depth: usize,
    seen: &mut BTreeSet<String>,
    deps: &mut Deps,
) -> Result<()> {
    if depth > MAX_INCLUDE_DEPTH || !seen.insert(rel.to_string()) {
        return Ok(());
    }
    let Some(text) = files.read(rel)? else {
        return Ok(());
    };
    let base = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
    // pip joins lines ending in a backslash, then drops comments: `#` at the start or after
    // whitespace.
    for line in text.replace("\\\r\n", " ").replace("\\\n", " ").lines() {
        let line = strip_comment(line).trim();
        if let Some(include) = include_of(line) {
            if let Some(path) = include_path(base, include) {
                read_requirements(files, &path, depth + 1, seen, deps)?;
            }
        } else if !line.is_empty() && !line.starts_with('-') {
            deps.add_requirement(line);
        }
    }
    Ok(())
}

/// A requirements line without its comment: from a `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..at];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// The file of a `-r FILE`, `-rFILE`, `--requirement FILE` or `--requirement=FILE` line.
fn include_of(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("--requirement") {
        let file = match rest.strip_prefix('=') {
            Some(file) => file,
            None if rest.starts_with(char::is_whitespace) => rest,
            None => return None,
        };
        return Some(file.trim());
    }
    line.strip_prefix("-r").map(str::trim)
}

/// The relative path of the requirements file `include` named in a file of the directory `base`;
/// `None` for a URL or an absolute path.
fn include_path(base: &str, include: &str) -> Option<String> {
    if include.is_empty() || include.starts_with('/') || include.contains("://") {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in include.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The dependencies in requirements.txt and pyproject.toml: `[project]`'s dependencies and
/// optional dependencies, the dependency groups (PEP 735), and Poetry's dependency tables.
fn dependencies(files: &dyn Files, pyproject: Option<&DocumentMut>) -> Result<Deps> {
    let mut deps = Deps::default();
    let mut seen = BTreeSet::new();
    read_requirements(files, "requirements.txt", 0, &mut seen, &mut deps)?;
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
    use crate::detect::memory::MemFiles;

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
    fn flask_finds_the_app_where_flask_run_would_not() {
        let flask = |files: &[(&str, &str)]| {
            let mut all = vec![("requirements.txt", "Flask>=3\n")];
            all.extend_from_slice(files);
            line(detect, "/srv/blog", &all)
        };
        // Found by flask itself.
        assert_eq!(flask(&[("app.py", "")]), "flask run --port 3003");
        assert_eq!(flask(&[("wsgi.py", "")]), "flask run --port 3003");
        // A module that is not one of the names flask looks for.
        let flasky = "from app import create_app\napp = create_app(os.getenv('FLASK_CONFIG') or 'default')\n";
        let needs_config = "def create_app(config_name):\n    ...\n";
        assert_eq!(
            flask(&[
                ("flasky.py", flasky),
                ("app/__init__.py", needs_config),
                ("config.py", "")
            ]),
            "FLASK_APP=flasky.py flask run --port 3003"
        );
        // A package whose factory takes no argument.
        let factory = "def create_app(\n    test_config: dict | None = None,\n):\n    ...\n";
        assert_eq!(
            flask(&[("blog/__init__.py", factory), ("README", "")]),
            "flask --app blog run --port 3003"
        );
        assert_eq!(
            flask(&[("blog/__init__.py", needs_config)]),
            "flask run --port 3003"
        );
        // .flaskenv names the app, and flask reads it with python-dotenv.
        let flaskenv = ".flaskenv";
        assert_eq!(
            line(
                detect,
                "/srv/blog",
                &[
                    ("requirements.txt", "flask\npython-dotenv\n"),
                    (flaskenv, "FLASK_APP=blog.py\n"),
                    ("blog.py", "app = Flask(__name__)\n"),
                ]
            ),
            "flask run --port 3003"
        );
        // Without python-dotenv, pm2-port passes it on, and says so.
        let files = MemFiles::new(
            "/srv/blog",
            &[
                ("requirements.txt", "flask\n"),
                (
                    flaskenv,
                    "export FLASK_APP=\"blog:create_app('dev')\"  # the app\n",
                ),
            ],
        );
        let d = detect(&files).unwrap().unwrap();
        assert_eq!(
            d.launch.command_line(3003),
            "FLASK_APP='blog:create_app('\\''dev'\\'')' flask run --port 3003"
        );
        assert!(d.notes[0].contains("python-dotenv"), "{:?}", d.notes);
        // `.env` comes before `.flaskenv`, as in flask.
        let files = MemFiles::new(
            "/srv/blog",
            &[
                ("requirements.txt", "flask\n"),
                (".env", "SECRET=x\nFLASK_APP=local.py\n"),
                (flaskenv, "FLASK_APP=blog.py\n"),
            ],
        );
        assert_eq!(
            detect(&files).unwrap().unwrap().launch.command_line(3003),
            "FLASK_APP=local.py flask run --port 3003"
        );
    }

    #[test]
    fn flask_before_2_2_has_no_app_option() {
        let factory = ("blog/__init__.py", "def create_app():\n    ...\n");
        let with = |requirements: &str| {
            line(
                detect,
                "/srv/blog",
                &[("requirements.txt", requirements), factory],
            )
        };
        for old in [
            "Flask==1.1.2",
            "flask<2.2",
            "flask~=2.1.0",
            "flask==2.1.*",
            "flask<=2.1.3",
        ] {
            assert_eq!(with(old), "FLASK_APP=blog flask run --port 3003", "{old}");
        }
        for new in [
            "flask",
            "Flask==2.2.0",
            "flask>=1,<4",
            "flask~=2.1",
            "flask!=2.1",
        ] {
            assert_eq!(with(new), "flask --app blog run --port 3003", "{new}");
        }
        // Poetry's constraints.
        let poetry = |c: &str| {
            line(
                detect,
                "/srv/blog",
                &[
                    (
                        "pyproject.toml",
                        &format!("[tool.poetry.dependencies]\nflask = \"{c}\"\n"),
                    ),
                    (".venv/bin/python", ""),
                    factory,
                ],
            )
        };
        assert_eq!(
            poetry("^1.1"),
            "FLASK_APP=blog .venv/bin/flask run --port 3003"
        );
        assert_eq!(
            poetry("~2.1"),
            "FLASK_APP=blog .venv/bin/flask run --port 3003"
        );
        assert_eq!(poetry("^2.1"), ".venv/bin/flask --app blog run --port 3003");
        // The lockfile's version wins.
        let lock = "version = 1\n[[package]]\nname = \"Flask\"\nversion = \"2.0.3\"\n";
        assert_eq!(
            line(
                detect,
                "/srv/blog",
                &[("requirements.txt", "flask"), ("uv.lock", lock), factory]
            ),
            "FLASK_APP=blog uv run flask run --port 3003"
        );
    }

    #[test]
    fn requirements_files_include_others() {
        let files = MemFiles::new(
            "/srv/flasky",
            &[
                ("requirements.txt", "# heroku\n-r requirements/heroku.txt\n"),
                ("requirements/heroku.txt", "-r prod.txt\ngunicorn==19.7.1\n"),
                ("requirements/prod.txt", "--requirement=./common.txt\n"),
                // A cycle back to the top, and a comment that is not one.
                (
                    "requirements/common.txt",
                    "Flask==0.12.2 # pinned\n-r ../requirements.txt\nfoo @ https://x/y#egg=foo\n",
                ),
            ],
        );
        let deps = dependencies(&files, None).unwrap();
        let names: Vec<&str> = deps.0.keys().map(String::as_str).collect();
        assert_eq!(names, ["flask", "foo", "gunicorn"]);
        assert_eq!(
            deps.0["flask"].constraints,
            [("==0.12.2".to_string(), false)]
        );
        assert_eq!(include_path("a/b", "../c.txt").as_deref(), Some("a/c.txt"));
        assert_eq!(include_path("", "../c.txt").as_deref(), Some("../c.txt"));
        assert_eq!(include_path("a", "/etc/passwd"), None);
        // Deeper than the limit: not read.
        let chain: Vec<(String, String)> = (0..8)
            .map(|i| {
                let name = if i == 0 {
                    "requirements.txt".to_string()
                } else {
                    format!("r{i}.txt")
                };
                (name, format!("-r r{}.txt\npkg{i}\n", i + 1))
            })
            .collect();
        let chain: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let deps = dependencies(&MemFiles::new("/srv/deep", &chain), None).unwrap();
        assert!(deps.contains("pkg5") && !deps.contains("pkg6"));
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
