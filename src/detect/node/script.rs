//! Reading a package.json script: the words of its commands, the port it pins, the script it
//! stands for, the directory it hands off to, and whether it fans out or runs a prebuilt build.

use crate::detect::shell;

/// A port flag already in a command's words: the index of the value to replace.
pub fn port_in_words(words: &[String]) -> Option<(usize, PortSyntax)> {
    for (i, w) in words.iter().enumerate() {
        if (w == "--port" || w == "-p") && words.get(i + 1).is_some_and(|v| is_port(v)) {
            return Some((i + 1, PortSyntax::Separate));
        }
        for prefix in ["--port=", "-p=", "PORT="] {
            if w.strip_prefix(prefix).is_some_and(is_port) {
                return Some((i, PortSyntax::Joined(prefix)));
            }
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
pub enum PortSyntax {
    Separate,
    Joined(&'static str),
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the text seems to pin a port, for a script pm2-port cannot read word by word.
pub fn port_pinned_in_text(cmd: &str) -> bool {
    let words: Vec<String> = cmd
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(str::to_string)
        .collect();
    port_in_words(&words).is_some()
}

const OPERATORS: &[&str] = &["&&", "||", ";", "|", "&"];

/// One command of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub words: Vec<String>,
    /// Flags given to the script reach this command (`pm run NAME --port N` appends them to the
    /// script's text): it is the last command of the script, not inside a quoted argument.
    pub takes_appended: bool,
}

/// The commands of a script: split at `&&`, `||`, `;`, `|`, `&`, and the commands inside quoted
/// arguments (`concurrently "next dev --port 8888" "tsc -w"`). `None` when the text does not
/// split into words.
pub fn segments(cmd: &str) -> Option<Vec<Segment>> {
    let words = shlex::split(cmd)?;
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    // Commands inside quoted arguments come after the command that holds them.
    let mut inner: Vec<Segment> = Vec::new();
    let flush = |current: &mut Vec<String>, inner: &mut Vec<Segment>, out: &mut Vec<Segment>| {
        if !current.is_empty() {
            out.push(Segment {
                words: std::mem::take(current),
                takes_appended: false,
            });
        }
        out.append(inner);
    };
    for word in words {
        if OPERATORS.contains(&word.as_str()) {
            flush(&mut current, &mut inner, &mut out);
        } else if word.contains(' ') {
            if let Some(words) = shlex::split(&word) {
                inner.extend(inner_segments(&words));
            }
        } else {
            current.push(word);
        }
    }
    let tail = !current.is_empty() && inner.is_empty();
    flush(&mut current, &mut inner, &mut out);
    if tail && let Some(last) = out.last_mut() {
        last.takes_appended = true;
    }
    Some(out)
}

fn inner_segments(words: &[String]) -> Vec<Segment> {
    words
        .split(|w| OPERATORS.contains(&w.as_str()))
        .filter(|s| !s.is_empty())
        .map(|s| Segment {
            words: s.to_vec(),
            takes_appended: false,
        })
        .collect()
}

/// Leading `NAME=value` assignments of a command's words.
pub fn assignments(words: &[String]) -> usize {
    words
        .iter()
        .take_while(|w| w.split_once('=').is_some_and(|(n, _)| shell::is_name(n)))
        .count()
}

/// The script a script stands for: `npm run X`, `yarn X`, `yarn run X`, `pnpm X`, `pnpm run X`
/// or `bun run X` where X is another script of the same package.json and nothing follows.
pub fn alias<'a>(cmd: &str, scripts: &'a [(String, String)]) -> Option<&'a (String, String)> {
    let words = shell::simple_words(cmd)?;
    let name = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["npm" | "pnpm" | "yarn" | "bun", "run" | "run-script", name] => name.to_string(),
        ["yarn" | "pnpm", name] => name.to_string(),
        _ => return None,
    };
    scripts.iter().find(|(n, _)| *n == name)
}

/// Flags by which a package manager runs a script in another directory.
const DIR_FLAGS: &[&str] = &["-C", "--cwd", "--dir", "--prefix"];

/// Flags by which a package manager starts the apps of a workspace rather than one server:
/// recursive and filtered runs.
const FAN_OUT: &[&str] = &[
    "-r",
    "--recursive",
    "--filter",
    "-F",
    "--workspace",
    "--workspaces",
    "-ws",
];

/// A script that runs a script of one subdirectory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    /// The directory, relative, below the package.
    pub dir: String,
    /// The script it runs there, when the command names one (`start` in `yarn --cwd web start`).
    pub script: Option<String>,
    /// The package manager that runs it there: npm takes flags appended to it as its own.
    pub npm: bool,
}

const PACKAGE_MANAGERS: &[&str] = &["npm", "pnpm", "yarn", "bun"];

/// The directory a script hands off to: one command of a package manager with one directory
/// flag (`yarn --cwd website start`, `npm --prefix app run dev`, `pnpm -C web dev`), or
/// `cd DIR && PM run SCRIPT`.
pub fn hand_off(cmd: &str) -> Option<HandOff> {
    let (dir, words): (String, Vec<String>) = match shell::simple_words(cmd) {
        Some(words) => {
            let mut dirs = words.iter().enumerate().filter_map(|(i, w)| {
                DIR_FLAGS
                    .iter()
                    .find_map(|f| w.strip_prefix(&format!("{f}=")))
                    .map(|d| (d.to_string(), i + 1))
                    .or_else(|| {
                        DIR_FLAGS
                            .contains(&w.as_str())
                            .then(|| words.get(i + 1).map(|d| (d.clone(), i + 2)))
                            .flatten()
                    })
            });
            let (dir, after) = dirs.next()?;
            if dirs.next().is_some() {
                return None;
            }
            let mut rest = vec![words[0].clone()];
            rest.extend(words[after..].iter().cloned());
            (dir, rest)
        }
        None => {
            let segs = segments(cmd)?;
            match &segs[..] {
                [cd, run]
                    if cd.words.len() == 2
                        && cd.words[0] == "cd"
                        && run.takes_appended
                        && !run.words.iter().any(|w| {
                            DIR_FLAGS
                                .iter()
                                .any(|f| w == f || w.starts_with(&format!("{f}=")))
                        }) =>
                {
                    (cd.words[1].clone(), run.words.clone())
                }
                _ => return None,
            }
        }
    };
    let program = words.first()?.as_str();
    if !PACKAGE_MANAGERS.contains(&program) || words.iter().any(|w| FAN_OUT.contains(&w.as_str())) {
        return None;
    }
    // Only a directory below the package: never itself, a parent or an absolute path.
    let path = std::path::Path::new(&dir);
    let below = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) && path
        .components()
        .any(|c| matches!(c, std::path::Component::Normal(_)));
    if !below {
        return None;
    }
    let mut names = words[1..].iter().filter(|w| !w.starts_with('-'));
    let script = match names.next().map(String::as_str) {
        Some("run" | "run-script") => names.next().cloned(),
        Some(name) => Some(name.to_string()),
        None => None,
    };
    Some(HandOff {
        dir: dir
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string(),
        script,
        npm: program == "npm",
    })
}

/// Whether a command of a script cannot be run on its own: it redirects, expands a variable or
/// a command, or follows a `cd` (then it would run in the wrong directory).
pub fn needs_its_script(segments: &[Segment], at: usize) -> bool {
    let seg = &segments[at];
    seg.words.iter().any(|w| w.contains(['>', '<', '$', '`']))
        || segments[..at]
            .iter()
            .any(|s| matches!(s.words.first().map(String::as_str), Some("cd" | "pushd")))
}

/// Whether the script fans out to the workspace's apps (inside quoted arguments too, as in
/// `concurrently "pnpm -C app run dev" "pnpm -C api run dev"`): a task runner, a recursive or
/// filtered run of a package manager, or several runs in other directories; a single hand-off
/// is not (see [`hand_off`]). `-r` of `node -r dotenv/config` is not a recursive run.
pub fn fans_out(cmd: &str) -> bool {
    let segs = segments(cmd).unwrap_or_default();
    let mut dir_runs = 0;
    for seg in &segs {
        let words = &seg.words[assignments(&seg.words)..];
        let program = words.first().map(String::as_str).unwrap_or_default();
        if matches!(program, "turbo" | "nx" | "lerna") {
            return true;
        }
        if PACKAGE_MANAGERS.contains(&program) {
            if words.iter().any(|w| FAN_OUT.contains(&w.as_str())) {
                return true;
            }
            dir_runs += words
                .iter()
                .filter(|w| {
                    DIR_FLAGS
                        .iter()
                        .any(|f| *w == f || w.starts_with(&format!("{f}=")))
                })
                .count();
        }
    }
    dir_runs > 1 || (dir_runs == 1 && hand_off(cmd).is_none())
}

/// Whether the script runs a prebuilt server (`node dist/main`, `node build/index.js`): a
/// production start, not a dev server.
pub fn runs_prebuilt(cmd: &str) -> bool {
    let Some(words) = shell::simple_words(cmd) else {
        return false;
    };
    let rest = &words[assignments(&words)..];
    matches!(rest.first().map(String::as_str), Some("node"))
        && rest
            .iter()
            .skip(1)
            .find(|w| !w.starts_with('-'))
            .is_some_and(|w| {
                let w = w.trim_start_matches("./");
                ["dist/", "build/", ".output/", "out/"]
                    .iter()
                    .any(|d| w.starts_with(d))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shlex::split(s).unwrap()
    }

    #[test]
    fn ports_in_scripts() {
        assert!(matches!(
            port_in_words(&words("vite --port 4000")),
            Some((2, PortSyntax::Separate))
        ));
        assert!(matches!(
            port_in_words(&words("next dev -p 4000")),
            Some((3, _))
        ));
        assert!(port_in_words(&words("eleventy --serve --port=8081")).is_some());
        assert!(port_in_words(&words("vite --port")).is_none());
    }

    #[test]
    fn segments_of_compound_scripts() {
        let s = segments("yarn && vite").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].words, ["vite"]);
        assert!(s[1].takes_appended && !s[0].takes_appended);
        let s = segments(
            r#"pnpm prisma:generate && concurrently --kill-others "next dev --turbopack --port 8888""#,
        )
        .unwrap();
        assert_eq!(s[1].words, ["concurrently", "--kill-others"]);
        assert_eq!(s[2].words, words("next dev --turbopack --port 8888"));
        assert!(s.iter().all(|s| !s.takes_appended));
    }

    #[test]
    fn aliases_hand_offs_and_fan_outs() {
        let scripts = vec![
            ("start".to_string(), "npm run docs-serve".to_string()),
            ("docs-serve".to_string(), "hugo server".to_string()),
        ];
        assert_eq!(
            alias("npm run docs-serve", &scripts).unwrap().0,
            "docs-serve"
        );
        assert!(alias("npm run docs-serve --x", &scripts).is_none());
        assert!(alias("npm run nothing", &scripts).is_none());
        let dir = |cmd: &str| hand_off(cmd).map(|h| (h.dir, h.script, h.npm));
        assert_eq!(
            dir("yarn --cwd website start"),
            Some(("website".into(), Some("start".into()), false))
        );
        assert_eq!(
            dir("yarn --cwd ./excalidraw-app start"),
            Some(("excalidraw-app".into(), Some("start".into()), false))
        );
        assert_eq!(
            dir("npm --prefix=app run dev"),
            Some(("app".into(), Some("dev".into()), true))
        );
        assert_eq!(
            dir("cd frontend && npm run dev"),
            Some(("frontend".into(), Some("dev".into()), true))
        );
        assert_eq!(
            dir("cd web && pnpm storybook"),
            Some(("web".into(), Some("storybook".into()), false))
        );
        assert!(hand_off("cd web && uvicorn app:app").is_none());
        assert!(hand_off("pnpm -r dev").is_none());
        assert!(!fans_out("nodemon -r dotenv/config server.js"));
        assert!(!fans_out("node -r ts-node/register src/index.ts"));
        assert!(fans_out("pnpm -r --parallel dev"));
        assert!(fans_out("lerna run dev"));
        assert!(!fans_out("yarn --cwd website start"));
        assert!(fans_out("concurrently \"pnpm -C a dev\" \"pnpm -C b dev\""));
        assert!(fans_out("turbo run dev --filter web"));
        assert!(fans_out("cd x && yarn --cwd a start"));
        assert!(fans_out("concurrently \"pnpm -C app run dev\""));
    }

    #[test]
    fn commands_that_need_their_script() {
        let segs = segments("vite --port 4000 2>&1 | tee dev.log").unwrap();
        assert!(needs_its_script(&segs, 0));
        let segs = segments("cd frontend && vite --port 4000").unwrap();
        assert!(needs_its_script(&segs, 1));
        let segs = segments("tsc && vite --port 4000 --host ${HOST:-localhost}").unwrap();
        assert!(needs_its_script(&segs, 1));
        let segs = segments("pnpm gen && concurrently \"next dev --port 8888\"").unwrap();
        assert!(!needs_its_script(&segs, 2));
    }

    #[test]
    fn prebuilt_servers() {
        assert!(runs_prebuilt("node dist/apps/api/main"));
        assert!(runs_prebuilt("NODE_ENV=production node ./build/index.js"));
        assert!(!runs_prebuilt("node server.js"));
        assert!(!runs_prebuilt("node --watch src/index.js"));
    }
}
