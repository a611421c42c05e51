//! Dev command detection: every fixture under `fixtures/detect/` against what `init --dry-run
//! --json` reports (docs/frameworks.md, docs/product.md section 3).

use serde_json::{Value, json};

use crate::support::*;

/// (fixture, framework, package manager, command with `{port}` for the allocated port).
#[rustfmt::skip]
const CASES: &[(&str, Option<&str>, Option<&str>, &str)] = &[
    ("next", Some("next"), Some("pnpm"), "pnpm run dev -H 127.0.0.1"),
    ("vite", Some("vite"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("sveltekit", Some("sveltekit"), Some("yarn"), "yarn dev --port {port} --strictPort"),
    ("astro", Some("astro"), Some("bun"), "bun run dev --port {port}"),
    ("nuxt", Some("nuxt"), Some("npm"), "npm run dev"),
    ("remix", Some("remix"), Some("npm"), "npm run dev"),
    ("remix-vite", Some("remix-vite"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("react-router", Some("react-router"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("angular", Some("angular"), Some("npm"), "npm run start -- --port {port}"),
    ("gatsby", Some("gatsby"), Some("npm"), "npm run develop"),
    ("docusaurus", Some("docusaurus"), Some("npm"), "npm run start"),
    ("cra", Some("cra"), Some("npm"), "npm run start"),
    ("vue-cli", Some("vue-cli"), Some("npm"), "npm run serve"),
    ("qwik", Some("qwik"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("solid-start", Some("solid-start"), Some("npm"), "npm run dev -- --port {port}"),
    ("tanstack-start", Some("tanstack-start"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("analog", Some("analog"), Some("npm"), "npm run start -- --port {port}"),
    ("ember", Some("ember"), Some("npm"), "npm run start -- --port {port}"),
    ("eleventy", Some("eleventy"), Some("npm"), "npm run serve -- --port={port}"),
    ("vitepress", Some("vitepress"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("parcel", Some("parcel"), Some("npm"), "npm run start -- --port {port}"),
    ("storybook", Some("storybook"), Some("npm"), "npx storybook dev -p {port} --ci --exact-port"),
    ("expo", Some("expo"), Some("npm"), "npm run start -- --port {port}"),
    ("redwood", Some("redwood"), Some("yarn"), "yarn rw dev --fwd=--port={port}"),
    ("wrangler", Some("wrangler"), Some("npm"), "npm run dev -- --port {port}"),
    ("hono", Some("hono"), Some("npm"), "npm run dev"),
    ("express", Some("express"), Some("npm"), "npm run start"),
    ("fastify", Some("fastify"), Some("pnpm"), "pnpm run dev"),
    ("nestjs", Some("nestjs"), Some("npm"), "npm run start:dev"),
    ("koa", Some("koa"), Some("npm"), "npm run dev"),
    ("django", Some("django"), None, "python3 manage.py runserver 127.0.0.1:{port}"),
    ("django-venv", Some("django"), None, ".venv/bin/python manage.py runserver 127.0.0.1:{port}"),
    // uv.lock wins over .venv; a workspace member finds the lock at the workspace root.
    ("django-uv", Some("django"), None, "uv run python manage.py runserver 127.0.0.1:{port}"),
    ("uv-workspace/api", Some("fastapi"), None, "uv run uvicorn app.main:app --reload --port {port}"),
    // fastapi-cli reads `[tool.fastapi]`'s entrypoint.
    ("fastapi-cli", Some("fastapi"), None, "fastapi dev --port {port}"),
    ("poetry", Some("fastapi"), None, "poetry run uvicorn main:app --reload --port {port}"),
    ("flask", Some("flask"), None, "flask run --port {port}"),
    // Flask through a `-r` include; an app flask does not find by itself.
    ("flask-include", Some("flask"), None, "flask run --port {port}"),
    ("flask-module", Some("flask"), None, "FLASK_APP=flasky.py flask run --port {port}"),
    ("flask-factory", Some("flask"), None, "flask --app blog run --port {port}"),
    ("flask-factory-old", Some("flask"), None, "FLASK_APP=blog flask run --port {port}"),
    // .flaskenv without python-dotenv: flask would not read it.
    ("flask-flaskenv", Some("flask"), None, "FLASK_APP=blog.py flask run --port {port}"),
    ("fastapi", Some("fastapi"), None, "uvicorn main:app --reload --port {port}"),
    ("fastapi-venv", Some("fastapi"), None, "venv/bin/uvicorn app.main:app --reload --port {port}"),
    ("rails", Some("rails"), None, "bin/rails server"),
    ("rails-bin-dev", Some("rails"), None, "bin/dev"),
    // Procfile.dev pins the web port: bin/dev would not take PORT.
    ("rails-procfile-port", Some("rails"), None, "bin/rails server -p {port}"),
    ("laravel", Some("laravel"), None, "php artisan serve --port={port}"),
    ("hugo", Some("hugo"), None, "hugo server -p {port}"),
    ("rust", Some("rust"), None, "cargo run"),
    ("rust-workspace", Some("rust"), None, "cargo run -p api --bin api"),
    ("rust-default-run", Some("rust"), None, "cargo run"),
    ("go", Some("go"), None, "go run ."),
    ("go-cmd", Some("go"), None, "go run ./cmd/server"),
    // A main package in a directory other than cmd/.
    ("go-subdir", Some("go"), None, "go run ./app"),
    ("pm-field", Some("vite"), Some("pnpm"), "pnpm run dev --port {port} --strictPort"),
    ("bun-text-lock", Some("vite"), Some("bun"), "bun run dev --port {port} --strictPort"),
    ("no-lockfile", Some("vite"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("flox", Some("vite"), Some("npm"), "npm run dev -- --port {port} --strictPort"),
    ("script-port", Some("vite"), Some("npm"), "npx vite --port {port} --host --strictPort"),
    ("next-script-port", Some("next"), Some("pnpm"), "pnpm exec next dev -p {port} -H 127.0.0.1"),
    ("env-port", Some("express"), Some("npm"), "NODE_ENV=development PORT={port} node server.js"),
    // A package of a workspace: the package manager is the workspace root's.
    ("pnpm-workspace-member/apps/web", Some("vite"), Some("pnpm"), "pnpm run dev --port {port} --strictPort"),
    ("bun-workspace-script/packages/site", Some("astro"), Some("bun"), "TZ=UTC bunx astro dev --port {port}"),
    // `serve` runs a production build here: `start` is the dev server.
    ("serve-build", Some("express"), Some("npm"), "npm run start"),
    ("toml-command", None, None, "pnpm dev"),
];

/// The fixture whose commands run inside `flox activate`.
const FLOX_CASE: &str = "flox";

/// `init DIR --dry-run --json` (plus `extra`) in a fresh sandbox; the one app it reports.
fn dry_run(sb: &Sandbox, dir: &str, extra: &[&str]) -> Value {
    let mut args = vec!["init", dir, "--dry-run", "--json"];
    args.extend_from_slice(extra);
    let report = sb.run(&args).json();
    let apps = report["apps"]
        .as_array()
        .unwrap_or_else(|| panic!("no apps in {report}"));
    assert_eq!(apps.len(), 1, "{dir}: expected one app, got {report}");
    apps[0].clone()
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

#[test]
fn detects_every_fixture() {
    let mut mismatches = Vec::new();
    for &(name, framework, package_manager, command) in CASES {
        let sb = Sandbox::new();
        // `FIXTURE/SUB`: init runs in a directory of the fixture (a workspace package).
        let (fixture, sub) = name.split_once('/').unwrap_or((name, ""));
        let dir = sb.fixture(&format!("detect/{fixture}")).join(sub);
        let dir = dir.to_str().unwrap().trim_end_matches('/');
        let app = dry_run(&sb, dir, &[]);
        let port = sb.port(0);
        let command = command.replace("{port}", &port.to_string());
        let expected = [
            ("framework", opt(framework)),
            ("package_manager", opt(package_manager)),
            ("command", Value::from(command)),
            ("flox", Value::from(name == FLOX_CASE)),
            ("cwd", Value::from(dir)),
            ("port", Value::from(port)),
        ];
        for (field, want) in expected {
            if app[field] != want {
                mismatches.push(format!(
                    "{name}: {field}: expected {want}, got {}",
                    app[field]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) out of {} fixtures:\n{}",
        mismatches.len(),
        CASES.len(),
        mismatches.join("\n")
    );
}

#[test]
fn flox_wraps_the_written_command() {
    let sb = Sandbox::new();
    let dir = sb.fixture(&format!("detect/{FLOX_CASE}"));
    let dir = dir.to_str().unwrap();
    let report = sb.run(["init", dir, "--json"]).json();
    assert_eq!(report["dry_run"], false, "{report}");
    assert_eq!(report["changed"], true, "{report}");
    assert_eq!(report["apps"][0]["flox"], true, "{report}");

    let port = sb.port(0);
    let file = std::path::Path::new(dir).join("ecosystem.config.cjs");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let want = format!("\"flox activate -d {dir} -- npm run dev -- --port {port} --strictPort\"");
    let args = text
        .lines()
        .find(|l| l.trim_start().starts_with("args:"))
        .unwrap_or_else(|| panic!("no args in {}:\n{text}", file.display()));
    assert!(
        args.contains(&want),
        "args should contain {want}, got: {args}\n{text}"
    );
}

#[test]
fn flox_runs_leading_assignments_through_env() {
    let sb = Sandbox::new();
    let dir = sb.fixture("detect/env-port-flox");
    let report = sb.run(["init", dir.to_str().unwrap(), "--json"]).json();
    let port = sb.port(0);
    assert_eq!(
        report["apps"][0]["command"],
        format!("NODE_ENV=development PORT={port} node server.js")
    );
    let text = std::fs::read_to_string(dir.join("ecosystem.config.cjs")).unwrap();
    let want = format!(
        "    args: [\"-c\", \"flox activate -d {} -- env NODE_ENV=development PORT={port} node server.js\"],\n",
        dir.display()
    );
    assert!(text.contains(&want), "{text}");
}

#[test]
fn command_flag_skips_detection() {
    let sb = Sandbox::new();
    let dir = sb.fixture("detect/vite");
    let dir = dir.to_str().unwrap();
    let line = "python3 -m http.server $PORT";
    let app = dry_run(&sb, dir, &["--command", line]);
    assert_eq!(app["framework"], Value::Null, "{app}");
    assert_eq!(app["package_manager"], Value::Null, "{app}");
    assert_eq!(app["command"], line, "{app}");
    assert_eq!(app["flox"], false, "{app}");
    assert_eq!(app["cwd"], dir, "{app}");
    assert_eq!(app["port"], sb.port(0), "{app}");
}

#[test]
fn a_workspace_root_that_fans_out_names_its_apps_and_the_ways_out() {
    let sb = Sandbox::new();
    let dir = sb.fixture("detect/pnpm-workspace-member");
    sb.init(&dir)
        .arg("--yes")
        .expect_code(1)
        .stderr(format!(
            "error: `{d}` is a workspace root whose `dev` script (`turbo run dev`) starts its apps (apps/web), each on a port of its own, so nothing would listen on the one port pm2-port gives it. Configure its apps instead: add a table per app to `{d}/buildflowz.toml` (`[[apps]]` `dir = \"apps/web\"`), or give one command with `--command 'CMD'`\n",
            d = dir.display()
        ))
        .no_file(dir.join("ecosystem.config.cjs"))
        .run();
    // The way out it names works.
    std::fs::write(
        dir.join("buildflowz.toml"),
        "[[apps]]\ndir = \"apps/web\"\n",
    )
    .unwrap();
    let report = sb.init(&dir).arg("--json").json();
    assert_eq!(report["apps"][0]["name"], "web");
    assert_eq!(
        report["apps"][0]["command"],
        format!("pnpm run dev --port {} --strictPort", sb.port(0))
    );
}

/// Loopback by default (issue 11, point 11): a framework that listens on every interface unless
/// told otherwise gets `127.0.0.1`, as a flag (Next's `-H`) or as the `HOST` it reads (Nuxt,
/// Create React App, Vue CLI); what `node` reads back from the written file.
#[test]
fn frameworks_that_listen_everywhere_are_given_loopback() {
    for (fixture, want_args, want_env) in [
        (
            "next",
            "pnpm run dev -H 127.0.0.1",
            serde_json::json!({"PORT": 0}),
        ),
        (
            "nuxt",
            "npm run dev",
            serde_json::json!({"HOST": "127.0.0.1", "PORT": 0}),
        ),
        (
            "cra",
            "npm run start",
            serde_json::json!({"BROWSER": "none", "HOST": "127.0.0.1", "PORT": 0}),
        ),
        (
            "vue-cli",
            "npm run serve",
            serde_json::json!({"HOST": "127.0.0.1", "PORT": 0}),
        ),
    ] {
        let sb = Sandbox::new();
        let dir = sb.fixture(&format!("detect/{fixture}"));
        sb.init(&dir).run();
        let port = sb.port(0);
        let app = &app_in_file(&dir.join("ecosystem.config.cjs"));
        let mut want_env = want_env;
        want_env["PORT"] = Value::from(port);
        assert_eq!(app["env"], want_env, "{fixture}: {app}");
        assert_eq!(app["args"][1], want_args, "{fixture}: {app}");
    }
}

/// `host` in buildflowz.toml opts out of loopback: the framework is given that address instead.
#[test]
fn host_in_buildflowz_toml_is_passed_instead_of_loopback() {
    let sb = Sandbox::new();
    let next = sb.fixture("detect/next");
    std::fs::write(next.join("buildflowz.toml"), "host = \"0.0.0.0\"\n").unwrap();
    let nuxt = sb.fixture("detect/nuxt");
    std::fs::write(nuxt.join("buildflowz.toml"), "host = \"::\"\n").unwrap();
    for dir in [&next, &nuxt] {
        sb.init(dir).run();
    }
    let app = &app_in_file(&next.join("ecosystem.config.cjs"));
    assert_eq!(app["args"][1], "pnpm run dev -H 0.0.0.0", "{app}");
    let app = &app_in_file(&nuxt.join("ecosystem.config.cjs"));
    assert_eq!(app["env"]["HOST"], "::", "{app}");
}

/// A server whose code fixes its port (issue 11, point 10): `init` says where, and still writes
/// the file (the user may fix the code next).
#[test]
fn a_port_written_in_the_code_is_named_at_init() {
    let sb = Sandbox::new();
    let nest = sb.fixture("detect/nestjs");
    std::fs::create_dir_all(nest.join("src")).unwrap();
    std::fs::write(
        nest.join("src/main.ts"),
        "async function bootstrap() {\n  const app = await NestFactory.create(AppModule);\n  await app.listen(3000);\n}\n",
    )
    .unwrap();
    let go = sb.fixture("detect/go");
    std::fs::write(
        go.join("main.go"),
        "package main\n\nimport \"net/http\"\n\nfunc main() {\n\thttp.ListenAndServe(\"0.0.0.0:8080\", nil)\n}\n",
    )
    .unwrap();
    for (dir, want) in [
        (
            &nest,
            "note: `src/main.ts` line 3 listens on port 3000 whatever PORT says (`await app.listen(3000);`): read the port from `process.env.PORT`, or the app will not be on its allocated port (`start` reports it as drift)\n",
        ),
        (
            &go,
            "note: `main.go` line 6 listens on port 8080 whatever PORT says (`http.ListenAndServe(\"0.0.0.0:8080\", nil)`): read the port from `os.Getenv(\"PORT\")`, or the app will not be on its allocated port (`start` reports it as drift)\n",
        ),
    ] {
        sb.init(dir).stderr_has(want).run();
        assert!(dir.join("ecosystem.config.cjs").exists());
    }
    // Reading PORT: no note.
    std::fs::write(
        nest.join("src/main.ts"),
        "await app.listen(process.env.PORT ?? 3000);\n",
    )
    .unwrap();
    sb.init(&nest)
        .arg("--dry-run")
        .stderr_lacks("whatever PORT says")
        .run();
    // A Go app that defines a `port` flag gets the port with it: no note for its default.
    std::fs::remove_file(go.join("ecosystem.config.cjs")).unwrap();
    std::fs::write(
        go.join("main.go"),
        "package main\n\nvar port = flag.Int(\"port\", 8080, \"port\")\n\nfunc main() {\n\thttp.ListenAndServe(\":8080\", nil)\n}\n",
    )
    .unwrap();
    sb.init(&go).stderr_lacks("whatever PORT says").run();
    let app = app_in_file(&go.join("ecosystem.config.cjs"));
    let port = app["env"]["PORT"].as_u64().unwrap();
    assert_eq!(
        app["args"],
        json!(["-c", format!("go run . --port {port}")]),
        "{app}"
    );
}
