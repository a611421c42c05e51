//! A reader for the part of JavaScript that ecosystem files are made of: `module.exports = VALUE;`
//! where VALUE is an object literal of strings, numbers, booleans, `null`, arrays and objects, with
//! comments, unquoted keys and trailing commas. Anything else (a `require()`, a variable, a
//! template literal with `${}`) is not understood, and the file is treated as hand-written code.

use serde_json::{Map, Number, Value};

/// The value assigned to `module.exports`, or `None` when the file is not of that plain shape.
pub fn module_exports(source: &str) -> Option<Value> {
    let mut p = Parser {
        s: source.as_bytes(),
        src: source,
        i: 0,
        depth: 0,
    };
    p.skip_ws();
    for word in ["module", ".", "exports", "="] {
        p.skip_ws();
        if !p.eat(word) {
            return None;
        }
    }
    let value = p.value()?;
    p.skip_ws();
    p.eat(";");
    p.skip_ws();
    (p.i == p.s.len()).then_some(value)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    /// Nesting of objects and arrays: deeper than [`MAX_DEPTH`] is not an ecosystem file.
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.s[self.i..].starts_with(token.as_bytes()) {
            self.i += token.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        loop {
            while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                self.i += 1;
            }
            if self.eat("//") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.i += 1;
                }
            } else if self.eat("/*") {
                match self.src[self.i..].find("*/") {
                    Some(end) => self.i += end + 2,
                    None => self.i = self.s.len(),
                }
            } else {
                return;
            }
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        match self.peek()? {
            b'{' | b'[' if self.depth >= MAX_DEPTH => None,
            b'{' => {
                self.depth += 1;
                let v = self.object();
                self.depth -= 1;
                v
            }
            b'[' => {
                self.depth += 1;
                let v = self.array();
                self.depth -= 1;
                v
            }
            b'"' | b'\'' | b'`' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' | b'.' => self.number(),
            _ => {
                let word = self.ident()?;
                match word.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    "null" => Some(Value::Null),
                    _ => None,
                }
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
        {
            self.i += 1;
        }
        (self.i > start).then(|| self.src[start..self.i].to_string())
    }

    fn object(&mut self) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.eat("}") {
                return Some(Value::Object(map));
            }
            let key = match self.peek()? {
                b'"' | b'\'' => self.string()?,
                b'0'..=b'9' => self.number()?.to_string(),
                _ => self.ident()?,
            };
            self.skip_ws();
            if !self.eat(":") {
                return None;
            }
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            if !self.eat(",") {
                self.skip_ws();
                return self.eat("}").then_some(Value::Object(map));
            }
        }
    }

    fn array(&mut self) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.eat("]") {
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            if !self.eat(",") {
                self.skip_ws();
                return self.eat("]").then_some(Value::Array(items));
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b'_'))
        {
            self.i += 1;
        }
        // As Node reads it (legacy octal, hex, separators), then an integer where one holds it
        // exactly, so that 9007199254740993 reads as the 9007199254740992 Node sees.
        let f = crate::js::literal(&self.src[start..self.i])?;
        if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
            return Some(Value::Number((f as i64).into()));
        }
        Number::from_f64(f).map(Value::Number)
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.src[self.i..].chars().next()?;
            self.i += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Some(out),
                '$' if quote == b'`' && self.peek() == Some(b'{') => return None,
                '\n' | '\r' if quote != b'`' => return None,
                '\\' => {
                    let e = self.src[self.i..].chars().next()?;
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => out.push('\0'),
                        'x' => out.push(char::from_u32(self.hex(2)?)?),
                        'u' => out.push(self.unicode_escape()?),
                        '\n' => {}
                        '\r' => {
                            self.eat("\n");
                        }
                        '\u{2028}' | '\u{2029}' => {}
                        c if c.is_ascii_digit() => return None,
                        c => out.push(c),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Option<u32> {
        let text = self.src.get(self.i..self.i + digits)?;
        let n = u32::from_str_radix(text, 16).ok()?;
        self.i += digits;
        Some(n)
    }

    /// `\uXXXX` (with surrogate pairs) or `\u{X...}`.
    fn unicode_escape(&mut self) -> Option<char> {
        if self.eat("{") {
            let end = self.src[self.i..].find('}')?;
            let n = u32::from_str_radix(&self.src[self.i..self.i + end], 16).ok()?;
            self.i += end + 1;
            return char::from_u32(n);
        }
        let hi = self.hex(4)?;
        if (0xD800..0xDC00).contains(&hi) && self.eat("\\u") {
            let lo = self.hex(4)?;
            let n = 0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?);
            return char::from_u32(n);
        }
        char::from_u32(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn buildflowz_file() {
        let v = module_exports(crate::ecosystem::BUILDFLOWZ_EXAMPLE).unwrap();
        assert_eq!(v["apps"][0]["env"]["PORT"], 3003);
        assert_eq!(
            v["apps"][0]["args"][1],
            "export PORT=3003 && flox activate -- npm run dev -- --port 3003"
        );
    }

    #[test]
    fn comments_quotes_escapes_trailing_commas() {
        let v = module_exports(
            "// hi\nmodule.exports = { /* c */ apps: [ { 'name': 'a\\'b', \"x\": `t`, n: -1.5, u: '\\u2028\\ud83d\\ude00\\x41', }, ], }\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"apps": [{"name": "a'b", "x": "t", "n": -1.5, "u": "\u{2028}😀A"}]})
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!(
            "module.exports = {}1{};",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(module_exports(&deep).is_none());
        let ok = format!("module.exports = {}1{};", "[".repeat(60), "]".repeat(60));
        assert!(module_exports(&ok).is_some());
    }

    #[test]
    fn code_is_not_understood() {
        assert!(module_exports("const x = 1; module.exports = {apps: []}").is_none());
        assert!(module_exports("module.exports = {apps: [require('./a')]}").is_none());
        assert!(module_exports("module.exports = {a: `${x}`}").is_none());
        assert!(module_exports("module.exports = {a: 1}; foo()").is_none());
    }
}
