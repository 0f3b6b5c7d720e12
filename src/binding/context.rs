//! The context of one allowed Check, as ext_proc needs it to filter the
//! response: who asked (verified caller, surface, honoured channel), which
//! server, under which policy snapshot, and which list requests the body held.
//!
//! ext_authz puts it in its dynamic metadata under [`METADATA_KEY`]; Envoy
//! forwards the `envoy.filters.http.ext_authz` namespace to ext_proc
//! (`metadata_options.forwarding_namespaces.untyped`). Clients cannot write
//! dynamic metadata, and the value is MAC'd besides, so neither another
//! filter nor a process that reaches the gRPC port directly can ask ext_proc
//! to filter (or bind a session) for a caller of its choosing:
//!
//! ```text
//! <base64url(JSON)>.<base64url(HMAC-SHA-256("mcp-authz-context", JSON))>
//! ```

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BindingKey;
use crate::config::Surface;
use crate::identity::{Attributes, Caller, Identity};

/// Key of the context in ext_authz's dynamic metadata.
pub const METADATA_KEY: &str = "mcp_authz_context";
/// MAC domain of a context.
const DOMAIN: &str = "mcp-authz-context";

/// JSON-RPC methods whose results ext_proc filters.
pub const LIST_METHODS: [&str; 4] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
];

/// One list request of the body: its JSON-RPC id and method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRequest {
    pub id: Option<Value>,
    pub method: String,
}

/// The decided context of one request.
#[derive(Debug, Clone)]
pub struct ResponseContext {
    pub caller: Caller,
    /// The channel honoured for the caller.
    pub channel: Option<String>,
    /// Registered server the request was routed to.
    pub server: String,
    /// Policy snapshot generation the request was decided under.
    pub generation: u64,
    /// The list requests of the body, in order.
    pub lists: Vec<ListRequest>,
    /// Whether the request body was a JSON-RPC batch (then responses are
    /// matched to list requests by id only).
    pub batch: bool,
    /// Whether the request was a body-less GET: the server's own SSE stream,
    /// where a resumed stream (`Last-Event-ID`) may replay earlier answers,
    /// list results included. Its list-shaped results are filtered too.
    pub get: bool,
}

/// Serialized form; short keys keep the metadata small.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    /// `user` or `service`.
    k: String,
    /// User id or SPIFFE id.
    id: String,
    /// Issuer name (users).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    iss: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    g: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bg: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<String>,
    sv: String,
    gn: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    l: Vec<ListRequest>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    b: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gt: bool,
}

/// Why a context is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error(
        "no authorization context in the dynamic metadata (is ext_authz enabled on this route?)"
    )]
    Missing,
    #[error("the authorization context is malformed")]
    Malformed,
    #[error("the authorization context's MAC does not verify (another key, or forged)")]
    BadMac,
}

impl ResponseContext {
    /// The signed text of this context.
    pub fn seal(&self, key: &BindingKey) -> String {
        let mut wire = Wire {
            k: "service".into(),
            id: String::new(),
            iss: String::new(),
            g: Vec::new(),
            bg: Vec::new(),
            sf: None,
            ch: self.channel.clone(),
            sv: self.server.clone(),
            gn: self.generation,
            l: self.lists.clone(),
            b: self.batch,
            gt: self.get,
        };
        match &self.caller {
            Caller::User(id) => {
                wire.k = "user".into();
                wire.id = id.user.clone();
                wire.iss = id.issuer.clone();
                wire.g = id.groups.clone();
                wire.bg = id.business_groups.clone();
                wire.sf = id.surface.as_ref().map(|s| s.name.clone());
            }
            Caller::Service(s) => wire.id = s.clone(),
        }
        // Serializing plain strings, numbers and JSON values cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        let tag = key.sign(DOMAIN, &[&json]);
        format!("{}.{}", B64.encode(&json), B64.encode(tag.as_ref()))
    }

    /// Verifies and decodes a sealed context; `surfaces` are the configured
    /// surfaces (a surface no longer configured gives the caller none).
    ///
    /// # Errors
    /// [`ContextError::Malformed`] or [`ContextError::BadMac`].
    pub fn open(
        key: &BindingKey,
        sealed: &str,
        surfaces: &[Arc<Surface>],
    ) -> Result<Self, ContextError> {
        let (body, tag) = sealed.split_once('.').ok_or(ContextError::Malformed)?;
        let json = B64.decode(body).map_err(|_| ContextError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| ContextError::Malformed)?;
        if !key.verify(DOMAIN, &[&json], &tag) {
            return Err(ContextError::BadMac);
        }
        let w: Wire = serde_json::from_slice(&json).map_err(|_| ContextError::Malformed)?;
        let caller = match w.k.as_str() {
            "user" => Caller::User(Arc::new(Identity {
                user: w.id,
                expires_at: u64::MAX,
                attributes: Arc::new(Attributes {
                    groups: w.g,
                    business_groups: w.bg,
                    client_id: None,
                    surface: w
                        .sf
                        .and_then(|name| surfaces.iter().find(|s| s.name == name).cloned()),
                    issuer: w.iss,
                    audiences: Vec::new(),
                    require_resource_audience: false,
                }),
            })),
            "service" => Caller::Service(w.id),
            _ => return Err(ContextError::Malformed),
        };
        Ok(ResponseContext {
            caller,
            channel: w.ch,
            server: w.sv,
            generation: w.gn,
            lists: w.l,
            batch: w.b,
            get: w.gt,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn ctx() -> ResponseContext {
        ResponseContext {
            caller: Caller::stated_user("alice", &["eng".into()], &["ads".into()], None, &[])
                .unwrap(),
            channel: Some("#ops".into()),
            server: "presto".into(),
            generation: 3,
            lists: vec![ListRequest {
                id: Some(json!(1)),
                method: "tools/list".into(),
            }],
            batch: true,
            get: false,
        }
    }

    #[test]
    fn a_sealed_context_opens_to_the_same_context() {
        let key = BindingKey::from_secret(&[9u8; 32]);
        let sealed = ctx().seal(&key);
        let back = ResponseContext::open(&key, &sealed, &[]).unwrap();
        let Caller::User(id) = &back.caller else {
            panic!("a user")
        };
        assert_eq!(id.user, "alice");
        assert_eq!(id.issuer, "stated");
        assert_eq!(id.groups, vec!["eng".to_owned()]);
        assert_eq!(id.business_groups, vec!["ads".to_owned()]);
        assert_eq!(back.channel.as_deref(), Some("#ops"));
        assert_eq!(back.server, "presto");
        assert_eq!(back.generation, 3);
        assert_eq!(back.lists, ctx().lists);
        assert!(back.batch);
    }

    #[test]
    fn a_changed_byte_or_another_key_is_refused() {
        let key = BindingKey::from_secret(&[9u8; 32]);
        let sealed = ctx().seal(&key);
        let other = BindingKey::from_secret(&[8u8; 32]);
        assert_eq!(
            ResponseContext::open(&other, &sealed, &[]).unwrap_err(),
            ContextError::BadMac
        );
        // A context naming another user, with the old MAC.
        let (body, tag) = sealed.split_once('.').unwrap();
        let json = String::from_utf8(B64.decode(body).unwrap()).unwrap();
        let forged = format!("{}.{tag}", B64.encode(json.replace("alice", "mallory")));
        assert_eq!(
            ResponseContext::open(&key, &forged, &[]).unwrap_err(),
            ContextError::BadMac
        );
        assert_eq!(
            ResponseContext::open(&key, "nonsense", &[]).unwrap_err(),
            ContextError::Malformed
        );
    }
}
