//! W3C Trace Context (`traceparent`) of a request: from the HTTP header or
//! from `params._meta.traceparent` of an MCP message.

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); anything
/// else is dropped, never forwarded into logs as is.
pub fn valid_traceparent(v: &str) -> Option<&str> {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let ok = parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2);
    ok.then_some(v)
}

/// The trace id (32 hex digits) of a validated `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1)
}

/// The parent span id (16 hex digits) of a validated `traceparent`.
pub fn parent_span_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_kept() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(valid_traceparent(good), Some(good));
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "x",
        ] {
            assert_eq!(valid_traceparent(bad), None, "{bad}");
        }
        assert_eq!(trace_id(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(parent_span_id(good), Some("00f067aa0ba902b7"));
    }
}
