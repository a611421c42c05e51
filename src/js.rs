//! JavaScript's rules for numbers, where pm2-port must read a value as Node reads it: a number
//! literal in an ecosystem file (`047010` is octal in a `.cjs` file), and a string turned into a
//! number (`Number("0xB7CB")`, which `server.listen(process.env.PORT)` does).

/// The value of a number literal in sloppy-mode JavaScript source (`.cjs` files are not strict):
/// decimal with `_` separators, `.5`, exponents, `0x`/`0o`/`0b`, legacy octal `017`, and `08`/`09`
/// (decimal). A leading `-` is the unary minus. `None` for anything else (BigInt `10n`, `1__0`).
pub fn literal(text: &str) -> Option<f64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = unsigned_literal(body)?;
    Some(if negative { -value } else { value })
}

fn unsigned_literal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() > 1 && b[0] == b'0' {
        if let Some(radix) = radix_of(b[1]) {
            return radix_digits(&s[2..], radix, true);
        }
        if b[1..].iter().all(u8::is_ascii_digit) {
            // Legacy octal (`017` = 15) unless an 8 or 9 makes it decimal (`018` = 18).
            return if b[1..].iter().all(|d| *d < b'8') {
                radix_digits(&s[1..], 8, false)
            } else {
                s.parse().ok()
            };
        }
        if b[1].is_ascii_digit() {
            // `08.5` and `09e1` are decimal; `07.5` is a syntax error.
            let digits = s.bytes().take_while(u8::is_ascii_digit).collect::<Vec<_>>();
            if digits.iter().all(|d| *d < b'8') {
                return None;
            }
            return decimal(s, false);
        }
    }
    decimal(s, true)
}

/// The radix a `0x`, `0o` or `0b` prefix names, by its second character.
fn radix_of(c: u8) -> Option<u32> {
    match c {
        b'x' | b'X' => Some(16),
        b'o' | b'O' => Some(8),
        b'b' | b'B' => Some(2),
        _ => None,
    }
}

/// Digits in `radix`, with `_` between digits where `separators` allows.
fn radix_digits(s: &str, radix: u32, separators: bool) -> Option<f64> {
    let digits = strip_separators(s, separators)?;
    if digits.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in digits.chars() {
        value = value * f64::from(radix) + f64::from(c.to_digit(radix)?);
    }
    Some(value)
}

/// `1_000` → `1000`; a `_` anywhere but between two digits is an error, as in JavaScript.
fn strip_separators(s: &str, allowed: bool) -> Option<String> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let between = allowed
                && i > 0
                && i + 1 < b.len()
                && b[i - 1].is_ascii_alphanumeric()
                && b[i + 1].is_ascii_alphanumeric();
            if !between {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}

/// A decimal literal: digits, an optional fraction, an optional exponent.
fn decimal(s: &str, separators: bool) -> Option<f64> {
    let plain = strip_separators(s, separators)?;
    let b = plain.as_bytes();
    let mut i = 0;
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac;
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    (i == b.len()).then(|| plain.parse().ok()).flatten()
}

/// JavaScript's whitespace and line terminators (`\s`), which `Number()` trims.
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `Number(text)`: `None` where JavaScript gives `NaN`. The empty string is 0.
pub fn string_to_number(text: &str) -> Option<f64> {
    let s = text.trim_matches(is_js_space);
    if s.is_empty() {
        return Some(0.0);
    }
    let b = s.as_bytes();
    if b.len() > 2
        && b[0] == b'0'
        && let Some(radix) = radix_of(b[1])
    {
        return radix_digits(&s[2..], radix, false);
    }
    let (negative, body) = match b[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if body == "Infinity" {
        f64::INFINITY
    } else {
        decimal(body, false)?
    };
    Some(if negative { -value } else { value })
}

/// `parseFloat(text)`: the longest decimal (or `Infinity`) at the start of `text` after its
/// leading whitespace; NaN when there is none. No `0x`: `parseFloat("0x10")` is 0.
pub fn parse_float(text: &str) -> f64 {
    let s = text.trim_start_matches(is_js_space);
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if body.starts_with("Infinity") {
        f64::INFINITY
    } else {
        let b = body.as_bytes();
        let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let int = digits(0);
        let mut end = int;
        let mut frac = 0;
        if b.get(end) == Some(&b'.') {
            frac = digits(end + 1);
            if int + frac > 0 {
                end += 1 + frac;
            }
        }
        if int + frac == 0 {
            return f64::NAN;
        }
        if matches!(b.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
            let exp = digits(end + 1 + sign);
            if exp > 0 {
                end += 1 + sign + exp;
            }
        }
        body[..end].parse().unwrap_or(f64::NAN)
    };
    if negative { -value } else { value }
}

/// How PM2's validator reads a value given to an option that takes a number
/// (`Config._valid`): a boolean stays a boolean (`None`); a string, or an array (as the string
/// JavaScript makes of it: items joined by `,`), that `isNaN` does not reject becomes
/// `parseFloat` of it, which may be NaN (`""`, `[]`); anything else is not a number (`None`).
pub fn pm2_number(value: &serde_json::Value) -> Option<f64> {
    use serde_json::Value;
    fn as_js_string(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some(String::new()),
            Value::Array(items) => items
                .iter()
                .map(as_js_string)
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.join(",")),
            // "[object Object]": NaN.
            Value::Object(_) => None,
        }
    }
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(_) | Value::Array(_) => {
            let text = as_js_string(value)?;
            string_to_number(&text).map(|_| parse_float(&text))
        }
        _ => None,
    }
}

/// A TCP port as Node's `listen` takes it: an integer from 1 to 65535 (0 asks for any port, which
/// is no port to reserve).
pub fn port(value: f64) -> Option<u16> {
    (value.fract() == 0.0 && (1.0..=65535.0).contains(&value)).then_some(value as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Node 20 answers them.
    #[test]
    fn parse_float_and_pm2s_numbers() {
        use serde_json::json;
        for (text, want) in [
            ("0xA0F1", 0.0),
            ("1e3", 1000.0),
            (" 200 ", 200.0),
            ("12px", 12.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-Infinityx", f64::NEG_INFINITY),
            ("1e", 1.0),
            ("\u{feff}7", 7.0),
        ] {
            assert_eq!(parse_float(text), want, "{text:?}");
        }
        for nan in ["", "x", ".", "-", "e5", "\u{85}5"] {
            assert!(parse_float(nan).is_nan(), "{nan:?}");
        }
        assert_eq!(pm2_number(&json!("0xA0F1")), Some(0.0));
        assert_eq!(pm2_number(&json!([41005])), Some(41005.0));
        assert_eq!(pm2_number(&json!([["3"]])), Some(3.0));
        assert!(pm2_number(&json!([])).unwrap().is_nan());
        assert!(pm2_number(&json!("")).unwrap().is_nan());
        assert_eq!(pm2_number(&json!([1, 2])), None);
        assert_eq!(pm2_number(&json!("1s")), None);
        assert_eq!(pm2_number(&json!(true)), None);
        assert_eq!(pm2_number(&json!({"a": 1})), None);
    }

    #[test]
    fn literals_as_node_reads_them() {
        for (text, want) in [
            ("3003", Some(3003.0)),
            ("047010", Some(19976.0)),
            ("018", Some(18.0)),
            ("08.5", Some(8.5)),
            ("07.5", None),
            ("0xB7CB", Some(47051.0)),
            ("0o17", Some(15.0)),
            ("0b11", Some(3.0)),
            ("1_000", Some(1000.0)),
            ("1__0", None),
            ("_1", None),
            ("01_0", None),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("4.7005e4", Some(47005.0)),
            ("1e", None),
            ("-1.5", Some(-1.5)),
            ("10n", None),
            ("0", Some(0.0)),
            ("00", Some(0.0)),
            ("9007199254740993", Some(9007199254740992.0)),
        ] {
            assert_eq!(literal(text), want, "{text}");
        }
    }

    #[test]
    fn strings_as_number_reads_them() {
        for (text, want) in [
            (" 3003\n", Some(3003.0)),
            ("0xB7CB", Some(47051.0)),
            ("4.7005e4", Some(47005.0)),
            ("047010", Some(47010.0)),
            ("", Some(0.0)),
            ("+12", Some(12.0)),
            ("-0x10", None),
            ("1_000", None),
            ("3003abc", None),
            ("\u{feff}80", Some(80.0)),
            ("Infinity", Some(f64::INFINITY)),
        ] {
            assert_eq!(string_to_number(text), want, "{text:?}");
        }
        assert_eq!(port(47005.0), Some(47005));
        assert_eq!(port(0.0), None);
        assert_eq!(port(3003.5), None);
        assert_eq!(port(65536.0), None);
    }
}
