//! The one decision core: (caller, surface, channel, server, MCP message,
//! arguments) → Cedar query → [`Decision`]. Holds the snapshot a decision is
//! taken on (catalog, entities built once, indexed policies, decision cache),
//! typed tool arguments, and policy test cases. Check, `explain`,
//! `policy test` and the registry API all ask through [`Access`].

mod argument_paths;
mod arguments;
mod cases;
mod decide;
mod entities;
mod memo;
mod query;
mod snapshot;

pub use arguments::{ArgumentError, context_value, schema_fragment};
pub use cases::{Case, CaseFile, Expect, Failure, Report, run_files};
pub use decide::{Decision, DecisionReason, VisibleServer, VisibleTool};
pub use entities::StaticEntities;
pub use memo::DECISION_CACHE_STATS;
pub use query::{Access, Arguments, CallContext, Principal, Query, honoured_channel};
pub use snapshot::{LoadError, Snapshot, source_files, source_hash};
