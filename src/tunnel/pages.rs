//! The proxy's own pages: the index of every server and app (rendered here, then kept current by
//! a few lines of plain JavaScript reading server-sent events), 404 for an unknown name, 502 for
//! an app that does not answer, 403 for a foreign `Host`. Everything a server sent (names,
//! statuses) is escaped on its way into HTML, and the script only ever sets `textContent`, so a
//! name like `<img onerror=...>` is text on the laptop's `localhost` origin, never markup.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::tunnel::names::{Routes, Site};

/// Where the index page's script reads its updates (on the bare `localhost` name only).
pub const EVENTS_PATH: &str = "/.pm2-port/events";
/// The same data once, as JSON.
pub const APPS_PATH: &str = "/.pm2-port/apps.json";

/// `s` as HTML text or attribute value.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The table as JSON: what the index page's script and `apps.json` get.
pub fn model(routes: &Routes, port: u16) -> Value {
    json!({
        "servers": routes.servers.iter().map(|s| json!({"host": s.host, "label": s.label, "state": s.state})).collect::<Vec<_>>(),
        "apps": routes.sites.iter().map(|s| json!({
            "host": s.host,
            "name": s.name,
            "status": s.status,
            "url": routes.url(s, port),
            "remote_port": s.remote_port,
            "local_port": s.local_port,
        })).collect::<Vec<_>>(),
    })
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;\
padding:0 1rem;color:#1d1d1f;background:#fff}h1{font-size:1.3rem}h2{font-size:1.05rem;\
margin:1.6rem 0 .4rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;\
padding:.3rem .6rem;border-bottom:1px solid #e3e3e3}th{font-weight:600;color:#555}\
.online{color:#137333}.down{color:#b3261e}.muted{color:#777}code{font-size:.95em}\
@media(prefers-color-scheme:dark){body{background:#161616;color:#e8e8e8}td,th{border-color:#333}\
th,.muted{color:#aaa}.online{color:#7fd38b}.down{color:#f28b82}a{color:#8ab4f8}}";

/// The rows of one server's table.
fn rows(routes: &Routes, host: &str, port: u16) -> String {
    let mut out = String::new();
    for s in routes.sites.iter().filter(|s| s.host == host) {
        let class = if s.status == "online" {
            "online"
        } else {
            "down"
        };
        let url = routes.url(s, port);
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td><a href=\"{url}\">{url}</a></td>\
             <td class=\"muted\">{}</td></tr>",
            html(&s.name),
            html(&s.status),
            s.remote_port.map_or("-".into(), |p| p.to_string()),
        );
    }
    if out.is_empty() {
        out.push_str("<tr><td colspan=\"4\" class=\"muted\">no apps</td></tr>");
    }
    out
}

/// The index page: every server and app, and a script that keeps it current.
pub fn index(routes: &Routes, port: u16) -> String {
    let mut body = String::new();
    for server in &routes.servers {
        let _ = write!(
            body,
            "<section><h2>{} <span class=\"muted\">{}</span></h2><table><thead><tr><th>app</th>\
             <th>status</th><th>url</th><th>port there</th></tr></thead><tbody>{}</tbody></table>\
             </section>",
            html(&server.host),
            html(&server.state),
            rows(routes, &server.host, port)
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>pm2-port: apps</title><style>{STYLE}</style></head><body>\
         <h1>Apps through pm2-port's tunnel</h1><div id=\"servers\">{body}</div>\
         <p class=\"muted\" id=\"state\">Each app at <code>http://NAME.localhost{}</code>. \
         This page follows the servers live.</p>\
         <script>{SCRIPT}</script></body></html>\n",
        crate::tunnel::names::port_suffix(port)
    )
}

/// Rebuilds the servers' tables from each event, with `textContent` only.
const SCRIPT: &str = r#"
"use strict";
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function render(m) {
  const root = document.getElementById("servers");
  root.replaceChildren();
  for (const s of m.servers) {
    const sec = el("section"), h = el("h2", s.host + " ");
    h.append(el("span", s.state, "muted"));
    const table = el("table"), head = el("tr"), body = el("tbody");
    for (const t of ["app", "status", "url", "port there"]) head.append(el("th", t));
    table.append(el("thead"), body);
    table.firstChild.append(head);
    const apps = m.apps.filter(a => a.host === s.host);
    for (const a of apps) {
      const tr = el("tr"), link = el("a", a.url), cell = el("td");
      link.href = a.url;
      cell.append(link);
      tr.append(el("td", a.name), el("td", a.status, a.status === "online" ? "online" : "down"),
                cell, el("td", a.remote_port === null ? "-" : String(a.remote_port), "muted"));
      body.append(tr);
    }
    if (apps.length === 0) {
      const tr = el("tr"), td = el("td", "no apps", "muted");
      td.colSpan = 4;
      tr.append(td);
      body.append(tr);
    }
    sec.append(h, table);
    root.append(sec);
  }
}
// One tab of the index follows the stream and tells the others: a browser gives a host only six
// connections, and each open stream holds one. The tab holding the lock is the one; when it
// closes, another takes the lock and the stream.
function follow(tell) {
  const events = new EventSource("/.pm2-port/events");
  events.onmessage = e => {
    render(JSON.parse(e.data));
    if (tell) tell.postMessage(e.data);
  };
  events.onerror = () => {
    document.getElementById("state").textContent = "The tunnel is gone: this page no longer follows the servers.";
  };
  return new Promise(() => {});
}
if (window.EventSource) {
  if (navigator.locks && window.BroadcastChannel) {
    const channel = new BroadcastChannel("pm2-port-index");
    channel.onmessage = e => render(JSON.parse(e.data));
    navigator.locks.request("pm2-port-index", () => follow(channel));
  } else {
    follow(null);
  }
}
"#;

/// A small page with a title and a paragraph (both escaped here) and, optionally, the list of
/// known apps.
fn page(title: &str, text: &str, routes: Option<(&Routes, u16)>) -> String {
    let list = routes.map_or(String::new(), |(routes, port)| {
        let mut items = String::new();
        for s in &routes.sites {
            let url = routes.url(s, port);
            let _ = write!(
                items,
                "<li><a href=\"{url}\">{url}</a> <span class=\"muted\">{} on {} ({})</span></li>",
                html(&s.name),
                html(&s.host),
                html(&s.status)
            );
        }
        if items.is_empty() {
            "<p class=\"muted\">No app is known yet.</p>".into()
        } else {
            format!("<p>Known apps:</p><ul>{items}</ul>")
        }
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1><p>{}</p>{list}</body></html>\n",
        html(text),
        t = html(title),
    )
}

/// 404: no app is called `name`.
pub fn not_found(name: &str, routes: &Routes, port: u16) -> String {
    page(
        "pm2-port: no such app",
        &format!("No app is called `{name}` on the servers of this tunnel."),
        Some((routes, port)),
    )
}

/// 502: the app is known but does not answer (`why`).
pub fn bad_gateway(site: &Site, why: &str) -> String {
    page(
        "pm2-port: the app does not answer",
        &format!(
            "`{}` on `{}` does not answer: {why} (PM2 status: {}).",
            site.name, site.host, site.status
        ),
        None,
    )
}

/// 403 text: a `Host` that is not one of the proxy's names.
pub fn refused(host: &str) -> String {
    format!(
        "pm2-port's proxy answers for localhost and *.localhost only, not for `{}`\n",
        crate::text::escape(host)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::names::{AppIn, HostIn, routes};

    fn hostile() -> Routes {
        routes(&[HostIn {
            host: "<b>box</b>".into(),
            state: "live".into(),
            apps: vec![AppIn {
                name: "<img src=x onerror=alert(1)>".into(),
                status: "online\"><script>".into(),
                remote_port: Some(3000),
                local_port: Some(3000),
            }],
        }])
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(html("a\x1bb"), "a\\u{1b}b");
    }

    #[test]
    fn hostile_names_are_text_on_every_page() {
        let r = hostile();
        for page in [
            index(&r, 8800),
            not_found("x", &r, 8800),
            bad_gateway(&r.sites[0], "connection refused"),
        ] {
            assert!(!page.contains("<img"), "{page}");
            assert!(!page.contains("<b>"), "{page}");
            assert!(!page.contains("\"><script>"), "{page}");
            // Our one script is the only one.
            assert!(page.matches("<script").count() <= 1, "{page}");
        }
        let page = index(&r, 8800);
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(page.contains("<a href=\"http://img-src-x-onerror-alert-1.localhost:8800\">"));
    }

    #[test]
    fn the_model_carries_urls() {
        let r = hostile();
        assert_eq!(
            model(&r, 80),
            json!({"servers": [{"host": "<b>box</b>", "label": "b-box-b", "state": "live"}],
                   "apps": [{"host": "<b>box</b>", "name": "<img src=x onerror=alert(1)>",
                             "status": "online\"><script>", "url": "http://img-src-x-onerror-alert-1.localhost",
                             "remote_port": 3000, "local_port": 3000}]})
        );
    }
}
