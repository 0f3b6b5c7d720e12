//! The registry API as JSON over HTTP, in the shape of the official MCP
//! Registry API (`/v0.1/servers`: `server.json` entries with our fields
//! under `_meta`), plus `POST /v0.1/access`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::access::{self, AccessRequest};
use super::error::ApiError;
use super::listing::{self, PageRequest, UNVERSIONED};
use super::{ApiState, pb};

/// `$schema` of every `server` entry.
pub const SERVER_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// The `_meta` key our own fields are under.
pub const META_KEY: &str = "dev.mcp-authz/registry";

pub(super) fn lowercase(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for (k, v) in headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        // Repeated headers joined with `,`, as Envoy sends them to a Check.
        out.entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// One `servers[]` element: `{server: server.json, _meta: {META_KEY: ...}}`.
pub fn server_json(s: &pb::Server) -> Value {
    let remotes: Vec<Value> = (!s.url.is_empty())
        .then(|| json!({"type": "streamable-http", "url": s.url}))
        .into_iter()
        .collect();
    let status = s.status.clone().unwrap_or_default();
    let tools: Vec<Value> = s
        .tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "read_only": t.read_only,
                "destructive": t.destructive,
                "requires_approval": t.requires_approval,
                "minutes_saved_per_call": t.minutes_saved_per_call,
                "conditional": t.conditional,
                "drifted": t.drifted,
            })
        })
        .collect();
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    json!({
        "server": {
            "$schema": SERVER_SCHEMA,
            "name": s.name,
            "title": s.title,
            "description": s.description,
            "version": s.version,
            "remotes": remotes,
        },
        "_meta": { META_KEY: {
            "registry_name": s.registry_name,
            "title": s.title,
            "owner": s.owner,
            "support_channel": opt(&s.support_channel),
            "namespace": s.namespace,
            "sensitivity": s.sensitivity,
            "approved_business_groups": s.approved_business_groups,
            "tools": tools,
            "minutes_saved_per_call": s.minutes_saved_per_call,
            "status": {
                "health": status.health,
                "last_success": opt(&status.last_success),
                "latency_ms": (status.latency_ms > 0).then_some(status.latency_ms),
                "drift": status.drift,
            },
        }},
    })
}

/// The list body: `{servers, metadata: {count, nextCursor?}}`.
pub fn list_json(r: &pb::ListServersResponse) -> Value {
    let mut metadata = json!({"count": r.servers.len()});
    if !r.next_cursor.is_empty() {
        metadata["nextCursor"] = json!(r.next_cursor);
    }
    json!({
        "servers": r.servers.iter().map(server_json).collect::<Vec<_>>(),
        "metadata": metadata,
    })
}

/// `GET /v0.1/servers?cursor=&limit=&search=&channel=&surface=`.
pub async fn list(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let run = async {
        let caller = s
            .authenticate(&lowercase(&headers), "/v0.1/servers")
            .await?;
        let caller = s.as_surface(caller, q.get("surface").map(String::as_str))?;
        let limit = q
            .get("limit")
            .map(|l| {
                l.parse::<u32>().map_err(|_| {
                    ApiError::bad("limit", format!("`{l}` is not a number from 1 to 100"))
                })
            })
            .transpose()?;
        let req = PageRequest {
            cursor: q.get("cursor").map(String::as_str),
            limit,
            search: q.get("search").map(String::as_str),
            channel: q.get("channel").map(String::as_str),
        };
        let snap = s.registry.snapshot();
        listing::list(&s.cfg, &snap, &s.status, &caller, &req)
    };
    match run.await {
        Ok(r) => Json(list_json(&r)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v0.1/servers/{name}` (API name, URL-encoded, or registry name).
pub async fn get(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    get_version(State(s), headers, Path((name, "latest".into())), Query(q)).await
}

/// `GET /v0.1/servers/{namespace}/{name}`: an API name whose `/` arrived
/// unescaped.
pub async fn get_split(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let name = format!("{ns}/{name}");
    get_version(State(s), headers, Path((name, "latest".into())), Query(q)).await
}

/// `GET /v0.1/servers/{namespace}/{name}/versions/{version}`.
pub async fn get_version_split(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((ns, name, version)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let name = format!("{ns}/{name}");
    get_version(State(s), headers, Path((name, version)), Query(q)).await
}

/// `GET /v0.1/servers/{name}/versions/{version}`: `latest` or the one
/// version every entry has.
pub async fn get_version(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let run = async {
        let caller = s
            .authenticate(&lowercase(&headers), "/v0.1/servers")
            .await?;
        let caller = s.as_surface(caller, q.get("surface").map(String::as_str))?;
        let snap = s.registry.snapshot();
        let server = listing::get(
            &s.cfg,
            &snap,
            &s.status,
            &caller,
            &name,
            q.get("channel").map(String::as_str),
        )?;
        if version != "latest" && version != UNVERSIONED {
            return Err(ApiError::NotFound);
        }
        Ok(server)
    };
    match run.await {
        Ok(server) => Json(server_json(&server)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v0.1/access` with a JSON [`AccessRequest`].
pub async fn check_access(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let caller = s.authenticate(&lowercase(&headers), "/v0.1/access").await?;
        // The same strict reading as a Check's body: a question with
        // duplicate or case-folded keys is refused, not answered.
        let req: AccessRequest = crate::mcp::strict::parse(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .map_err(|e| ApiError::bad("body", format!("not a valid access question: {e}")))?;
        let snap = s.registry.snapshot();
        access::check(&s.cfg, &snap, &caller, &req)
    };
    match run.await {
        Ok(r) => Json(json!({
            "allowed": r.allowed,
            "reason": r.reason,
            "policies": r.policies,
            "message": r.message,
            "decided_action": r.decided_action,
            "subject": r.subject,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}
