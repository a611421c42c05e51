//! The layers of `src/` (README "Layout"), checked on the source text: only the effects layer
//! (`src/sys/`) touches the world (files, processes, sockets, libc), and no module imports from a
//! layer above its own.

use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer, lowest first: helpers, the model, the pure code, the
/// effects layer, the orchestration of a command, the commands, the entry points.
const LAYERS: &[(&str, u8)] = &[
    ("text", 0),
    ("js", 0),
    ("error", 0),
    ("output", 0),
    ("style", 0),
    ("model", 1),
    ("pm2", 2),
    ("ports", 2),
    ("buildflowz_toml", 2),
    ("detect", 2),
    ("ecosystem", 2),
    ("doctor", 2),
    ("inventory", 2),
    ("tunnel", 2),
    ("ops", 2),
    ("watch", 2),
    ("sys", 3),
    ("configure", 4),
    ("apply", 4),
    ("cmd", 5),
    ("cli", 5),
    ("lib", 6),
    ("main", 6),
];

/// What only the effects layer may use.
const WORLD: &[&str] = &[
    "std::fs",
    " fs::",
    "(fs::",
    "Command::new",
    "process::Command",
    "UnixStream",
    "UnixListener",
    "TcpListener",
    "TcpStream",
    "UdpSocket",
    "libc::",
    "MetadataCommand",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without its test module (tests may touch the world).
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let end = ["#[cfg(test)]\nmod ", "#[cfg(test)]\npub mod "]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    text[..end].to_string()
}

fn layer_of(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

#[test]
fn only_the_effects_layer_touches_the_world_and_imports_go_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(layer) = layer_of(&top) else {
            wrong.push(format!(
                "{}: module `{top}` has no layer in tests/layers.rs",
                rel.display()
            ));
            continue;
        };
        let code = code(path);
        if top != "sys" {
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                if let Some(what) = WORLD.iter().find(|w| line.contains(*w)) {
                    wrong.push(format!(
                        "{}:{}: `{}` outside src/sys/: {}",
                        rel.display(),
                        n + 1,
                        what.trim(),
                        line.trim()
                    ));
                }
            }
        }
        for (at, _) in code.match_indices("crate::") {
            let module: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(theirs) = layer_of(&module)
                && theirs > layer
            {
                let line = code[..at].lines().count();
                wrong.push(format!(
                    "{}:{line}: `{top}` (layer {layer}) imports `{module}` (layer {theirs})",
                    rel.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
