//! Validation of what browsers and MCP clients see: the public URL and allowed origins.

use std::collections::HashSet;

use super::super::Origins;
use super::Problems;

/// `resource_metadata.public_url`: an http(s) URL with no path, trailing `/` removed.
pub(super) fn public_url(p: &mut Problems, raw: Option<String>) -> Option<String> {
    let public_url = raw.map(|u| u.trim_end_matches('/').to_owned());
    if let Some(u) = &public_url
        && !matches!(reqwest::Url::parse(u), Ok(x) if matches!(x.scheme(), "http" | "https") && x.path() == "/")
    {
        p.push(
            "resource_metadata.public_url",
            format!("`{u}` must be an http(s) URL with no path"),
        );
    }
    public_url
}

/// `origins.allowed`: each entry exactly as a browser sends it in `Origin`.
pub(super) fn origins(p: &mut Problems, raw: &[String]) -> Origins {
    let mut seen = HashSet::new();
    for (i, o) in raw.iter().enumerate() {
        let path = format!("origins.allowed[{i}]");
        if let Some(message) = origin_problem(o) {
            p.push(path, message);
        } else if !seen.insert(o.as_str()) {
            p.push(path, format!("origin `{o}` is listed twice"));
        }
    }
    Origins {
        allowed: raw.to_vec(),
    }
}

/// Why `o` is not an origin as browsers send it, or `None` when it is one.
fn origin_problem(o: &str) -> Option<String> {
    if o == "*" {
        return Some(
            "`*` is not accepted: list each allowed origin, e.g. `https://app.example.com`".into(),
        );
    }
    if o.eq_ignore_ascii_case("null") {
        return Some(
            "`null` is not accepted: it is the origin of sandboxed and file pages, which anyone can create"
                .into(),
        );
    }
    let url = match reqwest::Url::parse(o) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return Some(format!(
                "`{o}` is not an origin such as `https://app.example.com` or `http://localhost:6274`"
            ));
        }
    };
    let canonical = url.origin().ascii_serialization();
    if canonical != o {
        return Some(format!(
            "`{o}` is not written as browsers send it in `Origin`: write `{canonical}` (lowercase scheme and \
             host, no path, no trailing `/`, no default port)"
        ));
    }
    None
}
