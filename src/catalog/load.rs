//! Registry files → validated [`Catalog`], every problem named by file and key path.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::arg_types::record_type;
use super::raw::{RawCatalog, RawServer};
use super::*;
use crate::config::{ConfigError, Problem, Surface, parse_yaml};

/// Lists `files`, expanding each directory to its files ending in `ext`, sorted.
pub fn expand(files: &[PathBuf], ext: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for f in files {
        if f.is_dir() {
            let entries = std::fs::read_dir(f).map_err(|source| ConfigError::Read {
                file: f.display().to_string(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// Reads a file to a string, naming it on error.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.display().to_string(),
        source,
    })
}

/// Loads and validates the catalog from registry files; `surfaces` are the
/// configured surfaces that `allowed_surfaces` may name.
pub fn load_catalog(files: &[PathBuf], surfaces: &[Arc<Surface>]) -> Result<Catalog, ConfigError> {
    let mut parsed = Vec::new();
    for f in expand(files, "yaml")? {
        let file = f.display().to_string();
        let raw: RawCatalog = parse_yaml(&read(&f)?, &file)?;
        parsed.push((file, raw));
    }
    let mut cat = Catalog::default();
    // Business groups first: servers in any file may name them.
    for (file, raw) in &parsed {
        let mut p = Vec::new();
        for (i, bg) in raw.business_groups.iter().enumerate() {
            let title = bg.title.clone().unwrap_or_else(|| bg.id.clone());
            if !valid_business_group(&bg.id) {
                p.push(problem(
                    format!("business_groups[{i}].id"),
                    format!(
                        "`{}` is not a valid id (lowercase letters, digits, `-`, `_`; \
                         optionally after an issuer's `user_namespace` and `:`)",
                        bg.id
                    ),
                ));
            } else if cat.business_groups.insert(bg.id.clone(), title).is_some() {
                p.push(problem(
                    format!("business_groups[{i}].id"),
                    format!("business group `{}` is declared twice", bg.id),
                ));
            }
        }
        fail(file, p)?;
    }
    let surface_names: HashSet<&str> = surfaces.iter().map(|s| s.name.as_str()).collect();
    for (file, raw) in parsed {
        let mut p = Vec::new();
        for (i, rs) in raw.servers.into_iter().enumerate() {
            let server = server(&mut p, &format!("servers[{i}]"), rs, &cat, &surface_names);
            add(&mut p, &format!("servers[{i}]"), &mut cat, server);
        }
        fail(&file, p)?;
    }
    cat.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    Ok(cat)
}

fn problem(path: String, message: String) -> Problem {
    Problem { path, message }
}

fn fail(file: &str, problems: Vec<Problem>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            problems,
        })
    }
}

/// Server, business group and tool names: they become Cedar ids and URL parts.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Business group ids: a name, optionally prefixed `<user_namespace>:` as
/// tokens of a namespaced issuer carry them (`corp:finance`).
fn valid_business_group(s: &str) -> bool {
    match s.split_once(':') {
        Some((ns, name)) => {
            ns.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
                && valid_name(name)
        }
        None => valid_name(s),
    }
}

/// Whether `s` is a tool `definition_digest`: `sha256:` and 64 lowercase hex
/// digits (the form `probe::digest` writes).
pub fn is_definition_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// MCP tool names: letters, digits, `_`, `-`, `.`; never `/` (it separates server and tool ids).
fn valid_tool_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn server(
    p: &mut Vec<Problem>,
    path: &str,
    rs: RawServer,
    cat: &Catalog,
    surfaces: &HashSet<&str>,
) -> Server {
    let mut push = |k: &str, m: String| p.push(problem(format!("{path}.{k}"), m));
    if !valid_name(&rs.name) {
        push(
            "name",
            format!(
                "`{}` is not a valid server name (lowercase letters, digits, `-`, `_`)",
                rs.name
            ),
        );
    }
    let namespace = match rs.namespace.as_str() {
        "prod" => Namespace::Prod,
        "dev" => Namespace::Dev,
        other => {
            push(
                "namespace",
                format!("unknown namespace `{other}`, expected `prod` or `dev`"),
            );
            Namespace::Dev
        }
    };
    let sensitivity = match rs.sensitivity.as_str() {
        "low" => Sensitivity::Low,
        "medium" => Sensitivity::Medium,
        "sensitive" => Sensitivity::Sensitive,
        other => {
            push(
                "sensitivity",
                format!("unknown sensitivity `{other}`, expected `low`, `medium` or `sensitive`"),
            );
            Sensitivity::Sensitive
        }
    };
    let mut seen = HashSet::new();
    for (j, bg) in rs.approved_business_groups.iter().enumerate() {
        if !cat.business_groups.contains_key(bg) {
            push(
                &format!("approved_business_groups[{j}]"),
                format!("business group `{bg}` is not declared in `business_groups`"),
            );
        }
        if !seen.insert(bg) {
            push(
                &format!("approved_business_groups[{j}]"),
                format!("`{bg}` is listed twice"),
            );
        }
    }
    if sensitivity == Sensitivity::Sensitive && rs.approved_business_groups.is_empty() {
        push(
            "approved_business_groups",
            "a sensitive server must name the business groups approved at its security review"
                .into(),
        );
    }
    for (j, s) in rs.allowed_surfaces.iter().flatten().enumerate() {
        if !surfaces.contains(s.as_str()) {
            push(
                &format!("allowed_surfaces[{j}]"),
                format!("unknown surface `{s}`"),
            );
        }
    }
    for (key, url) in [
        ("probe_url", &rs.probe_url),
        ("health_check_url", &rs.health_check_url),
    ] {
        if let Some(u) = url
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            push(key, format!("`{u}` is not an http(s) URL"));
        }
    }
    for (j, prefix) in rs.route.path_prefixes.iter().enumerate() {
        if !prefix.starts_with('/') {
            push(
                &format!("route.path_prefixes[{j}]"),
                format!("`{prefix}` must start with `/`"),
            );
        }
    }
    let mut tool_names = HashSet::new();
    let mut tools = Vec::new();
    for (j, t) in rs.tools.into_iter().enumerate() {
        if !valid_tool_name(&t.name) {
            push(
                &format!("tools[{j}].name"),
                format!("`{}` is not a valid tool name", t.name),
            );
        }
        if !tool_names.insert(t.name.clone()) {
            push(
                &format!("tools[{j}].name"),
                format!("tool `{}` is listed twice", t.name),
            );
        }
        let minutes = t.minutes_saved_per_call.unwrap_or(0.0);
        if !(minutes.is_finite() && minutes >= 0.0) {
            push(
                &format!("tools[{j}].minutes_saved_per_call"),
                "must be a number of minutes, zero or more".into(),
            );
        }
        if let Some(s) = &t.input_schema
            && s.get("type").and_then(|v| v.as_str()) != Some("object")
        {
            push(
                &format!("tools[{j}].input_schema"),
                "must be a JSON schema with `type: object`".into(),
            );
        }
        if let Some(d) = &t.definition_digest
            && !is_definition_digest(d)
        {
            push(
                &format!("tools[{j}].definition_digest"),
                format!("`{d}` is not a digest such as `sha256:` and 64 lowercase hex digits"),
            );
        }
        if t.read_only && t.destructive {
            push(
                &format!("tools[{j}]"),
                "a tool cannot be both `read_only` and `destructive`".into(),
            );
        }
        tools.push(Tool {
            name: t.name,
            description: t.description,
            read_only: t.read_only,
            destructive: t.destructive,
            requires_approval: t.requires_approval,
            minutes_saved_per_call: minutes,
            arguments: t.input_schema.as_ref().map(record_type).unwrap_or_default(),
            input_schema: t.input_schema,
            definition_digest: t.definition_digest,
        });
    }
    Server {
        title: rs.title.unwrap_or_else(|| rs.name.clone()),
        route: Route {
            context_extension: rs
                .route
                .context_extension
                .unwrap_or_else(|| rs.name.clone()),
            hosts: rs
                .route
                .hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            path_prefixes: rs.route.path_prefixes,
        },
        name: rs.name,
        description: rs.description,
        owner: rs.owner,
        support_channel: rs.support_channel,
        namespace,
        sensitivity,
        approved_business_groups: rs.approved_business_groups,
        allowed_surfaces: rs.allowed_surfaces,
        channels: rs.channels,
        health_check_url: rs.health_check_url,
        probe_url: rs.probe_url,
        tools,
    }
}

fn add(p: &mut Vec<Problem>, path: &str, cat: &mut Catalog, server: Server) {
    let i = cat.servers.len();
    let mut claim = |map: &mut HashMap<String, usize>, key: &str, what: &str, at: String| {
        if let Some(other) = map.insert(key.to_owned(), i) {
            let other = cat.servers.get(other).map_or("", |s| s.name.as_str());
            p.push(problem(
                at,
                format!("{what} `{key}` is already used by server `{other}`"),
            ));
        }
    };
    claim(
        &mut cat.by_name,
        &server.name,
        "name",
        format!("{path}.name"),
    );
    claim(
        &mut cat.by_extension,
        &server.route.context_extension,
        "context extension",
        format!("{path}.route.context_extension"),
    );
    for (j, h) in server.route.hosts.iter().enumerate() {
        claim(
            &mut cat.by_host,
            h,
            "host",
            format!("{path}.route.hosts[{j}]"),
        );
    }
    for (j, prefix) in server.route.path_prefixes.iter().enumerate() {
        let norm = prefix.trim_end_matches('/').to_owned();
        if let Some((_, other)) = cat.prefixes.iter().find(|(q, _)| *q == norm) {
            let other = cat.servers.get(*other).map_or("", |s| s.name.as_str());
            p.push(problem(
                format!("{path}.route.path_prefixes[{j}]"),
                format!("path prefix `{prefix}` is already used by server `{other}`"),
            ));
        } else {
            cat.prefixes.push((norm, i));
        }
    }
    cat.servers.push(Arc::new(server));
}
