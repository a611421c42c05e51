//! The proxy in a real browser (Debian's headless Chromium, tests/integration/browser.rs) on the
//! laptop, the apps on a server, each side in its own network namespace: apps opened by name keep
//! their own cookies, a Vite app on the server hot-reloads through the proxy, and the index page
//! follows the apps without a reload.

use std::ffi::OsStr;

use serde_json::json;

use crate::browser::*;
use crate::netns::{Laptop, Server};
use crate::support::*;
use crate::tunnel::*;

/// Two apps by name: each its cookie jar; the index lists them, then a third started later, by
/// itself.
#[test]
fn in_a_browser_apps_by_name_keep_their_cookies_and_the_index_follows_them() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let (shop, blog, third) = (sb.port(0), sb.port(1), sb.port(2));
    server.start_app("shop", shop);
    server.start_app("blog", blog);
    let tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    tunnel.until_ready();

    let b = Browser::start(&laptop);
    // shop sets a session cookie; the app saw its own Host, not the proxy's name.
    assert_eq!(
        b.goto("shop", "http://shop.localhost:8800/cookie?session=shop-1"),
        200
    );
    assert_eq!(b.text("shop", "#app"), "shop");
    assert_eq!(b.text("shop", "#host"), format!("localhost:{shop}"));
    assert_eq!(b.text("shop", "#cookie"), "");
    // blog, behind the same proxy port, in another tab: not shop's cookie; it sets its own.
    assert_eq!(
        b.goto("blog", "http://blog.localhost:8800/cookie?session=blog-1"),
        200
    );
    assert_eq!(b.text("blog", "#app"), "blog");
    assert_eq!(b.text("blog", "#cookie"), "");
    // Each sends back only its own.
    assert_eq!(b.goto("shop", "http://shop.localhost:8800/cookie"), 200);
    assert_eq!(b.text("shop", "#cookie"), "session=shop-1");
    assert_eq!(b.goto("blog", "http://blog.localhost:8800/cookie"), 200);
    assert_eq!(b.text("blog", "#cookie"), "session=blog-1");
    assert_eq!(
        b.cookies("http://shop.localhost:8800/"),
        [("session".to_string(), "shop-1".to_string())]
    );

    // The index lists both; a third app started later shows up without a reload.
    assert_eq!(b.goto("index", "http://localhost:8800/"), 200);
    let listed = b.wait_text("index", "#servers", "blog");
    assert!(
        listed.contains("shop") && listed.contains("http://shop.localhost:8800"),
        "{listed}"
    );
    b.eval("index", "window.__marker = 1");
    server.start_app("third", third);
    let listed = b.wait_text("index", "#servers", "third");
    assert!(listed.contains("http://third.localhost:8800"), "{listed}");
    assert_eq!(
        b.eval("index", "window.__marker"),
        json!(1),
        "the page reloaded"
    );
    // Its links work.
    assert_eq!(
        b.eval(
            "index",
            "[...document.querySelectorAll('#servers a')].map(a => a.href).join(' ')"
        ),
        json!(
            "http://shop.localhost:8800/ http://blog.localhost:8800/ http://third.localhost:8800/"
        )
    );
    let png = b.screenshot("index", "index-page");
    let (w, h) = png_size(&png);
    assert!(w > 0 && h > 0);
    drop(b);
    let mut tunnel = tunnel;
    assert_eq!(tunnel.terminate(&server), 0);
}

/// A real Vite app under the server's PM2, opened by name through the proxy: a change to a module
/// on the server reaches the page over Vite's WebSocket (through the proxy's upgrade) in place.
#[test]
fn in_a_browser_a_vite_app_on_the_server_hot_reloads_through_the_proxy() {
    let sb = Sandbox::new();
    let laptop = Laptop::new();
    let server = Server::start(&sb);
    let port = sb.port(0);
    let dir = vite_project(&sb, "hmr");
    let message = hmr_page(&dir);
    message("first message");
    let vite = dir.join("node_modules/.bin/vite");
    let p = port.to_string();
    server.pm2_with_env(
        [
            OsStr::new("start"),
            vite.as_os_str(),
            OsStr::new("--name"),
            OsStr::new("hmr"),
            OsStr::new("--cwd"),
            dir.as_os_str(),
            OsStr::new("--"),
            OsStr::new("--port"),
            OsStr::new(&p),
            OsStr::new("--strictPort"),
            OsStr::new("--host"),
            OsStr::new("127.0.0.1"),
        ],
        &[("PORT", p.clone())],
    );
    wait_for(30, "Vite to answer on the server", || server.http_get(port));
    let tunnel = Tunnel::spawn(&sb, &laptop, &server, &[]);
    let events = tunnel.until_ready();
    assert_eq!(
        forward_of(&events, "hmr")["url"],
        "http://hmr.localhost:8800"
    );

    let b = Browser::start(&laptop);
    assert_eq!(b.goto("app", "http://hmr.localhost:8800/"), 200);
    assert_eq!(b.wait_text("app", "#app", "first message"), "first message");
    vite_connected(&b, "app");
    b.eval("app", "window.__marker = 1");
    message("second message");
    assert_eq!(
        b.wait_text("app", "#app", "second message"),
        "second message"
    );
    assert_hot_updated(&b, "app");
    drop(b);
    let mut tunnel = tunnel;
    assert_eq!(tunnel.terminate(&server), 0);
}
