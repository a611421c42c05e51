//! A port written into an app's source (`app.listen(3000)`, `bind("0.0.0.0:8080")`): such an app
//! ignores `PORT`, so `init` says so where it can see it, in the obvious places only.

use anyhow::Result;

use super::Files;

/// The entry files of a server, by framework: where the port is usually set.
fn entries(framework: &str) -> &'static [&'static str] {
    match framework {
        "rust" => &["src/main.rs"],
        "go" => &[
            "main.go",
            "server.go",
            "cmd/server/main.go",
            "cmd/api/main.go",
        ],
        _ => &[
            "src/main.ts",
            "src/main.js",
            "src/index.ts",
            "src/index.js",
            "src/server.ts",
            "src/server.js",
            "src/app.ts",
            "src/app.js",
            "server.js",
            "server.ts",
            "index.js",
            "index.ts",
            "app.js",
            "app.ts",
            "main.js",
        ],
    }
}

/// The frameworks whose port is the app's own code's business.
pub const SERVERS: &[&str] = &["nestjs", "express", "fastify", "koa", "hono", "rust", "go"];

/// A note for the first literal port found in the entry files of `framework`, if any.
pub fn literal_port_note(files: &dyn Files, framework: &str) -> Result<Option<String>> {
    for rel in entries(framework) {
        // Only a note hangs on it: a file that cannot be read (not UTF-8, too big, a FIFO) is
        // passed over.
        let Ok(Some(text)) = files.read(rel) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(port) = literal_port(line) {
                let shown: String = line.trim().chars().take(80).collect();
                let how = match framework {
                    "rust" => "`std::env::var(\"PORT\")`",
                    "go" => "`os.Getenv(\"PORT\")`",
                    _ => "`process.env.PORT`",
                };
                return Ok(Some(format!(
                    "`{rel}` line {} listens on port {port} whatever PORT says (`{}`): read the port from {how}, or the app will not be on its allocated port (`start` reports it as drift)",
                    i + 1,
                    crate::text::escape(&shown)
                )));
            }
        }
    }
    Ok(None)
}

/// The port a line of source fixes: `listen(3000`, `listen({ port: 3000`, `port: 3000` in
/// `Bun.serve({`, or a string `":8080"` / `"0.0.0.0:8080"` given to `bind`, `Listen`,
/// `ListenAndServe`, `Run` or `Start`. Nothing for a line that mentions `PORT` or `env`.
pub fn literal_port(line: &str) -> Option<u16> {
    let code = line.split("//").next().unwrap_or_default();
    let start = code.trim_start();
    if code.contains("PORT")
        || code.contains("env")
        || code.contains("port()")
        || start.starts_with('*')
        || start.starts_with("/*")
        || start.starts_with('#')
    {
        return None;
    }
    let number = |s: &str| -> Option<u16> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let rest = &s[digits.len()..];
        let ends = rest.is_empty() || rest.starts_with([')', ',', ' ', '}', ';', '"', ')']);
        (digits.len() >= 2 && ends)
            .then(|| digits.parse().ok())
            .flatten()
            .filter(|p| *p > 0)
    };
    if let Some(at) = code.find(".listen(") {
        let rest = code[at + ".listen(".len()..].trim_start();
        if let Some(p) = number(rest) {
            return Some(p);
        }
        if let Some(obj) = rest.strip_prefix('{')
            && let Some(p) = obj
                .split("port:")
                .nth(1)
                .and_then(|r| number(r.trim_start()))
        {
            return Some(p);
        }
    }
    if code.contains("serve(")
        && let Some(p) = code
            .split("port:")
            .nth(1)
            .and_then(|r| number(r.trim_start()))
    {
        return Some(p);
    }
    let calls = ["bind(", "Listen(", "ListenAndServe(", ".Run(", ".Start("];
    if calls.iter().any(|c| code.contains(c)) {
        for quoted in code.split('"').skip(1).step_by(2) {
            if let Some((_, port)) = quoted.rsplit_once(':')
                && let Some(p) = number(port)
                && p.to_string() == port
            {
                return Some(p);
            }
        }
        // `bind(("0.0.0.0", 8080))`, `SocketAddr::from(([0, 0, 0, 0], 3000))`
        if let Some(p) = code
            .rsplit(", ")
            .next()
            .and_then(|r| number(r.trim_start()))
        {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_ports() {
        for (line, want) in [
            ("  await app.listen(3000);", Some(3000)),
            ("app.listen(8080, () => console.log('up'))", Some(8080)),
            (
                "await fastify.listen({ port: 3001, host: '0.0.0.0' })",
                Some(3001),
            ),
            ("Bun.serve({ port: 4000, fetch })", Some(4000)),
            (
                r#"let listener = TcpListener::bind("0.0.0.0:8080").await?;"#,
                Some(8080),
            ),
            (
                r#"axum::Server::bind(&"127.0.0.1:3000".parse().unwrap())"#,
                Some(3000),
            ),
            (
                "HttpServer::new(app).bind((\"0.0.0.0\", 8080))?",
                Some(8080),
            ),
            (
                r#"log.Fatal(http.ListenAndServe(":8080", nil))"#,
                Some(8080),
            ),
            (r#"r.Run(":9090")"#, Some(9090)),
            ("await app.listen(process.env.PORT ?? 3000);", None),
            ("app.listen(port)", None),
            ("app.listen(PORT, () => {})", None),
            (r#"http.ListenAndServe(":"+os.Getenv("PORT"), nil)"#, None),
            ("// app.listen(3000)", None),
            ("const x = list(3000)", None),
            ("  port: 5432,", None),
            (" * app.listen(8080)", None),
            ("/* app.listen(8080) */", None),
        ] {
            assert_eq!(literal_port(line), want, "{line}");
        }
    }
}
