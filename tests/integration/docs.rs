//! The design notes the code cites resolve: every citation of a note under `docs/` in `src/` and
//! `tests/` names a file that exists, and the section number or quoted heading it gives after the
//! file's name (`section 2.1`, `, "Applying a changed port"`) is a heading of that file. A note
//! cited without its `docs/` prefix is refused too, so that every citation can be followed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::repo;

/// What a citation points at inside its note.
#[derive(Debug, PartialEq, Eq)]
enum Anchor {
    None,
    /// `section 3`, `section 2.1`.
    Section(String),
    /// `, "Heading"`.
    Heading(String),
}

#[derive(Debug, PartialEq, Eq)]
struct Citation {
    /// 1-based line of the citation in its file.
    line: usize,
    /// The note's file name, `product.md`.
    note: String,
    anchor: Anchor,
}

/// A comment's text without its marker: `//! a` and `/// a` and `// a` all give `a`.
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    for marker in ["//!", "///", "//"] {
        if let Some(rest) = t.strip_prefix(marker) {
            return rest.trim();
        }
    }
    t
}

/// The citations of notes under `docs/` in `text`. A citation may wrap onto the next comment line
/// (`docs/product.md section` then `3`), so the lines are joined, their comment markers dropped,
/// before they are read. `docs/` preceded by a path character (`fixtures/live/x/docs/index.md`)
/// is part of another path, not a citation.
fn citations(text: &str) -> Vec<Citation> {
    let mut joined = String::new();
    let mut line_of = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let part = strip_comment(line);
        joined.push_str(part);
        joined.push(' ');
        line_of.extend(std::iter::repeat_n(i + 1, part.len() + 1));
    }
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = joined[from..].find("docs/").map(|i| i + from) {
        from = at + "docs/".len();
        let before = joined[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || "/.-_".contains(c)) {
            continue;
        }
        let name_len = joined[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(joined.len() - from);
        let name = joined[from..from + name_len].trim_end_matches('.');
        let Some(stem) = name.strip_suffix(".md") else {
            continue;
        };
        let rest = &joined[from + stem.len() + 3..];
        let anchor = if let Some(r) = rest.strip_prefix(" section ") {
            let number: String = r
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            Anchor::Section(number.trim_end_matches('.').to_string())
        } else if let Some(r) = rest
            .strip_prefix(", \"")
            .or_else(|| rest.strip_prefix(" \""))
        {
            Anchor::Heading(r[..r.find('"').unwrap_or(r.len())].to_string())
        } else {
            Anchor::None
        };
        out.push(Citation {
            line: line_of[at],
            note: format!("{stem}.md"),
            anchor,
        });
    }
    out
}

/// The headings of a Markdown note, without their `#`s.
fn headings(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .collect()
}

/// Whether a heading is numbered `number`: `3. Dev command detection` is section 3, `2.1 `init``
/// is section 2.1.
fn numbered(heading: &str, number: &str) -> bool {
    heading
        .strip_prefix(number)
        .is_some_and(|rest| rest.starts_with(". ") || rest.starts_with(' '))
}

/// What is wrong with `citation`, if anything, given the notes in `docs`.
fn problem(citation: &Citation, docs: &Path) -> Option<String> {
    let Ok(text) = fs::read_to_string(docs.join(&citation.note)) else {
        return Some(format!("docs/{} does not exist", citation.note));
    };
    let heads = headings(&text);
    match &citation.anchor {
        Anchor::None => None,
        Anchor::Section(n) if n.is_empty() => Some("`section` without a number".to_string()),
        Anchor::Section(n) => (!heads.iter().any(|h| numbered(h, n))).then(|| {
            format!(
                "docs/{} has no section {n} (its headings: {heads:?})",
                citation.note
            )
        }),
        Anchor::Heading(h) => (!heads.iter().any(|x| x == h)).then(|| {
            format!(
                "docs/{} has no heading \"{h}\" (its headings: {heads:?})",
                citation.note
            )
        }),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "node_modules") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_cited_design_note_and_section_exists() {
    let root = repo();
    let docs = root.join("docs");
    let notes: Vec<String> = fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let this = root.join(file!().strip_prefix("./").unwrap_or(file!()));
    let mut found = 0;
    let mut problems = Vec::new();
    for file in files.iter().filter(|f| **f != this) {
        let text = fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(&root).unwrap().display();
        for citation in citations(&text) {
            found += 1;
            if let Some(why) = problem(&citation, &docs) {
                problems.push(format!("{shown}:{}: {why}", citation.line));
            }
        }
        // A note named without `docs/` cannot be followed from the code.
        for (i, line) in text.lines().enumerate() {
            for note in &notes {
                let mut from = 0;
                while let Some(at) = line[from..].find(note.as_str()).map(|a| a + from) {
                    from = at + note.len();
                    let before = line[..at].chars().next_back();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || "-_".contains(c)))
                        && !line[..at].ends_with("docs/")
                    {
                        problems.push(format!("{shown}:{}: cite `{note}` as `docs/{note}`", i + 1));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "citations that do not resolve:\n{}",
        problems.join("\n")
    );
    // The scan is not vacuous: the code cites the notes in a dozen places.
    assert!(found >= 12, "only {found} citations found");
}

#[test]
fn citations_are_read_with_their_section_or_heading_even_across_lines() {
    let text = "//! Detection (docs/product.md section 3): ...\n\
                /// `init --json`: docs/product.md section\n\
                /// 2.1.\n\
                /// Apply it (docs/pm2.md, \"Applying a changed port\"): delete it.\n\
                // The frameworks of docs/frameworks.md as data.\n\
                // compiled from fixtures/live/vitepress/docs/index.md, not a note.\n";
    let found = citations(text);
    let want = [
        (1, "product.md", Anchor::Section("3".into())),
        (2, "product.md", Anchor::Section("2.1".into())),
        (
            4,
            "pm2.md",
            Anchor::Heading("Applying a changed port".into()),
        ),
        (5, "frameworks.md", Anchor::None),
    ]
    .map(|(line, note, anchor)| Citation {
        line,
        note: note.to_string(),
        anchor,
    });
    assert_eq!(found, want);

    // Against the real notes: what resolves, and what would not.
    let docs = repo().join("docs");
    for ok in &found {
        assert_eq!(problem(ok, &docs), None, "{ok:?}");
    }
    let bad = |text: &str| {
        let c = citations(text);
        assert_eq!(c.len(), 1, "{text}");
        problem(&c[0], &docs).unwrap_or_else(|| panic!("{text} resolved"))
    };
    assert_eq!(bad("// docs/nowhere.md"), "docs/nowhere.md does not exist");
    assert!(bad("// docs/product.md section 42").starts_with("docs/product.md has no section 42"));
    assert!(bad("// docs/product.md section 2.9").contains("no section 2.9"));
    assert!(bad("// docs/pm2.md, \"Applying a port\"").contains("no heading \"Applying a port\""));
}
