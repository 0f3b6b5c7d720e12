//! What a signed-in person may use, as the decision core answers it: the
//! caller whose view is shown (its own surface, or a clearly hypothetical
//! other one) and the availability of every server and tool, taken only from
//! [`Snapshot::visible_to`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::authz::Snapshot;
use crate::config::Surface;
use crate::identity::{Caller, Identity};

/// Whether a caller may call one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolUse {
    Available,
    /// Allowed with no arguments, but some policy reads the arguments.
    DependsOnArguments,
    NotAvailable,
}

impl ToolUse {
    /// The text shown for it (never colour alone).
    pub fn label(self) -> &'static str {
        match self {
            ToolUse::Available => "available",
            ToolUse::DependsOnArguments => "available, depending on the arguments",
            ToolUse::NotAvailable => "not available to you",
        }
    }

    /// CSS class of the label.
    pub fn class(self) -> &'static str {
        match self {
            ToolUse::Available => "use ok",
            ToolUse::DependsOnArguments => "use maybe",
            ToolUse::NotAvailable => "use no",
        }
    }
}

/// Server name → (tool name → conditional) for the servers a caller may connect to.
#[derive(Debug, Default)]
pub struct Availability {
    servers: HashMap<String, HashMap<String, bool>>,
}

impl Availability {
    /// Asks the decision core which servers and tools `caller` may use (no
    /// channel: the UI passes none, so channel-scoped tools read as not available).
    pub fn of(snap: &Snapshot, caller: &Caller) -> Self {
        let servers = snap
            .visible_to(caller, None)
            .into_iter()
            .map(|v| {
                let tools = v
                    .tools
                    .iter()
                    .map(|t| (t.tool.name.clone(), t.conditional))
                    .collect();
                (v.server.name.clone(), tools)
            })
            .collect();
        Availability { servers }
    }

    /// Whether the caller may connect to `server`.
    pub fn server(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// Whether the caller may call `tool` of `server`.
    pub fn tool(&self, server: &str, tool: &str) -> ToolUse {
        match self.servers.get(server).and_then(|t| t.get(tool)) {
            None => ToolUse::NotAvailable,
            Some(false) => ToolUse::Available,
            Some(true) => ToolUse::DependsOnArguments,
        }
    }
}

/// Whose view a page shows.
#[derive(Debug)]
pub struct Viewer {
    /// The caller the availability is computed for.
    pub caller: Caller,
    /// Surface of `caller`, `None` when the token's client is not a surface.
    pub surface: Option<String>,
    /// `true` when `surface` was chosen on the page rather than fixed by the token.
    pub hypothetical: bool,
}

impl Viewer {
    /// The view of a verified `identity`: from its token's own surface, or,
    /// when `chosen` names another configured surface, the same user, groups
    /// and business groups as if the token had been issued to it.
    pub fn new(
        identity: Arc<Identity>,
        chosen: Option<&str>,
        surfaces: &[Arc<Surface>],
    ) -> Result<Self, String> {
        let own = identity.surface.as_ref().map(|s| s.name.clone());
        match chosen.filter(|c| !c.is_empty() && Some(*c) != own.as_deref()) {
            None => Ok(Viewer {
                caller: Caller::User(identity),
                surface: own,
                hypothetical: false,
            }),
            Some(name) => {
                let caller = Caller::stated_user(
                    &identity.user,
                    &identity.groups,
                    &identity.business_groups,
                    Some(name),
                    surfaces,
                )?;
                Ok(Viewer {
                    caller,
                    surface: Some(name.to_owned()),
                    hypothetical: true,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn user(name: &str, groups: &[&str], bgs: &[&str], surface: &str) -> Arc<Identity> {
        let cfg = crate::config::load(None).unwrap();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match Caller::stated_user(
            name,
            &strings(groups),
            &strings(bgs),
            Some(surface),
            &cfg.surfaces,
        )
        .unwrap()
        {
            Caller::User(id) => id,
            Caller::Service(_) => unreachable!(),
        }
    }

    #[test]
    fn revenue_metrics_are_available_to_ads_eng_and_not_to_finance() {
        let cfg = crate::config::load(None).unwrap();
        let snap = Snapshot::load(&cfg).unwrap();
        let alice = Viewer::new(
            user("alice", &["ads-eng"], &["ads"], "ai-chat"),
            None,
            &cfg.surfaces,
        )
        .unwrap();
        let mallory = Viewer::new(
            user("mallory", &["analysts"], &["finance"], "ai-chat"),
            None,
            &cfg.surfaces,
        )
        .unwrap();
        let a = Availability::of(&snap, &alice.caller);
        let m = Availability::of(&snap, &mallory.caller);
        assert!(a.server("presto") && m.server("presto"));
        assert_eq!(a.tool("presto", "get_revenue_metrics"), ToolUse::Available);
        assert_eq!(
            m.tool("presto", "get_revenue_metrics"),
            ToolUse::NotAvailable
        );
        assert_eq!(m.tool("presto", "run_query"), ToolUse::DependsOnArguments);
        assert_eq!(m.tool("presto", "no_such_tool"), ToolUse::NotAvailable);
    }

    #[test]
    fn another_surface_is_hypothetical_and_keeps_the_verified_groups() {
        let cfg = crate::config::load(None).unwrap();
        let snap = Snapshot::load(&cfg).unwrap();
        let alice = user("alice", &["ads-eng"], &["ads"], "ai-chat");
        let own = Viewer::new(alice.clone(), Some("ai-chat"), &cfg.surfaces).unwrap();
        assert!(!own.hypothetical);
        let cli = Viewer::new(alice, Some("cli"), &cfg.surfaces).unwrap();
        assert!(cli.hypothetical);
        assert_eq!(cli.surface.as_deref(), Some("cli"));
        match &cli.caller {
            Caller::User(id) => assert_eq!(id.groups, vec!["ads-eng".to_string()]),
            Caller::Service(_) => panic!("a user stays a user"),
        }
        // The registry enables Presto only in ai-chat, ide and slackbot.
        assert!(Availability::of(&snap, &own.caller).server("presto"));
        assert!(!Availability::of(&snap, &cli.caller).server("presto"));
    }

    #[test]
    fn an_unknown_surface_is_refused() {
        let cfg = crate::config::load(None).unwrap();
        let alice = user("alice", &[], &[], "ai-chat");
        let err = Viewer::new(alice, Some("nowhere"), &cfg.surfaces).unwrap_err();
        assert!(err.contains("`nowhere`"), "{err}");
    }
}
