//! Resident memory per Cedar policy, measured (issue 14: where the RSS at
//! 10,000 policies goes). Parses 10,000 policies shaped like the ones
//! `benches/compare` generates and prints the RSS growth per policy:
//!
//! - `vec`: parsed policies only (Cedar's AST and the policy text);
//! - `one`: all of them in one `PolicySet`;
//! - `many`: each in its own `PolicySet` (the worst case of an index cell).
//!
//! `cargo run --release --example policy_memory -- one`

use cedar_policy::{Policy, PolicyId, PolicySet};

fn rss_kb() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".into())
}

fn text(i: usize) -> String {
    let s = i % 1000;
    match i % 3 {
        0 => format!(
            "@id(\"gen-{i}\")\n@message(\"{{server}} is closed to group blocked-{i}\")\n\
             forbid (principal, action, resource == McpServer::\"gen-{s:05}\")\n\
             when {{ principal in Group::\"blocked-{i}\" }};"
        ),
        1 => format!(
            "@id(\"gen-{i}\")\n@message(\"{{tool}} is closed to group blocked-{i}\")\n\
             forbid (principal, action == Action::\"call_tool\", resource == Tool::\"gen-{s:05}/search\")\n\
             when {{ principal in Group::\"blocked-{i}\" && context.surface.environment == \"prod\" }};"
        ),
        _ => format!(
            "@id(\"gen-{i}\")\n@message(\"{{server}} reachable by group g{i}\")\n\
             permit (principal in Group::\"g{i}\", action, resource == McpServer::\"gen-{s:05}\")\n\
             when {{ resource.namespace == \"prod\" }};"
        ),
    }
}

fn main() -> Result<(), String> {
    const N: u64 = 10_000;
    let mode = std::env::args().nth(1).unwrap_or_else(|| "one".into());
    let before = rss_kb()?;
    let policies = (0..N as usize)
        .map(|i| {
            Policy::parse(Some(PolicyId::new(format!("gen-{i}"))), text(i))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = rss_kb()?;
    let kept: Box<dyn std::any::Any> = match mode.as_str() {
        "vec" => Box::new(policies),
        "one" => {
            let mut set = PolicySet::new();
            for p in policies {
                set.add(p).map_err(|e| e.to_string())?;
            }
            Box::new(set)
        }
        "many" => Box::new(
            policies
                .into_iter()
                .map(|p| {
                    let mut set = PolicySet::new();
                    set.add(p).map(|()| set).map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        other => return Err(format!("mode must be vec, one or many, not `{other}`")),
    };
    let laid_out = rss_kb()?;
    println!(
        "{mode}: {N} policies; parsed {} B/policy; kept as `{mode}` {} B/policy",
        (parsed - before) * 1024 / N,
        (laid_out - before) * 1024 / N
    );
    drop(kept);
    Ok(())
}
