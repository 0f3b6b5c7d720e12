//! What a caller may see of the registry, in the API's own terms: the
//! servers [`Snapshot::visible_to`] lists (never a second policy reading),
//! their live status, ordered by registry name and cut into pages. gRPC
//! returns these values as they are and HTTP renders the same values as
//! JSON, so both transports give the same answers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;
use super::pb;
use crate::authz::{Snapshot, VisibleServer};
use crate::catalog::resource_url;
use crate::config::Config;
use crate::identity::Caller;
use crate::probe::StatusBoard;

/// Page size when the request names none.
pub const DEFAULT_PAGE_LIMIT: u32 = 30;
/// Largest page a caller may ask for.
pub const MAX_PAGE_LIMIT: u32 = 100;
/// Longest `search` accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// `version` of every server: the registry does not version its entries
/// (server.json requires the field).
pub const UNVERSIONED: &str = "0.0.0";

/// One page request, already taken apart from its transport.
#[derive(Debug, Default)]
pub struct PageRequest<'a> {
    pub cursor: Option<&'a str>,
    pub limit: Option<u32>,
    pub search: Option<&'a str>,
    pub channel: Option<&'a str>,
}

/// Encodes the cursor that resumes after the server named `name`.
pub fn encode_cursor(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name)
}

/// The registry name a cursor resumes after; anything that is not
/// base64url of a non-empty UTF-8 name is a bad request.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad(
            "cursor",
            format!("`{cursor}` is not a cursor from this API"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    match String::from_utf8(bytes) {
        Ok(s) if !s.is_empty() => Ok(s),
        _ => Err(bad()),
    }
}

/// `limit` checked against 1..=[`MAX_PAGE_LIMIT`].
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad(
            "limit",
            format!("`{n}` is out of range: give 1 to {MAX_PAGE_LIMIT}"),
        )),
    }
}

/// The API name of a registry server: `<api.name_namespace>/<name>`.
pub fn api_name(cfg: &Config, name: &str) -> String {
    format!("{}/{name}", cfg.api.name_namespace)
}

/// The registry name an API name (or a plain registry name) refers to.
pub fn registry_name<'a>(cfg: &Config, name: &'a str) -> &'a str {
    name.strip_prefix(cfg.api.name_namespace.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(name)
}

/// One page of the servers `caller` may connect to, and the next cursor.
pub fn list(
    cfg: &Config,
    snap: &Snapshot,
    status: &StatusBoard,
    caller: &Caller,
    req: &PageRequest<'_>,
) -> Result<pb::ListServersResponse, ApiError> {
    let limit = page_limit(req.limit)? as usize;
    let after = req
        .cursor
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    if req
        .search
        .is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(ApiError::bad(
            "search",
            format!("longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let needle = req.search.map(str::to_lowercase).filter(|s| !s.is_empty());
    let mut visible = snap.visible_to(caller, req.channel);
    visible.sort_by(|a, b| a.server.name.cmp(&b.server.name));
    let mut matching = visible.iter().filter(|v| {
        after.as_deref().is_none_or(|a| v.server.name.as_str() > a)
            && needle.as_deref().is_none_or(|n| matches(cfg, v, n))
    });
    let servers: Vec<pb::Server> = matching
        .by_ref()
        .take(limit)
        .map(|v| server(cfg, v, status))
        .collect();
    let next_cursor = match (matching.next(), servers.last()) {
        (Some(_), Some(last)) => encode_cursor(&last.registry_name),
        _ => String::new(),
    };
    Ok(pb::ListServersResponse {
        servers,
        next_cursor,
    })
}

/// One server `caller` may connect to; an unknown server and a hidden one
/// are the same [`ApiError::NotFound`].
pub fn get(
    cfg: &Config,
    snap: &Snapshot,
    status: &StatusBoard,
    caller: &Caller,
    name: &str,
    channel: Option<&str>,
) -> Result<pb::Server, ApiError> {
    let name = registry_name(cfg, name);
    snap.visible_to(caller, channel)
        .iter()
        .find(|v| v.server.name == name)
        .map(|v| server(cfg, v, status))
        .ok_or(ApiError::NotFound)
}

fn matches(cfg: &Config, v: &VisibleServer<'_>, needle: &str) -> bool {
    let s = v.server;
    [
        s.name.as_str(),
        api_name(cfg, &s.name).as_str(),
        s.title.as_str(),
        s.description.as_str(),
    ]
    .iter()
    .any(|h| h.to_lowercase().contains(needle))
}

fn server(cfg: &Config, v: &VisibleServer<'_>, board: &StatusBoard) -> pb::Server {
    let s = v.server;
    let st = board.get(&s.name);
    let url = cfg
        .public_url
        .as_deref()
        .zip(s.route.path_prefixes.first())
        .map(|(public, prefix)| resource_url(public, prefix))
        .unwrap_or_default();
    let tools: Vec<pb::Tool> = v
        .tools
        .iter()
        .map(|t| pb::Tool {
            name: t.tool.name.clone(),
            description: t.tool.description.clone(),
            read_only: t.tool.read_only,
            destructive: t.tool.destructive,
            requires_approval: t.tool.requires_approval,
            minutes_saved_per_call: t.tool.minutes_saved_per_call,
            conditional: t.conditional,
            drifted: st.drifted(&t.tool.name),
        })
        .collect();
    pb::Server {
        name: api_name(cfg, &s.name),
        registry_name: s.name.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        version: UNVERSIONED.into(),
        url,
        owner: s.owner.clone(),
        support_channel: s.support_channel.clone().unwrap_or_default(),
        namespace: s.namespace.as_str().into(),
        sensitivity: s.sensitivity.as_str().into(),
        approved_business_groups: s.approved_business_groups.clone(),
        minutes_saved_per_call: tools.iter().map(|t| t.minutes_saved_per_call).sum(),
        tools,
        status: Some(pb::Status {
            health: st.health.as_str().into(),
            last_success: st
                .last_success
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_default(),
            latency_ms: st
                .latency
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or_default(),
            drift: st
                .drift
                .iter()
                .map(|d| {
                    // The serialized tag, so a new kind of drift needs no change here.
                    let kind = serde_json::to_value(d)
                        .ok()
                        .and_then(|v| v.get("kind")?.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    format!("{kind}:{}", d.tool())
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_names_the_parameter() {
        assert_eq!(decode_cursor(&encode_cursor("presto")).unwrap(), "presto");
        for bad in ["***", "", "_w"] {
            let e = decode_cursor(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    ApiError::BadRequest {
                        param: "cursor",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn limit_outside_one_to_a_hundred_is_rejected() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE_LIMIT);
        assert_eq!(page_limit(Some(100)).unwrap(), 100);
        for n in [0, 101] {
            assert!(matches!(
                page_limit(Some(n)),
                Err(ApiError::BadRequest { param: "limit", .. })
            ));
        }
    }
}
