//! Colour for terminals: only on a terminal, never with `NO_COLOR` or `TERM=dumb`.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Dim,
    Bold,
}

fn allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Whether stdout gets colour.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && allowed()
}

/// Whether stderr (prompts, progress) gets colour.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && allowed()
}

/// `text` in `color` when `on`; padding should be applied before painting.
pub fn paint(text: &str, color: Color, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match color {
        Color::Red => "31",
        Color::Green => "32",
        Color::Yellow => "33",
        Color::Dim => "2",
        Color::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
