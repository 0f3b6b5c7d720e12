//! Registry and configuration → Cedar entities, built once per snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{Entity, EntityUid, RestrictedExpression};

use crate::catalog::Catalog;
use crate::config::{Surface, UNKNOWN_SURFACE};
use crate::policy::names::{BUSINESS_GROUP, GROUP, SERVER, SURFACE, tool_uid, uid};

/// Prebuilt entities of one snapshot; a request clones only the few it needs.
pub struct StaticEntities {
    pub servers: HashMap<String, Entity>,
    /// Keyed by `"<server>/<tool>"`.
    pub tools: HashMap<String, Entity>,
    pub surfaces: HashMap<String, Entity>,
    pub unknown_surface: Entity,
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

fn set(uids: impl IntoIterator<Item = EntityUid>) -> RestrictedExpression {
    RestrictedExpression::new_set(uids.into_iter().map(RestrictedExpression::new_entity_uid))
}

fn entity(
    uid: EntityUid,
    attrs: Vec<(&str, RestrictedExpression)>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, String> {
    let attrs = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let id = uid.to_string();
    Entity::new(uid, attrs, parents).map_err(|e| format!("entity {id}: {e}"))
}

fn surface_entity(name: &str, environment: &str, trusted: bool) -> Result<Entity, String> {
    entity(
        uid(&SURFACE, name),
        vec![
            ("environment", s(environment)),
            (
                "trusted_for_context",
                RestrictedExpression::new_bool(trusted),
            ),
        ],
        HashSet::new(),
    )
}

impl StaticEntities {
    /// Builds the entities of every server, tool and surface.
    pub fn build(cat: &Catalog, surfaces: &[Arc<Surface>]) -> Result<Self, String> {
        let mut out = StaticEntities {
            servers: HashMap::new(),
            tools: HashMap::new(),
            surfaces: HashMap::new(),
            unknown_surface: surface_entity(UNKNOWN_SURFACE, UNKNOWN_SURFACE, false)?,
        };
        for sf in surfaces {
            let e = surface_entity(&sf.name, sf.environment.as_str(), sf.trusted_for_context)?;
            out.surfaces.insert(sf.name.clone(), e);
        }
        for sv in &cat.servers {
            let server_uid = uid(&SERVER, &sv.name);
            let approved = sv
                .approved_business_groups
                .iter()
                .map(|b| uid(&BUSINESS_GROUP, b));
            let allowed = sv
                .allowed_surfaces
                .iter()
                .flatten()
                .map(|n| uid(&SURFACE, n));
            let channels = sv.channels.iter().map(|c| s(c));
            let e = entity(
                server_uid.clone(),
                vec![
                    ("name", s(&sv.name)),
                    ("title", s(&sv.title)),
                    ("namespace", s(sv.namespace.as_str())),
                    ("sensitivity", s(sv.sensitivity.as_str())),
                    ("owner", s(&sv.owner)),
                    (
                        "owner_group",
                        RestrictedExpression::new_entity_uid(uid(&GROUP, &sv.owner)),
                    ),
                    (
                        "business_group_gated",
                        RestrictedExpression::new_bool(!sv.approved_business_groups.is_empty()),
                    ),
                    ("approved_business_groups", set(approved)),
                    (
                        "surface_restricted",
                        RestrictedExpression::new_bool(sv.allowed_surfaces.is_some()),
                    ),
                    ("allowed_surfaces", set(allowed)),
                    ("channels", RestrictedExpression::new_set(channels)),
                    (
                        "channel_scoped",
                        RestrictedExpression::new_bool(!sv.channels.is_empty()),
                    ),
                ],
                HashSet::new(),
            )?;
            out.servers.insert(sv.name.clone(), e);
            for t in &sv.tools {
                let e = entity(
                    tool_uid(&sv.name, &t.name),
                    vec![
                        ("name", s(&t.name)),
                        (
                            "server",
                            RestrictedExpression::new_entity_uid(server_uid.clone()),
                        ),
                        ("read_only", RestrictedExpression::new_bool(t.read_only)),
                        ("destructive", RestrictedExpression::new_bool(t.destructive)),
                        (
                            "requires_approval",
                            RestrictedExpression::new_bool(t.requires_approval),
                        ),
                    ],
                    HashSet::from([server_uid.clone()]),
                )?;
                out.tools.insert(format!("{}/{}", sv.name, t.name), e);
            }
        }
        Ok(out)
    }
}

/// The surface entity of a request: the configured one, or "unknown".
pub fn surface_or_unknown<'a>(e: &'a StaticEntities, name: Option<&str>) -> &'a Entity {
    name.and_then(|n| e.surfaces.get(n))
        .unwrap_or(&e.unknown_surface)
}
