//! The whole server at a glance: PM2's apps, the registry's projects and their ecosystem files,
//! merged into one row per app, with the apps that claim the same port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ecosystem::read::Existing;
use crate::model::World;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub port: Option<u16>,
    /// PM2's status, `saved` for an app only in `dump.pm2`, `not-started` for a project only in
    /// the registry.
    pub status: crate::model::Status,
    /// The app's working directory.
    pub cwd: Option<PathBuf>,
    /// Where this port is recorded: `pm2`, `registry`, `ecosystem`.
    pub sources: Vec<&'static str>,
    /// The other apps that claim the same port.
    pub conflicts: Vec<String>,
    /// The directory of the project (and ecosystem file) the app belongs to, when known.
    #[serde(skip)]
    pub project: Option<PathBuf>,
}

/// The project directory of the app `name` running in `cwd`: the registry's, else `cwd` itself.
pub fn project_of(world: &World, name: &str, cwd: &Path) -> PathBuf {
    world
        .reservations
        .iter()
        .find(|r| r.name == name && r.cwd == cwd)
        .map_or_else(|| cwd.to_path_buf(), |r| r.dir.clone())
}

/// One row per app, sorted by port.
pub fn rows(world: &World, files: &HashMap<PathBuf, Existing>) -> Vec<Row> {
    let in_file = |project: Option<&PathBuf>, name: &str, port: Option<u16>| {
        port.is_some()
            && project.and_then(|d| files.get(d)).is_some_and(|f| {
                f.apps
                    .iter()
                    .any(|a| a.name.as_deref() == Some(name) && a.port == port)
            })
    };
    let mut rows: Vec<Row> = Vec::new();
    for app in &world.apps {
        let project = app.cwd.as_ref().map(|c| project_of(world, &app.name, c));
        let mut sources = Vec::new();
        if app.port.is_some() {
            sources.push("pm2");
        }
        if world.reservations.iter().any(|r| {
            Some(&r.cwd) == app.cwd.as_ref() && r.name == app.name && Some(r.port) == app.port
        }) {
            sources.push("registry");
        }
        if in_file(project.as_ref(), &app.name, app.port) {
            sources.push("ecosystem");
        }
        rows.push(Row {
            name: app.name.clone(),
            port: app.port,
            status: app.status.clone(),
            cwd: app.cwd.clone(),
            sources,
            conflicts: Vec::new(),
            project,
        });
    }
    for r in &world.reservations {
        if world
            .apps
            .iter()
            .any(|a| a.cwd.as_ref() == Some(&r.cwd) && a.name == r.name)
        {
            continue;
        }
        let mut sources = vec!["registry"];
        if in_file(Some(&r.dir), &r.name, Some(r.port)) {
            sources.push("ecosystem");
        }
        rows.push(Row {
            name: r.name.clone(),
            port: Some(r.port),
            status: crate::model::Status::NotStarted,
            cwd: Some(r.cwd.clone()),
            sources,
            conflicts: Vec::new(),
            project: Some(r.dir.clone()),
        });
    }
    for i in 0..rows.len() {
        let Some(port) = rows[i].port else { continue };
        // Instances of one app (cluster mode, `instances`) share its port: no conflict.
        let mut conflicts: Vec<String> = rows
            .iter()
            .filter(|other| {
                other.port == Some(port) && (other.name != rows[i].name || other.cwd != rows[i].cwd)
            })
            .map(|other| other.name.clone())
            .collect();
        conflicts.dedup();
        rows[i].conflicts = conflicts;
    }
    rows.sort_by(|a, b| (a.port, &a.name).cmp(&(b.port, &b.name)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::App;
    use crate::model::Reservation;

    fn app(name: &str, cwd: &str, port: u16, status: &str) -> App {
        App::fake(name, cwd, port, status)
    }

    fn reservation(dir: &str, cwd: &str, name: &str, port: u16) -> Reservation {
        Reservation {
            dir: dir.into(),
            cwd: cwd.into(),
            name: name.into(),
            port,
        }
    }

    #[test]
    fn instances_of_one_app_do_not_conflict() {
        let world = World {
            apps: vec![
                app("clu", "/c", 3000, "online"),
                app("clu", "/c", 3000, "online"),
            ],
            ..World::default()
        };
        let rows = rows(&world, &HashMap::new());
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.conflicts.is_empty()));
    }

    #[test]
    fn merges_sources_and_names_conflicts() {
        let world = World {
            apps: vec![
                app("shop", "/shop", 3001, "online"),
                app("rogue", "/r", 3001, "online"),
                app("api", "/mono/api", 3002, "online"),
            ],
            reservations: vec![
                reservation("/shop", "/shop", "shop", 3001),
                reservation("/blog", "/blog", "blog", 3000),
                reservation("/mono", "/mono/api", "api", 3002),
                reservation("/mono", "/mono/web", "web", 3003),
            ],
            ..World::default()
        };
        let mut files = HashMap::new();
        files.insert(
            PathBuf::from("/shop"),
            crate::ecosystem::read::classify("// Generated by pm2-port: test\nmodule.exports = {apps: [{name: \"shop\", env: {PORT: 3001}}]};".into()),
        );
        files.insert(
            PathBuf::from("/mono"),
            crate::ecosystem::read::classify("// Generated by pm2-port: test\nmodule.exports = {apps: [{name: \"api\", env: {PORT: 3002}}, {name: \"web\", env: {PORT: 3003}}]};".into()),
        );
        let got = serde_json::to_value(rows(&world, &files)).unwrap();
        assert_eq!(
            got,
            serde_json::json!([
                {"name": "blog", "port": 3000, "status": "not-started", "cwd": "/blog",
                 "sources": ["registry"], "conflicts": []},
                {"name": "rogue", "port": 3001, "status": "online", "cwd": "/r",
                 "sources": ["pm2"], "conflicts": ["shop"]},
                {"name": "shop", "port": 3001, "status": "online", "cwd": "/shop",
                 "sources": ["pm2", "registry", "ecosystem"], "conflicts": ["rogue"]},
                {"name": "api", "port": 3002, "status": "online", "cwd": "/mono/api",
                 "sources": ["pm2", "registry", "ecosystem"], "conflicts": []},
                {"name": "web", "port": 3003, "status": "not-started", "cwd": "/mono/web",
                 "sources": ["registry", "ecosystem"], "conflicts": []},
            ])
        );
    }
}
