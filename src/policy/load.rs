//! Cedar schema and policy files → a validated policy set, with errors that
//! name the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use super::message;
use super::source::{line_of, statements};

/// A policy or schema file problem: file, line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl PolicyError {
    fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        PolicyError {
            file: file.display().to_string(),
            line,
            message: message.into(),
        }
    }
}

/// Where a policy came from and what it tells a denied user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyInfo {
    pub id: String,
    pub file: String,
    pub line: usize,
    /// The `@message` annotation, with `{placeholders}` unexpanded.
    pub message: String,
    pub forbid: bool,
    /// `@approval` on a permit: a `tools/call` it allows is held for approval.
    pub approval: bool,
}

/// Diagnostic → (first label offset, full message including help).
fn describe(d: &dyn Diagnostic, fallback: &dyn std::fmt::Display) -> (Option<usize>, String) {
    let offset = d.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    let mut msg = fallback.to_string();
    if let Some(help) = d.help() {
        msg.push_str(&format!(" (help: {help})"));
    }
    (offset, msg)
}

/// Reads and parses the Cedar schema, with `generated` (declarations derived
/// from the registry) appended after the file's own text.
pub fn load_schema(path: &Path, generated: &str) -> Result<Schema, PolicyError> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| PolicyError::new(path, None, format!("cannot read schema: {e}")))?;
    let own_len = text.len();
    text.push_str(generated);
    match Schema::from_cedarschema_str(&text) {
        Ok((schema, _warnings)) => Ok(schema),
        Err(e) => {
            let (offset, msg) = describe(&e, &e);
            let detail = e
                .related()
                .and_then(|mut r| r.next())
                .map(|r| r.to_string())
                .unwrap_or_default();
            let msg = if detail.is_empty() {
                msg
            } else {
                format!("{msg}: {detail}")
            };
            if offset.is_some_and(|o| o >= own_len) {
                let msg = format!(
                    "{msg} (in the declarations generated from the registry's tool input schemas)"
                );
                return Err(PolicyError::new(path, None, msg));
            }
            Err(PolicyError::new(
                path,
                offset.map(|o| line_of(&text, o)),
                msg,
            ))
        }
    }
}

/// Parses every policy of `files`, checks `@id` and `@message`, and validates
/// the whole set against `schema` in strict mode.
pub fn load_policies(
    schema: &Schema,
    files: &[PathBuf],
) -> Result<(PolicySet, HashMap<String, PolicyInfo>), PolicyError> {
    let mut set = PolicySet::new();
    let mut info: HashMap<String, PolicyInfo> = HashMap::new();
    // Source text per policy, kept only until validation is done.
    let mut texts: HashMap<String, (PathBuf, usize, String)> = HashMap::new();
    for file in files {
        let src = std::fs::read_to_string(file)
            .map_err(|e| PolicyError::new(file, None, format!("cannot read policies: {e}")))?;
        for st in statements(&src) {
            let at = |offset: Option<usize>| {
                Some(st.line + offset.map_or(0, |o| line_of(st.text, o) - 1))
            };
            let policy = Policy::parse(None, st.text).map_err(|e| {
                let (offset, msg) = describe(&e, &e);
                let msg = match e.related().and_then(|mut r| r.next()) {
                    Some(r) => format!("{msg}: {r}"),
                    None => msg,
                };
                PolicyError::new(file, at(offset), msg)
            })?;
            let Some(id) = policy.annotation("id").map(str::to_owned) else {
                return Err(PolicyError::new(
                    file,
                    at(None),
                    "policy has no `@id(\"...\")` annotation",
                ));
            };
            if let Some(other) = info.get(&id) {
                return Err(PolicyError::new(
                    file,
                    at(None),
                    format!(
                        "policy id `{id}` is already used at {}:{}",
                        other.file, other.line
                    ),
                ));
            }
            let Some(msg) = policy.annotation("message").map(str::to_owned) else {
                return Err(PolicyError::new(
                    file,
                    at(None),
                    format!("policy `{id}` has no `@message(\"...\")` annotation for denied users"),
                ));
            };
            message::check_placeholders(&msg).map_err(|e| {
                PolicyError::new(
                    file,
                    at(st.text.find("@message")),
                    format!("policy `{id}`: {e}"),
                )
            })?;
            let forbid = policy.effect() == Effect::Forbid;
            let approval = policy.annotation("approval").is_some();
            if approval && forbid {
                return Err(PolicyError::new(
                    file,
                    at(st.text.find("@approval")),
                    format!(
                        "policy `{id}`: `@approval` holds a call a permit allows; a forbid cannot carry it"
                    ),
                ));
            }
            set.add(policy.new_id(PolicyId::new(&id)))
                .map_err(|e| PolicyError::new(file, at(None), e.to_string()))?;
            info.insert(
                id.clone(),
                PolicyInfo {
                    id: id.clone(),
                    file: file.display().to_string(),
                    line: st.line,
                    message: msg,
                    forbid,
                    approval,
                },
            );
            texts.insert(id, (file.clone(), st.line, st.text.to_owned()));
        }
    }
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    if let Some(e) = result.validation_errors().next() {
        let id = e.policy_id().to_string();
        let (offset, msg) = describe(e, e);
        return Err(match texts.get(&id) {
            Some((file, line, text)) => {
                let line = line + offset.map_or(0, |o| line_of(text, o) - 1);
                // Cedar's message usually names the policy already.
                let msg = if msg.contains(&format!("`{id}`")) {
                    msg
                } else {
                    format!("policy `{id}`: {msg}")
                };
                PolicyError::new(file, Some(line), msg)
            }
            None => PolicyError::new(Path::new("<policies>"), None, msg),
        });
    }
    Ok((set, info))
}
