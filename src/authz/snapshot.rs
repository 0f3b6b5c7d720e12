//! One consistent snapshot of catalog, entities and policies, built off to the
//! side and swapped in whole.

use std::path::PathBuf;

use cedar_policy::Entities;
use sha2::{Digest, Sha256};

use super::arguments::schema_fragment;
use super::entities::StaticEntities;
use super::memo::DecisionCache;
use crate::catalog::{Catalog, expand, load_catalog};
use crate::config::{Config, ConfigError};
use crate::policy::{PolicyEngine, PolicyError, load_schema};

/// Why a snapshot could not be built; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Registry(#[from] ConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("registry entities do not match the schema: {0}")]
    Entities(String),
}

/// Everything a decision needs, immutable once built.
pub struct Snapshot {
    pub catalog: Catalog,
    pub entities: StaticEntities,
    pub engine: PolicyEngine,
    /// Evaluated on every decision but never enforced.
    pub shadow: Option<PolicyEngine>,
    /// SHA-256 over every source file's path and content.
    pub hash: [u8; 32],
    /// Set by the store: 1 for the first snapshot, +1 per successful reload
    /// (0 for a snapshot loaded outside a store, e.g. by the CLI).
    pub generation: u64,
    /// Decisions already taken with this snapshot.
    pub(super) memo: DecisionCache,
}

/// Every file a snapshot reads, directories expanded, in a stable order.
pub fn source_files(cfg: &Config) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = vec![cfg.policies.schema.clone()];
    files.extend(expand(&cfg.policies.files, "cedar")?);
    files.extend(expand(&cfg.policies.shadow, "cedar")?);
    files.extend(expand(&cfg.registry.files, "yaml")?);
    Ok(files)
}

/// Hash of the sources; a file that cannot be read hashes as its error, so
/// the change is noticed and the load reports it.
pub fn source_hash(cfg: &Config) -> [u8; 32] {
    let mut h = Sha256::new();
    match source_files(cfg) {
        Ok(files) => {
            for f in files {
                h.update(f.as_os_str().as_encoded_bytes());
                h.update([0]);
                match std::fs::read(&f) {
                    Ok(bytes) => h.update(&bytes),
                    Err(e) => h.update(e.to_string().as_bytes()),
                }
                h.update([0]);
            }
        }
        Err(e) => h.update(e.to_string().as_bytes()),
    }
    h.finalize().into()
}

/// Refuses a policy that reads a tool argument the registry gives no Cedar
/// type (see [`super::argument_paths`]): it could never match.
fn check_argument_paths(engine: &PolicyEngine, catalog: &Catalog) -> Result<(), PolicyError> {
    let mut texts = engine.texts();
    texts.sort();
    for (id, text) in texts {
        // Read as Cedar reads it: `context . arguments // c` is the same path.
        let text = crate::policy::condition::normalized(&text).unwrap_or(text);
        for path in super::argument_paths::argument_paths(&text) {
            if let Some(why) = super::argument_paths::untyped(catalog, &path) {
                let info = engine.info(&id);
                return Err(PolicyError {
                    file: info.map_or_else(|| "<policies>".into(), |i| i.file.clone()),
                    line: info.map(|i| i.line),
                    message: format!(
                        "policy `{id}` reads `context.arguments.{}`, which no request can carry: {why}",
                        path.join(".")
                    ),
                });
            }
        }
    }
    Ok(())
}

impl Snapshot {
    /// Reads, parses and validates everything; touches no shared state.
    pub fn load(cfg: &Config) -> Result<Self, LoadError> {
        let hash = source_hash(cfg);
        let catalog = load_catalog(&cfg.registry.files, &cfg.surfaces)?;
        let schema = load_schema(&cfg.policies.schema, &schema_fragment(&catalog))?;
        let engine = PolicyEngine::load(&schema, &expand(&cfg.policies.files, "cedar")?)?;
        let shadow = if cfg.policies.shadow.is_empty() {
            None
        } else {
            Some(PolicyEngine::load(
                &schema,
                &expand(&cfg.policies.shadow, "cedar")?,
            )?)
        };
        for e in std::iter::once(&engine).chain(shadow.as_ref()) {
            check_argument_paths(e, &catalog)?;
        }
        let entities =
            StaticEntities::build(&catalog, &cfg.surfaces).map_err(LoadError::Entities)?;
        // Checked against the schema a server (with its tools) at a time:
        // one `Entities` of every entity cost 21 MB of start-up peak at
        // 1,000 servers, only to be dropped.
        let check = |group: Vec<cedar_policy::Entity>| {
            Entities::from_entities(group, Some(&schema))
                .map(drop)
                .map_err(|e| {
                    // The entity and attribute are in the error's sources.
                    let mut msg = e.to_string();
                    let mut cause = std::error::Error::source(&e);
                    while let Some(c) = cause {
                        msg = format!("{msg}: {c}");
                        cause = c.source();
                    }
                    LoadError::Entities(msg)
                })
        };
        check(
            entities
                .surfaces
                .values()
                .cloned()
                .chain([entities.unknown_surface.clone()])
                .collect(),
        )?;
        for sv in &catalog.servers {
            let tools = sv
                .tools
                .iter()
                .filter_map(|t| entities.tools.get(&format!("{}/{}", sv.name, t.name)));
            check(
                entities
                    .servers
                    .get(&sv.name)
                    .into_iter()
                    .chain(tools)
                    .cloned()
                    .collect(),
            )?;
        }
        Ok(Snapshot {
            catalog,
            entities,
            engine,
            // With shadow policies every decision is evaluated, so disagreements are seen.
            memo: DecisionCache::new(
                if shadow.is_some() {
                    0
                } else {
                    cfg.limits.decision_cache_entries
                },
                cfg.limits.decision_cache_bytes,
            ),
            shadow,
            hash,
            generation: 0,
        })
    }
}

impl Snapshot {
    /// Whether an allowed `tools/call` of `tool` on `server` is held for a
    /// person's approval: the registry marks the tool `requires_approval`, or
    /// a permit that allowed it carries `@approval`.
    pub fn needs_approval(&self, server: &str, tool: &str, decision: &super::Decision) -> bool {
        let registry = self
            .catalog
            .server(server)
            .and_then(|s| s.tool(tool))
            .is_some_and(|t| t.requires_approval);
        registry
            || decision
                .policies
                .iter()
                .any(|id| self.engine.info(id).is_some_and(|i| i.approval))
    }

    /// The snapshot digest in hex (what an approval grant is bound to).
    pub fn digest_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}
