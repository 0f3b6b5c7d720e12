//! The audit log: one JSON line per Check (allow and deny), built from the
//! [`DecisionRecord`] and handed to a background writer
//! ([`super::audit_writer`]) so that no Check ever waits for a disk.
//!
//! A line never holds a token (the record has none); tool arguments appear
//! only for tools on `audit.log_arguments`, truncated. Every string a client
//! chooses (request id, JSON-RPC ids, channel, methods, tool names, evaluation
//! errors that may quote an argument) is cut to [`MAX_LOGGED_CHARS`], so one
//! request of up to `limits.max_body_bytes` never writes more than a few KiB.
//! A held `tools/call` adds the approval request's id and status.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::check::{Caller, DecisionRecord};
use crate::config::AuditConfig;
use crate::mcp::strict::MAX_LOGGED_CHARS;
use crate::mcp::trace_id;

/// Deepest argument nesting logged; deeper values become `"…"`.
pub const MAX_ARGUMENT_DEPTH: usize = 4;
/// Most entries of one argument object or array logged.
pub const MAX_ARGUMENT_ENTRIES: usize = 32;

/// One audit line (serialized as JSON; see the README's "Audit log").
#[derive(Debug, Serialize)]
pub struct AuditLine<'a> {
    /// RFC 3339 UTC, microseconds.
    pub time: String,
    /// Envoy's `x-request-id` (cut).
    pub request_id: Option<Cow<'a, str>>,
    /// Trace id of the request's `traceparent`.
    pub trace_id: Option<&'a str>,
    /// JSON-RPC ids of the messages (string ids cut).
    pub jsonrpc_ids: Vec<Cow<'a, Value>>,
    pub issuer: Option<&'a str>,
    pub user: Option<&'a str>,
    pub service: Option<&'a str>,
    pub surface: Option<&'a str>,
    /// The `x-mcp-channel` header (cut).
    pub channel: Option<Cow<'a, str>>,
    pub server: Option<&'a str>,
    /// JSON-RPC methods as sent (cut).
    pub methods: Vec<Cow<'a, str>>,
    /// `params.name` of each `tools/call` as sent (cut).
    pub tools: Vec<Cow<'a, str>>,
    /// Action of the deciding message (the last one evaluated).
    pub action: Option<&'static str>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// `allowed`, or the stable denial code.
    pub reason: &'static str,
    pub policies: &'a [String],
    /// Cedar evaluation errors, `policy id: message` (cut: a message may
    /// quote an argument).
    pub errors: Vec<Cow<'a, str>>,
    pub generation: u64,
    pub latency_us: u64,
    /// `tools/call` arguments of allow-listed tools, truncated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<LoggedArguments<'a>>,
    /// The approval request a held `tools/call` was matched with (only on
    /// lines of such calls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<&'a str>,
    /// What became of it in this Check: `pending`, `used`, `rejected` (the
    /// Check's status word, see `DecisionRecord::approval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_status: Option<&'static str>,
}

/// Arguments of one `tools/call`.
#[derive(Debug, Serialize)]
pub struct LoggedArguments<'a> {
    pub tool: Cow<'a, str>,
    pub arguments: Value,
}

/// Turns records into lines: sampling and the argument allow-list.
#[derive(Debug)]
pub struct AuditFormat {
    sample_allowed: f64,
    log_arguments: HashSet<String>,
    allowed_seen: AtomicU64,
}

impl AuditFormat {
    /// From the validated `audit.*` configuration.
    pub fn new(cfg: &AuditConfig) -> Self {
        AuditFormat {
            sample_allowed: cfg.sample_allowed.clamp(0.0, 1.0),
            log_arguments: cfg.log_arguments.iter().cloned().collect(),
            allowed_seen: AtomicU64::new(0),
        }
    }

    /// Whether this record is written: every denial; allows at the
    /// `sample_allowed` share (evenly spread, deterministic: with 0.25 every
    /// fourth allow).
    pub fn keep(&self, rec: &DecisionRecord) -> bool {
        if !rec.allowed() {
            return true;
        }
        if self.sample_allowed >= 1.0 {
            return true;
        }
        let n = self.allowed_seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.sample_allowed).floor() > (n * self.sample_allowed).floor()
    }

    /// The JSON line of `rec` (without the newline), or `None` when sampled away.
    pub fn line(&self, rec: &DecisionRecord, now: SystemTime) -> Option<String> {
        if !self.keep(rec) {
            return None;
        }
        serde_json::to_string(&self.build(rec, now)).ok()
    }

    /// The line's fields.
    pub fn build<'a>(&self, rec: &'a DecisionRecord, now: SystemTime) -> AuditLine<'a> {
        let calls = rec.mcp.as_ref().map_or(&[][..], |m| &m.calls[..]);
        let (issuer, user, service, surface) = match &rec.caller {
            Some(Caller::User(id)) => (
                Some(id.issuer.as_str()),
                Some(id.user.as_str()),
                None,
                id.surface.as_deref().map(|s| s.name.as_str()),
            ),
            Some(Caller::Service(s)) => (None, None, Some(s.as_str()), None),
            None => (None, None, None, None),
        };
        let arguments = calls
            .iter()
            .filter_map(|c| {
                let tool = c.tool.as_deref()?;
                let args = c.arguments.as_ref()?;
                self.log_arguments.contains(tool).then(|| LoggedArguments {
                    tool: cut(tool),
                    arguments: truncate_object(args, 1),
                })
            })
            .collect();
        AuditLine {
            time: humantime::format_rfc3339_micros(now).to_string(),
            request_id: rec.request_id.as_deref().map(cut),
            trace_id: traceparent(rec).and_then(trace_id),
            jsonrpc_ids: calls
                .iter()
                .filter_map(|c| c.id.as_ref())
                .map(|id| match id {
                    Value::String(s) => match cut(s) {
                        Cow::Borrowed(_) => Cow::Borrowed(id),
                        Cow::Owned(short) => Cow::Owned(Value::String(short)),
                    },
                    other => Cow::Borrowed(other),
                })
                .collect(),
            issuer,
            user,
            service,
            surface,
            channel: rec.channel.as_deref().map(cut),
            server: rec.server.as_deref(),
            methods: calls.iter().map(|c| cut(&c.method)).collect(),
            tools: calls
                .iter()
                .filter_map(|c| c.tool.as_deref())
                .map(cut)
                .collect(),
            action: rec.decisions.last().map(|d| d.action.as_str()),
            decision: if rec.allowed() { "allow" } else { "deny" },
            reason: match rec.outcome {
                Ok(()) => "allowed",
                Err(r) => r.code(),
            },
            policies: &rec.policies,
            errors: rec
                .decisions
                .iter()
                .flat_map(|d| d.errors.iter().map(|e| cut(e)))
                .collect(),
            generation: rec.generation,
            latency_us: u64::try_from(rec.latency.as_micros()).unwrap_or(u64::MAX),
            arguments,
            approval_id: rec.approval.as_ref().map(|(id, _)| id.as_str()),
            approval_status: rec.approval.as_ref().map(|(_, status)| *status),
        }
    }
}

/// The trace context of a Check: the `traceparent` header, else the first
/// `params._meta.traceparent` of the body (both validated).
pub fn traceparent(rec: &DecisionRecord) -> Option<&str> {
    rec.traceparent.as_deref().or_else(|| {
        rec.mcp
            .as_ref()?
            .calls
            .iter()
            .find_map(|c| c.traceparent.as_deref())
    })
}

fn truncate_object(map: &Map<String, Value>, depth: usize) -> Value {
    if depth > MAX_ARGUMENT_DEPTH {
        return Value::String("…".into());
    }
    Value::Object(
        map.iter()
            .take(MAX_ARGUMENT_ENTRIES)
            .map(|(k, v)| (cut(k).into_owned(), truncate(v, depth + 1)))
            .collect(),
    )
}

/// `v` with long strings cut, deep nesting and long lists elided.
pub fn truncate(v: &Value, depth: usize) -> Value {
    match v {
        Value::String(s) => Value::String(cut(s).into_owned()),
        Value::Object(m) => truncate_object(m, depth),
        Value::Array(_) if depth > MAX_ARGUMENT_DEPTH => Value::String("…".into()),
        Value::Array(a) => Value::Array(
            a.iter()
                .take(MAX_ARGUMENT_ENTRIES)
                .map(|x| truncate(x, depth + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `s` cut to [`MAX_LOGGED_CHARS`] characters, ending with `…` when cut (for
/// JSON lines: unlike [`crate::mcp::strict::logged`], nothing is escaped, the
/// JSON encoder does that).
pub fn cut(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(MAX_LOGGED_CHARS) {
        None => Cow::Borrowed(s),
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
