//! Text from elsewhere (a server's app names, another program's stderr) made safe to show on a
//! terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every character a terminal would act on instead of showing written as an escape:
/// control characters (C0, DEL, C1) and the Unicode bidi overrides and isolates (U+202A-U+202E,
/// U+2066-U+2069), so that no escape sequence, line break or reordering of the line reaches the
/// terminal. ESC is `\e`, line feed `\n`, carriage return `\r`, tab `\t`, the others `\u{HEX}`.
///
/// This is for display, not a reversible encoding: a backslash is kept as it is, so applying it
/// twice changes nothing. JSON output needs none of it (serde_json escapes C0 itself).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` without its colour and cursor sequences (ECMA-48 CSI: `ESC [` parameters, a final byte
/// `@`..`~`): what PM2 prints in colour, as text. Other control characters are left for
/// [`escape`].
pub fn strip_csi(s: &str) -> Cow<'_, str> {
    if !s.contains("\x1b[") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let seq = &rest[at + 2..];
        let end = seq
            .char_indices()
            .find(|(_, c)| ('@'..='~').contains(c))
            .map_or(seq.len(), |(i, c)| i + c.len_utf8());
        rest = &seq[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // `is_control` is Unicode's Cc: U+0000-U+001F, U+007F-U+009F.
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_sequences_are_stripped_and_nothing_else() {
        assert_eq!(
            strip_csi("\x1b[33m[PM2][WARN] \x1b[39mExpect \x1b[1;31mx\x1b[0m\x07"),
            "[PM2][WARN] Expect x\x07"
        );
        assert_eq!(strip_csi("cut \x1b[3"), "cut ");
        assert!(matches!(strip_csi("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn plain_text_is_borrowed_as_is() {
        for s in ["shop", "", "блог → 3004", "a\\nb", "café 🚀", "\u{200f}"] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn terminal_sequences_are_shown_escaped() {
        assert_eq!(
            escape("web\x1b]0;pwned\x07\x1b[2J\n  http://localhost:1  forged"),
            "web\\e]0;pwned\\u{7}\\e[2J\\n  http://localhost:1  forged"
        );
        assert_eq!(escape("a\rb\tc\0d\x7fe"), "a\\rb\\tc\\u{0}d\\u{7f}e");
        // C1: CSI and OSC on their own, as 8-bit terminals read them.
        assert_eq!(
            escape("x\u{9b}2Jy\u{9d}0;t\u{9c}"),
            "x\\u{9b}2Jy\\u{9d}0;t\\u{9c}"
        );
        assert_eq!(escape("\u{80}\u{9f}\u{a0}"), "\\u{80}\\u{9f}\u{a0}");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_shown_escaped() {
        assert_eq!(
            escape("app\u{202e}txt.exe\u{202c}"),
            "app\\u{202e}txt.exe\\u{202c}"
        );
        for c in [
            '\u{202a}', '\u{202b}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_eq!(escape(&c.to_string()), format!("\\u{{{:x}}}", u32::from(c)));
        }
        assert_eq!(escape("\u{2029}\u{206a}"), "\u{2029}\u{206a}");
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("\x1b[31mred\x1b[0m\n\u{202e}");
        assert_eq!(escape(&once), once);
    }
}
