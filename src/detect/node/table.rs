//! The frameworks of frameworks.md as data: one row per framework (how it is recognised, how its
//! dev server starts and takes a port), and the programs a script may start that are not a
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
        system: false,
    }
}

/// Most specific first: a framework built on another one supersedes it.
pub static FRAMEWORKS: &[Framework] = &[
    // Hugo sites that keep their tooling in package.json: chosen by the Hugo config and a script
    // that runs `hugo server`, or by the npm package that ships Hugo (see `is_present`).
    Framework {
        system: true,
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
    fw(
        "solid-start",
        &["@solidjs/start"],
        "vinxi",
        &["dev"],
        PORT_FLAG,
    ),
    fw(
        "tanstack-start",
        &["@tanstack/react-start", "@tanstack/solid-start"],
        "vite",
        &["dev"],
        VITE_PORT,
    ),
    // remix-vite and remix share the dependency; `is_present` picks one by `vite.config.*`.
    fw(
        "remix-vite",
        &["@remix-run/dev"],
        "remix",
        &["vite:dev"],
        VITE_PORT,
    ),
    fw("remix", &["@remix-run/dev"], "remix", &["dev"], &[]),
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
    Framework {
        configs: &["next.config"],
        host_args: &["-H", "{host}"],
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
    fw("angular", &["@angular/cli"], "ng", &["serve"], PORT_FLAG),
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
    fw("wrangler", &["wrangler"], "wrangler", &["dev"], PORT_FLAG),
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
        ..fw(
            "storybook",
            &["storybook", "@storybook/cli"],
            "storybook",
            &["dev"],
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
    words.iter().enumerate().any(|(i, w)| {
        let name = w.rsplit('/').next().unwrap_or(w);
        if name != fw.bin && !fw.bin_aliases.contains(&name) {
            return false;
        }
        let rest = &words[i + 1..];
        match fw.dev_args.first() {
            Some(flag) if flag.starts_with('-') => rest.iter().any(|w| w == flag),
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
