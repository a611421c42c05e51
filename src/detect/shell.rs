//! Just enough of the POSIX shell to read a package.json script and write a command line.

/// Quote a word for `bash -c` when it needs it. A leading `NAME=value` assignment keeps its name
/// bare so that it stays an assignment.
pub fn quote_word(word: &str) -> String {
    if let Some((name, value)) = word.split_once('=')
        && is_name(name)
    {
        return format!("{name}={}", quote(value));
    }
    quote(word)
}

fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=')
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A shell variable name.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Split a command line into words when it is one simple command: no operators, redirections,
/// substitutions or expansions outside quotes. `None` otherwise.
pub fn simple_words(line: &str) -> Option<Vec<String>> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (Some('"'), '"') => quote = None,
            (Some('"'), '$' | '`') => return None,
            (Some(_), '\\') | (None, '\\') => escaped = true,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ';' | '&' | '|' | '<' | '>' | '(' | ')' | '`' | '$' | '\n' | '*' | '?') => {
                return None;
            }
            (None, _) => {}
        }
    }
    shlex::split(line).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_not() {
        assert_eq!(
            simple_words("NODE_ENV=dev vite --port 4000").unwrap(),
            ["NODE_ENV=dev", "vite", "--port", "4000"]
        );
        assert_eq!(
            simple_words(r#"next dev -p "4000""#).unwrap(),
            ["next", "dev", "-p", "4000"]
        );
        assert!(simple_words("tsc && vite").is_none());
        assert!(simple_words("vite --port $PORT").is_none());
        assert!(simple_words("concurrently \"a\" \"b\" | cat").is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_word("FOO=a b"), "FOO='a b'");
        assert_eq!(quote_word("--port=3000"), "--port=3000");
        assert_eq!(quote_word("it's"), r"'it'\''s'");
        assert_eq!(quote_word(""), "''");
    }
}
