//! The Cedar engine: schema, validated policies, the action/server index, and
//! placeholders in `@message`. Knows nothing of Envoy or tokens.

pub mod condition;
mod index;
mod load;
pub mod message;
pub mod names;
pub mod source;

pub use index::{Evaluation, PolicyIndex, evaluate_full};
pub use load::{PolicyError, PolicyInfo, load_policies, load_schema};
pub use names::Action;

use std::collections::HashMap;
use std::path::PathBuf;

use cedar_policy::{Authorizer, Entities, Request, Schema};

/// A validated, indexed policy set.
pub struct PolicyEngine {
    index: PolicyIndex,
    info: HashMap<String, PolicyInfo>,
    authz: Authorizer,
}

impl PolicyEngine {
    /// Loads, validates against `schema` and indexes the policies of `files`.
    pub fn load(schema: &Schema, files: &[PathBuf]) -> Result<Self, PolicyError> {
        let (sets, info) = load_policies(schema, files)?;
        let index = PolicyIndex::build_many(&sets).map_err(|message| PolicyError {
            file: "<policies>".into(),
            line: None,
            message,
        })?;
        Ok(PolicyEngine {
            index,
            info,
            authz: Authorizer::new(),
        })
    }

    /// Evaluates a request for `action` on a resource of `server`.
    pub fn evaluate(
        &self,
        req: &Request,
        entities: &Entities,
        action: Action,
        server: &str,
    ) -> Evaluation {
        self.index
            .evaluate(&self.authz, req, entities, action, server)
    }

    /// Whether a policy that can apply to `call_tool` on `server`/`tool`
    /// reads `context.arguments` (so a call's outcome depends on them).
    pub fn reads_arguments(&self, server: &str, tool: &str) -> bool {
        self.index.reads_arguments(server, tool)
    }

    /// Every policy's id and Cedar text, in no particular order.
    pub fn texts(&self) -> Vec<(String, String)> {
        self.index.texts()
    }

    /// Source and message of a policy.
    pub fn info(&self, id: &str) -> Option<&PolicyInfo> {
        self.info.get(id)
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}
