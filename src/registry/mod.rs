//! The registry of MCP servers: the catalog, its Cedar entities and policies
//! as one snapshot, and the authorization questions asked of it ("may this
//! identity use server X / tool T from surface S?", "which servers may it
//! see?"). Knows nothing of gRPC or Envoy; the ext_authz service and the CLI
//! call this library.

mod arguments;
mod cases;
mod catalog;
mod decide;
mod entities;
mod load;
mod memo;
mod raw;
mod reload;
mod snapshot;

pub use arguments::{ArgType, ArgumentError, context_value};
pub use cases::{Case, CaseFile, Expect, Failure, Report, run_files};
pub use catalog::{Catalog, Namespace, RouteKey, Sensitivity, Server, Tool};
pub use decide::{CallContext, Decision, DecisionReason, Principal, Query};
pub use entities::StaticEntities;
pub use load::{expand, load_catalog};
pub use reload::{Registry, ReloadStatus};
pub use snapshot::{LoadError, Snapshot};
