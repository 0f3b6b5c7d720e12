//! Cedar entity type and action names used by mcp-authz, built once.

use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{EntityId, EntityTypeName, EntityUid};

fn type_name(s: &str) -> EntityTypeName {
    #[expect(clippy::expect_used, reason = "constant, valid type names")]
    EntityTypeName::from_str(s).expect("valid entity type name")
}

pub static USER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("User"));
pub static GROUP: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Group"));
pub static BUSINESS_GROUP: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("BusinessGroup"));
pub static SERVICE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Service"));
pub static SURFACE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Surface"));
pub static SERVER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("McpServer"));
pub static TOOL: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Tool"));
pub static ACTION: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Action"));

/// An entity uid of type `t` and id `id`.
pub fn uid(t: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
}

/// Uid of a tool: `Tool::"<server>/<tool>"`.
pub fn tool_uid(server: &str, tool: &str) -> EntityUid {
    uid(&TOOL, &format!("{server}/{tool}"))
}

/// The MCP-level actions a policy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Connect,
    CallTool,
    ListTools,
    ReadResource,
    GetPrompt,
    /// A person approves a held `tools/call` of a tool (human in the loop);
    /// never an MCP message.
    Approve,
}

impl Action {
    /// Every action, in index order.
    pub const ALL: [Action; 6] = [
        Action::Connect,
        Action::CallTool,
        Action::ListTools,
        Action::ReadResource,
        Action::GetPrompt,
        Action::Approve,
    ];

    /// Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::CallTool => "call_tool",
            Action::ListTools => "list_tools",
            Action::ReadResource => "read_resource",
            Action::GetPrompt => "get_prompt",
            Action::Approve => "approve",
        }
    }

    /// Parses a Cedar action id.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The Cedar uid `Action::"<id>"`.
    pub fn uid(self) -> EntityUid {
        uid(&ACTION, self.as_str())
    }

    /// Position in [`Action::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}
