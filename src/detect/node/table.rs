//! The frameworks of docs/frameworks.md as data: one row per framework (how it is recognised, how
//! its dev server starts and takes a port), and the programs a script may start that are not a
//! framework's binary. A new framework is a row here and a fixture under `fixtures/detect/`.

/// How a framework's dev server is recognised in a script, and how it takes a port.
pub struct Framework {
    pub id: &'static str,
    /// Any of these dependencies selects the framework.
    pub deps: &'static [&'static str],
    /// Config files (without extension) that confirm the framework when its dependency is
    /// hoisted to the workspace root (`vite.config` for `vite.config.ts`, `.mjs`, ...).
    pub configs: &'static [&'static str],
    /// The binary in `node_modules/.bin`.
    pub bin: &'static str,
    /// Other names of the binary (`nuxi` for `nuxt`).
    pub bin_aliases: &'static [&'static str],
    /// The arguments that make `bin` start the dev server; in a script, the first one must follow
    /// the binary (`next dev`). Empty: the bare binary is the dev server (`vite`).
    pub dev_args: &'static [&'static str],
    /// The port arguments (`{port}` is the port); empty when the framework reads `PORT`.
    pub port_args: &'static [&'static str],
    /// Flags that go with the port arguments, each from a major version of the framework on
    /// (`--exact-port` from Storybook 8): they make a taken port an error and keep the server
    /// from prompting or opening a browser under PM2.
    pub flags: &'static [(&'static str, u64)],
    /// The arguments that make the dev server listen on `{host}` (loopback unless buildflowz.toml
    /// says `host`), for a server that listens on every interface by default (`next dev -H`).
    pub host_args: &'static [&'static str],
    /// Environment the framework wants; `{host}` stands for the address to listen on (`HOST` for
    /// Nuxt, Create React App and Vue CLI, which read it).
    pub env: &'static [(&'static str, &'static str)],
    /// The binary run with no subcommand starts the dev server (`vitepress` is `vitepress dev`).
    pub bare_is_dev: bool,
    /// Only a script that runs the binary, or a config file, makes the dependency count: the
    /// dependency alone is often a peer of another tool (Vite under Storybook or Vitest).
    pub needs_use: bool,
    /// The major versions of the framework this row is for (SolidStart 1 runs `vinxi dev`, 2 runs
    /// `vite dev`); a version that cannot be read counts as the newest.
    pub majors: (u64, u64),
    /// How the framework is recognised beyond its dependencies, for the README (the rule is in
    /// `Package::is_present`).
    pub doc: &'static str,
    /// A program installed on its own (Hugo): a script runs it from `PATH` unless one of `deps`
    /// (an npm package that ships it) is installed.
    pub system: bool,
}

pub const VITE_PORT: &[&str] = &["--port", "{port}", "--strictPort"];
pub const PORT_FLAG: &[&str] = &["--port", "{port}"];
pub const CONFIG_EXTENSIONS: &[&str] = &["ts", "js", "mjs", "mts", "cjs", "cts"];

const fn fw(
    id: &'static str,
    deps: &'static [&'static str],
    bin: &'static str,
    dev_args: &'static [&'static str],
    port_args: &'static [&'static str],
) -> Framework {
    Framework {
        id,
        deps,
        configs: &[],
        bin,
        bin_aliases: &[],
        dev_args,
        port_args,
        flags: &[],
        host_args: &[],
        env: &[],
        bare_is_dev: false,
        needs_use: false,
        majors: (0, u64::MAX),
        doc: "",
        system: false,
    }
}

/// Most specific first: a framework built on another one supersedes it.
pub static FRAMEWORKS: &[Framework] = &[
    // Hugo sites that keep their tooling in package.json: chosen by the Hugo config and a script
    // that runs `hugo server`, or by the npm package that ships Hugo (see `is_present`).
    Framework {
        system: true,
        doc: "or a Hugo config (`hugo.toml`, `config/_default/hugo.*`, ...) and a script that runs `hugo server`",
        ..fw(
            "hugo",
            &["hugo-bin", "hugo-extended"],
            "hugo",
            &["server"],
            &["-p", "{port}"],
        )
    },
    fw(
        "analog",
        &["@analogjs/platform"],
        "ng",
        &["serve"],
        PORT_FLAG,
    ),
    Framework {
        configs: &["svelte.config"],
        ..fw("sveltekit", &["@sveltejs/kit"], "vite", &["dev"], VITE_PORT)
    },
    fw(
        "qwik",
        &["@builder.io/qwik"],
        "vite",
        &["--mode", "ssr"],
        VITE_PORT,
    ),
    Framework {
        majors: (2, u64::MAX),
        ..fw(
            "solid-start",
            &["@solidjs/start"],
            "vite",
            &["dev"],
            VITE_PORT,
        )
    },
    Framework {
        majors: (0, 1),
        ..fw(
            "solid-start",
            &["@solidjs/start"],
            "vinxi",
            &["dev"],
            PORT_FLAG,
        )
    },
    fw(
        "tanstack-start",
        &["@tanstack/react-start", "@tanstack/solid-start"],
        "vite",
        &["dev"],
        VITE_PORT,
    ),
    // remix-vite and remix share the dependency; `is_present` picks one by `vite.config.*`.
    Framework {
        doc: "with `vite.config.*`",
        ..fw(
            "remix-vite",
            &["@remix-run/dev"],
            "remix",
            &["vite:dev"],
            VITE_PORT,
        )
    },
    Framework {
        doc: "without `vite.config.*`",
        ..fw("remix", &["@remix-run/dev"], "remix", &["dev"], &[])
    },
    fw(
        "react-router",
        &["@react-router/dev"],
        "react-router",
        &["dev"],
        VITE_PORT,
    ),
    Framework {
        bin_aliases: &["redwood"],
        ..fw(
            "redwood",
            &["@redwoodjs/core"],
            "rw",
            &["dev"],
            &["--fwd=--port={port}"],
        )
    },
    Framework {
        bin_aliases: &["nuxi"],
        configs: &["nuxt.config"],
        env: &[("HOST", "{host}")],
        ..fw(
            "nuxt",
            &["nuxt", "nuxt3", "nuxt-nightly"],
            "nuxt",
            &["dev"],
            &[],
        )
    },
    // A bare `next` is `next dev` (its default command).
    Framework {
        configs: &["next.config"],
        host_args: &["-H", "{host}"],
        bare_is_dev: true,
        ..fw("next", &["next"], "next", &["dev"], &[])
    },
    Framework {
        configs: &["astro.config"],
        ..fw("astro", &["astro"], "astro", &["dev"], PORT_FLAG)
    },
    fw("gatsby", &["gatsby"], "gatsby", &["develop"], &[]),
    fw(
        "docusaurus",
        &["@docusaurus/core"],
        "docusaurus",
        &["start"],
        &[],
    ),
    // VitePress passes Vite's server flags on; bare `vitepress` is `vitepress dev`.
    Framework {
        bare_is_dev: true,
        ..fw(
            "vitepress",
            &["vitepress"],
            "vitepress",
            &["dev"],
            VITE_PORT,
        )
    },
    Framework {
        doc: "or `angular.json`",
        ..fw("angular", &["@angular/cli"], "ng", &["serve"], PORT_FLAG)
    },
    fw("ember", &["ember-cli"], "ember", &["serve"], PORT_FLAG),
    fw(
        "eleventy",
        &["@11ty/eleventy"],
        "eleventy",
        &["--serve"],
        &["--port={port}"],
    ),
    fw("expo", &["expo"], "expo", &["start"], PORT_FLAG),
    Framework {
        env: &[("HOST", "{host}")],
        ..fw(
            "vue-cli",
            &["@vue/cli-service"],
            "vue-cli-service",
            &["serve"],
            &[],
        )
    },
    Framework {
        env: &[("BROWSER", "none"), ("HOST", "{host}")],
        ..fw("cra", &["react-scripts"], "react-scripts", &["start"], &[])
    },
    fw("parcel", &["parcel"], "parcel", &[], PORT_FLAG),
    Framework {
        configs: &["vite.config"],
        needs_use: true,
        ..fw("vite", &["vite"], "vite", &[], VITE_PORT)
    },
    // Cloudflare Workers: chosen by `wrangler.toml`/`wrangler.json(c)` or a `wrangler dev`
    // script, see `is_present`.
    Framework {
        doc: "with `wrangler.toml`/`wrangler.json(c)` or a script that runs `wrangler dev`",
        ..fw("wrangler", &["wrangler"], "wrangler", &["dev"], PORT_FLAG)
    },
    // Servers that read PORT by convention: run their script, PORT does the rest.
    fw(
        "nestjs",
        &["@nestjs/core"],
        "nest",
        &["start", "--watch"],
        &[],
    ),
    fw("hono", &["hono"], "", &[], &[]),
    fw("express", &["express"], "", &[], &[]),
    fw("fastify", &["fastify"], "", &[], &[]),
    fw("koa", &["koa"], "", &[], &[]),
    // Usually a second app beside the main one: only when nothing else matches. `--ci`: no
    // prompt for another port, no browser; `--exact-port` (Storybook 8+): fail on a taken port.
    Framework {
        flags: &[("--ci", 0), ("--exact-port", 8)],
        doc: "when nothing above matches",
        majors: (7, u64::MAX),
        ..fw(
            "storybook",
            &["storybook", "@storybook/cli"],
            "storybook",
            &["dev"],
            &["-p", "{port}"],
        )
    },
    // Storybook 6 and older: `start-storybook`, from the renderer's package.
    Framework {
        flags: &[("--ci", 0)],
        doc: "when nothing above matches",
        majors: (0, 6),
        ..fw(
            "storybook",
            &[
                "@storybook/cli",
                "@storybook/react",
                "@storybook/vue",
                "@storybook/vue3",
                "@storybook/angular",
                "@storybook/html",
                "@storybook/svelte",
                "@storybook/web-components",
            ],
            "start-storybook",
            &[],
            &["-p", "{port}"],
        )
    },
];

/// The scripts that may start the dev server, in order. `serve` comes last: it usually serves a
/// production build (`docusaurus serve`, `gatsby serve`, `http-server build`), unless it runs the
/// framework's dev command (`vue-cli-service serve`), which wins whatever the order. `dev:watch`
/// follows `dev` for the projects whose `dev` runs a prebuilt `build/…`.
pub const SCRIPTS: &[&str] = &["dev", "dev:watch", "develop", "start:dev", "start", "serve"];

/// Subcommands after a bare-binary dev server that mean something else (`vite build`).
pub const NOT_DEV: &[&str] = &[
    "build", "preview", "optimize", "test", "lint", "check", "generate",
];

/// Programs a script may start that are not binaries of `node_modules/.bin`: they run as written.
pub const LAUNCHERS: &[&str] = &[
    "node",
    "npx",
    "npm",
    "pnpm",
    "pnpx",
    "yarn",
    "bun",
    "bunx",
    "deno",
    "tsx",
    "ts-node",
    "cross-env",
    "dotenv",
    "env",
    "nodemon",
];

/// Whether a script's words start `fw`'s dev server: its binary followed by its first dev
/// argument, or for a bare-binary server, by anything but another subcommand.
pub fn invokes_dev(words: &[String], fw: &Framework) -> bool {
    if fw.bin.is_empty() {
        return false;
    }
    // For a flag (`eleventy --serve`): its last position, so that the scan stays linear.
    let last_flag = match fw.dev_args.first() {
        Some(flag) if flag.starts_with('-') => words.iter().rposition(|w| w == flag),
        _ => None,
    };
    words.iter().enumerate().any(|(i, w)| {
        let name = w.rsplit('/').next().unwrap_or(w);
        if name != fw.bin && !fw.bin_aliases.contains(&name) {
            return false;
        }
        let rest = &words[i + 1..];
        match fw.dev_args.first() {
            Some(flag) if flag.starts_with('-') => last_flag.is_some_and(|last| last > i),
            Some(sub) => {
                rest.first().is_some_and(|w| w == sub)
                    || (fw.bare_is_dev && rest.first().is_none_or(|w| w.starts_with('-')))
            }
            None => rest.first().is_none_or(|w| !NOT_DEV.contains(&w.as_str())),
        }
    })
}

/// The major version in a dependency's version range (`^7.6.17` is 7), `None` when there is
/// none (`latest`, `workspace:*`): then the newest behaviour is assumed.
pub fn major(spec: &str) -> Option<u64> {
    let digits: String = spec
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if spec.contains(':') && !spec.starts_with("npm:") {
        return None;
    }
    digits.parse().ok()
}

/// The README's table of the Node frameworks, generated from [`FRAMEWORKS`] (a test keeps the
/// README equal to it).
pub fn markdown() -> String {
    let code = |s: &str| format!("`{s}`");
    let list = |items: &[&str]| items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ");
    let mut out = String::from(
        "| id | recognised by | dev command | port | listens on | notes |\n|---|---|---|---|---|---|\n",
    );
    for fw in FRAMEWORKS {
        let mut by = list(fw.deps);
        if !fw.doc.is_empty() {
            by.push_str(&format!(" {}", fw.doc));
        }
        if !fw.configs.is_empty() {
            by.push_str(&format!(
                "; {} with the dependency at the workspace root",
                list(
                    &fw.configs
                        .iter()
                        .map(|c| format!("{c}.*"))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                )
            ));
        }
        let dev = if fw.bin.is_empty() {
            "its `dev`/`start` script".to_string()
        } else {
            code(
                &[fw.bin]
                    .iter()
                    .chain(fw.dev_args)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        };
        let mut port = if fw.port_args.is_empty() {
            "`PORT`".to_string()
        } else {
            code(&fw.port_args.join(" ").replace("{port}", "N"))
        };
        for (flag, since) in fw.flags {
            port.push_str(&match since {
                0 => format!(" {}", code(flag)),
                v => format!(" {} ({v}+)", code(flag)),
            });
        }
        let host_env = fw.env.iter().find(|(_, v)| v.contains("{host}"));
        let host = match (fw.host_args, host_env) {
            ([], None) if fw.bin.is_empty() => "what the app's code says".to_string(),
            ([], None) => "its default".to_string(),
            ([], Some((k, _))) => format!("`{k}=127.0.0.1`"),
            (args, _) => code(&args.join(" ").replace("{host}", "127.0.0.1")),
        };
        let mut notes = Vec::new();
        if fw.majors != (0, u64::MAX) {
            notes.push(match fw.majors {
                (0, high) => format!("versions up to {high}.x"),
                (low, _) => format!("versions {low}.x and later"),
            });
        }
        if fw.needs_use {
            notes.push("only with its config file or a script that runs it".to_string());
        }
        if fw.bare_is_dev {
            notes.push(format!("a bare `{}` is the dev server", fw.bin));
        }
        if fw.system {
            notes.push("from `PATH` unless the npm package is installed".to_string());
        }
        notes.extend(
            fw.env
                .iter()
                .filter(|(_, v)| !v.contains("{host}"))
                .map(|(k, v)| format!("`{k}={v}`")),
        );
        out.push_str(&format!(
            "| `{}` | {by} | {dev} | {port} | {host} | {} |\n",
            fw.id,
            notes.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shlex::split(s).unwrap()
    }

    pub fn by_id(id: &str) -> &'static Framework {
        FRAMEWORKS.iter().find(|f| f.id == id).unwrap()
    }

    #[test]
    fn dev_invocations() {
        assert!(invokes_dev(&words("next dev --turbo"), by_id("next")));
        assert!(!invokes_dev(&words("next start"), by_id("next")));
        assert!(invokes_dev(&words("vite"), by_id("vite")));
        assert!(invokes_dev(&words("vite --host"), by_id("vite")));
        assert!(!invokes_dev(&words("vite build"), by_id("vite")));
        assert!(invokes_dev(&words("nuxi dev"), by_id("nuxt")));
        assert!(invokes_dev(&words("vitepress"), by_id("vitepress")));
        assert!(invokes_dev(
            &words("vitepress dev docs"),
            by_id("vitepress")
        ));
        assert!(!invokes_dev(
            &words("vitepress build docs"),
            by_id("vitepress")
        ));
        assert!(invokes_dev(&words("hugo server -D"), by_id("hugo")));
        assert!(!invokes_dev(&words("hugo --minify"), by_id("hugo")));
        assert!(invokes_dev(
            &words("npx @11ty/eleventy --serve"),
            by_id("eleventy")
        ));
        assert!(invokes_dev(
            &words("eleventy --serve --quiet"),
            by_id("eleventy")
        ));
        assert!(!invokes_dev(&words("eleventy"), by_id("eleventy")));
        assert!(invokes_dev(&words("next"), by_id("next")));
        assert!(invokes_dev(&words("next -p 4000"), by_id("next")));
        assert!(!invokes_dev(&words("next build"), by_id("next")));
    }

    /// The README's frameworks table is this table (`PM2_PORT_BLESS=1 cargo test` rewrites it).
    #[test]
    fn the_readme_table_is_generated() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (start, end) = ("<!-- frameworks:begin -->\n", "<!-- frameworks:end -->");
        let from = readme
            .find(start)
            .expect("README has the frameworks markers")
            + start.len();
        let to = readme.find(end).unwrap();
        let table = markdown();
        if std::env::var_os("PM2_PORT_BLESS").is_some() {
            std::fs::write(
                &path,
                format!("{}{table}{}", &readme[..from], &readme[to..]),
            )
            .unwrap();
            return;
        }
        assert_eq!(
            readme[from..to],
            table,
            "README's frameworks table is out of date: run `PM2_PORT_BLESS=1 cargo test --lib the_readme_table`"
        );
    }

    #[test]
    fn majors() {
        assert_eq!(major("^7.6.17"), Some(7));
        assert_eq!(major(">=8"), Some(8));
        assert_eq!(major("~10.0.0-alpha.1"), Some(10));
        assert_eq!(major("latest"), None);
        assert_eq!(major("workspace:^8.0.0"), None);
        assert_eq!(major("catalog:"), None);
    }
}
