//! Rendering `templates/ecosystem.config.cjs.j2`. Every `{{ }}` goes through one formatter that
//! writes a JSON literal, escaped further so the result is a safe JavaScript literal in any context:
//! no value can break out of its string, whatever characters it has.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde::Serialize;
use serde_json::Value;

const TEMPLATE_NAME: &str = "ecosystem.config.cjs";
const TEMPLATE: &str = include_str!("../../templates/ecosystem.config.cjs.j2");

/// One app of the file, with every value final.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppSpec {
    pub name: String,
    pub cwd: String,
    /// The `bash -c` command line.
    pub command_line: String,
    pub port: u16,
    /// Extra environment after `PORT`, in order.
    pub env: Vec<(String, Value)>,
    pub autorestart: Value,
    pub watch: Value,
    /// Extra PM2 app options, in order.
    pub pm2: Vec<(String, Value)>,
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default syntax is valid"),
        );
        env.set_formatter(|out, _state, value| {
            let json = js_literal(value).map_err(|err| {
                minijinja::Error::new(
                    minijinja::ErrorKind::BadSerialization,
                    "value cannot be written as a JSON literal",
                )
                .with_source(err)
            })?;
            out.write_str(&json).map_err(minijinja::Error::from)
        });
        env.add_template(TEMPLATE_NAME, TEMPLATE)
            .expect("the ecosystem template parses");
        env
    })
}

/// A value as a JSON literal that is also a JavaScript literal on every engine: U+2028 and U+2029,
/// which JSON allows raw but pre-ES2019 engines read as line terminators, are escaped too. (`<`
/// needs no escape: a `.cjs` file is never parsed as HTML, so `</script>` is just text.)
fn js_literal(value: &JValue) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(value)?;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Render the file for `apps`. A failure here is a bug in pm2-port, not in the user's input.
pub fn render(apps: &[AppSpec]) -> String {
    environment()
        .get_template(TEMPLATE_NAME)
        .and_then(|t| {
            t.render(minijinja::context! { apps => JValue::from(minijinja::value::Serde(apps)) })
        })
        .unwrap_or_else(|err| panic!("bug: rendering the ecosystem template failed: {err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn shop() -> AppSpec {
        AppSpec {
            name: "shop".into(),
            cwd: "/root/shop".into(),
            command_line: "export PORT=3003 && flox activate -- npm run dev -- --port 3003".into(),
            port: 3003,
            env: vec![],
            autorestart: true.into(),
            watch: false.into(),
            pm2: vec![],
        }
    }

    #[test]
    fn buildflowz_shape_exactly() {
        let text = render(&[shop()]);
        let body = &text[text.find("module.exports").unwrap()..];
        assert_eq!(body, crate::ecosystem::BUILDFLOWZ_EXAMPLE);
        assert!(text.starts_with(crate::ecosystem::HEADER_MARK));
    }

    #[test]
    fn extras_and_hostile_values() {
        let mut app = shop();
        app.name = "a\"b\u{2028}</script>${x}".into();
        app.env = vec![("NODE_ENV".into(), "development".into())];
        app.pm2 = vec![("max_memory_restart".into(), "1G".into())];
        let text = render(&[app.clone(), app]);
        assert!(text.contains(r#"name: "a\"b\u2028</script>${x}","#));
        assert!(text.contains("      PORT: 3003,\n      \"NODE_ENV\": \"development\"\n"));
        assert!(text.contains("    watch: false,\n    \"max_memory_restart\": \"1G\"\n  }, {\n"));
    }
}
