//! `@message` annotations: what a denied user reads, with `{placeholders}`
//! filled from the registry and the request.

/// Placeholders a message may use.
pub const PLACEHOLDERS: [&str; 8] = [
    "server",
    "server_name",
    "tool",
    "surface",
    "user",
    "approved_business_groups",
    "support_channel",
    "channels",
];

/// Values for the placeholders of one request.
#[derive(Debug, Default, Clone)]
pub struct MessageVars {
    /// Server title.
    pub server: String,
    pub server_name: String,
    pub tool: String,
    pub surface: String,
    pub user: String,
    /// Business group titles, in registry order.
    pub approved_business_groups: Vec<String>,
    pub support_channel: String,
    pub channels: Vec<String>,
}

/// Checks that every `{name}` in a message is a known placeholder.
pub fn check_placeholders(msg: &str) -> Result<(), String> {
    for name in names(msg) {
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}` in @message; known: {}",
                PLACEHOLDERS.join(", ")
            ));
        }
    }
    Ok(())
}

fn names(msg: &str) -> impl Iterator<Item = &str> {
    msg.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(n, _)| n))
}

/// "A", "A and B", "A, B and C".
pub fn human_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Fills the placeholders of a message.
pub fn render(msg: &str, v: &MessageVars) -> String {
    let mut out = String::with_capacity(msg.len() + 32);
    let mut rest = msg;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.split_once('}') {
            Some((name, tail)) => {
                match name {
                    "server" => out.push_str(&v.server),
                    "server_name" => out.push_str(&v.server_name),
                    "tool" => out.push_str(&v.tool),
                    "surface" => out.push_str(&v.surface),
                    "user" => out.push_str(&v.user),
                    "approved_business_groups" => {
                        out.push_str(&human_list(&v.approved_business_groups))
                    }
                    "support_channel" => out.push_str(&v.support_channel),
                    "channels" => out.push_str(&human_list(&v.channels)),
                    other => {
                        out.push('{');
                        out.push_str(other);
                        out.push('}');
                    }
                }
                rest = tail;
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn presto_gate_message_reads_naturally() {
        let v = MessageVars {
            server: "Presto".into(),
            approved_business_groups: vec!["Ads".into(), "Finance".into(), "Infra".into()],
            support_channel: "#presto-access".into(),
            ..Default::default()
        };
        assert_eq!(
            render(
                "{server} is limited to the {approved_business_groups} business groups; ask in {support_channel}",
                &v
            ),
            "Presto is limited to the Ads, Finance and Infra business groups; ask in #presto-access"
        );
    }

    #[test]
    fn unknown_placeholder_is_rejected() {
        assert!(check_placeholders("hi {server}").is_ok());
        assert!(
            check_placeholders("hi {servr}")
                .unwrap_err()
                .contains("servr")
        );
    }
}
