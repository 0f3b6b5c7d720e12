//! Cedar schema and policy files → a validated policy set, with errors that
//! name the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use super::message;
use super::source::{Statement, line_of, lone_carriage_return, statements};

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

/// Maps `f` over `items` on up to `available_parallelism` threads (at most
/// 4), in contiguous chunks; the results keep the order of `items`.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// One statement parsed, with the file and line of its error.
fn parse_statement(file: &Path, st: &Statement<'_>) -> Result<Policy, PolicyError> {
    let at = |offset: Option<usize>| Some(st.line + offset.map_or(0, |o| line_of(st.text, o) - 1));
    Policy::parse(None, st.text).map_err(|e| {
        let (offset, msg) = describe(&e, &e);
        let msg = match e.related().and_then(|mut r| r.next()) {
            Some(r) => format!("{msg}: {r}"),
            None => msg,
        };
        PolicyError::new(file, at(offset), msg)
    })
}

/// Parses every policy of `files`, checks `@id` and `@message`, and validates
/// them against `schema` in strict mode.
///
/// Parsing and validation run on several threads (start-up and reload time
/// at 10,000 policies); the first error in file order is reported. Returns
/// the validated policies as a few sets, in file order.
pub fn load_policies(
    schema: &Schema,
    files: &[PathBuf],
) -> Result<(Vec<PolicySet>, HashMap<String, PolicyInfo>), PolicyError> {
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let src = std::fs::read_to_string(file)
            .map_err(|e| PolicyError::new(file, None, format!("cannot read policies: {e}")))?;
        if let Some(line) = lone_carriage_return(&src) {
            return Err(PolicyError::new(
                file,
                Some(line),
                "carriage return without a line feed: use LF or CRLF line ends (Cedar ends a `//` comment at a lone CR, which would hide or reveal code)",
            ));
        }
        sources.push((file, src));
    }
    let statements: Vec<(&PathBuf, Statement<'_>)> = sources
        .iter()
        .flat_map(|(file, src)| statements(src).into_iter().map(move |st| (*file, st)))
        .collect();
    let parsed = par_map(&statements, |(file, st)| parse_statement(file, st));
    let mut info: HashMap<String, PolicyInfo> = HashMap::new();
    // Source text per policy, kept only until validation is done.
    let mut texts: HashMap<String, (&PathBuf, usize, &str)> = HashMap::new();
    let mut policies = Vec::with_capacity(statements.len());
    for ((file, st), policy) in statements.iter().zip(parsed) {
        let file: &PathBuf = file;
        let policy = policy?;
        let at =
            |offset: Option<usize>| Some(st.line + offset.map_or(0, |o| line_of(st.text, o) - 1));
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
        policies.push(policy.new_id(PolicyId::new(&id)));
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
        texts.insert(id, (file, st.line, st.text));
    }
    drop(statements);
    // Validation is per policy: each thread validates a contiguous share.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let share = policies.len().div_ceil(threads).max(1);
    let shares: Vec<Vec<Policy>> = {
        let mut rest = policies;
        let mut out = Vec::new();
        while rest.len() > share {
            let tail = rest.split_off(share);
            out.push(rest);
            rest = tail;
        }
        out.push(rest);
        out
    };
    let validator = Validator::new(schema.clone());
    let checked = par_map(&shares, |share| {
        let mut set = PolicySet::new();
        for p in share {
            set.add(p.clone())
                .map_err(|e| (String::new(), None, e.to_string()))?;
        }
        let result = validator.validate(&set, ValidationMode::Strict);
        match result.validation_errors().next() {
            Some(e) => {
                let (offset, msg) = describe(e, e);
                Err((e.policy_id().to_string(), offset, msg))
            }
            None => Ok(set),
        }
    });
    let mut sets = Vec::with_capacity(checked.len());
    // Shares are in file order: the first failing share holds the first error.
    for share in checked {
        let (id, offset, msg) = match share {
            Ok(set) => {
                sets.push(set);
                continue;
            }
            Err(e) => e,
        };
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
    Ok((sets, info))
}
