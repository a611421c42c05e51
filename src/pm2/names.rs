//! The app names PM2's CLI can address: `pm2 delete NAME` takes `all`, numbers, `/regex/` and
//! options for something else, and `--only` splits at commas and spaces.

/// Why PM2's CLI cannot address an app by `name`, if it cannot: `all` means every app, a name
/// JavaScript reads as a number is taken for a `pm_id`, `/.../` for a regular expression, a leading
/// `-` for an option, and `--only` splits its value at commas and spaces.
pub fn unaddressable(name: &str) -> Option<&'static str> {
    if name == "all" {
        return Some("`all` means every app to PM2");
    }
    if js_numeric(name) {
        return Some("PM2 reads a number as a process id");
    }
    if name.len() > 1 && name.starts_with('/') && name.ends_with('/') {
        return Some("PM2 reads `/.../` as a regular expression");
    }
    if name.starts_with('-') {
        return Some("PM2's command line would read it as an option");
    }
    if name.contains([',', ' ']) {
        return Some("`pm2 start --only` splits names at commas and spaces");
    }
    None
}

/// Whether JavaScript's `isNaN(name)` is false, as PM2 tests it.
fn js_numeric(name: &str) -> bool {
    let s = name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if s.is_empty() {
        return true;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned == "Infinity" {
        return true;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0b", 2),
        ("0B", 2),
        ("0o", 8),
        ("0O", 8),
    ] {
        if let Some(digits) = s.strip_prefix(prefix) {
            return !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        }
    }
    unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && unsigned.parse::<f64>().is_ok()
}

/// A name PM2 can address, made from a directory's name: spaces and commas become `-`, leading
/// dashes go, and a name PM2 would still misread gets an `app-` prefix.
pub fn addressable(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c == ' ' || c == ',' { '-' } else { c })
        .collect();
    let cleaned = cleaned.trim_start_matches('-').to_string();
    if unaddressable(&cleaned).is_some() {
        format!("app-{cleaned}")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pm2_misreads() {
        for bad in [
            "all", "2", " 7 ", "", "1e3", "-1.5", "0x1F", "Infinity", "/web/", "-rf", "my app",
            "a,b",
        ] {
            assert!(unaddressable(bad).is_some(), "{bad:?}");
        }
        for good in [
            "shop",
            "3d-viewer",
            "0xZ",
            "web-2",
            "über",
            "a\"b",
            "line\nbreak",
            "/tmp",
            "e",
        ] {
            assert_eq!(unaddressable(good), None, "{good:?}");
        }
        assert_eq!(addressable("2024"), "app-2024");
        assert_eq!(addressable("all"), "app-all");
        assert_eq!(addressable("my shop, v2"), "my-shop--v2");
        assert_eq!(addressable("--x"), "x");
        assert_eq!(addressable("shop"), "shop");
    }
}
