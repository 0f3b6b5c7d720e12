//! Validation of the audit log (`audit.*`) and trace export (`tracing.*`).

use super::super::raw::{RawAudit, RawTracing};
use super::super::*;
use super::{Problems, join_clean};

/// `audit.*`: output `stdout` (default), `off` or a file path; sampling
/// share within `0.0..=1.0`; a bounded queue.
pub(super) fn audit(p: &mut Problems, raw: RawAudit, base_dir: &std::path::Path) -> AuditConfig {
    let output = match raw.output.as_deref().map(str::trim) {
        None | Some("stdout") => AuditOutput::Stdout,
        Some("off") => AuditOutput::Off,
        Some("") => {
            p.push("audit.output", "empty: use `stdout`, `off` or a file path");
            AuditOutput::Off
        }
        Some(path) => AuditOutput::File(join_clean(base_dir, path)),
    };
    let sample_allowed = raw.sample_allowed.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_allowed) {
        p.push(
            "audit.sample_allowed",
            format!("`{sample_allowed}` is out of range: must be between 0.0 and 1.0"),
        );
    }
    for (i, t) in raw.log_arguments.iter().enumerate() {
        if t.trim().is_empty() {
            p.push(format!("audit.log_arguments[{i}]"), "empty tool name");
        }
    }
    let queue_lines = raw.queue_lines.unwrap_or(DEFAULT_AUDIT_QUEUE_LINES);
    let (lo, hi) = AUDIT_QUEUE_LINES_BOUNDS;
    if !(lo..=hi).contains(&queue_lines) {
        p.push(
            "audit.queue_lines",
            format!("`{queue_lines}` is out of range: must be between {lo} and {hi}"),
        );
    }
    AuditConfig {
        output,
        sample_allowed: sample_allowed.clamp(0.0, 1.0),
        log_arguments: raw.log_arguments,
        queue_lines: queue_lines.clamp(lo, hi),
    }
}

/// `tracing.*`: an `http(s)://` OTLP endpoint (`/v1/traces` added when it
/// has no path) and a non-empty service name.
pub(super) fn tracing(p: &mut Problems, raw: RawTracing) -> TracingConfig {
    let otlp_endpoint = raw
        .otlp_endpoint
        .and_then(|text| match url::Url::parse(&text) {
            Ok(mut u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if u.path() == "/" {
                    u.set_path(OTLP_TRACES_PATH);
                }
                Some(u.to_string())
            }
            _ => {
                p.push(
                    "tracing.otlp_endpoint",
                    format!("`{text}` is not an `http://` or `https://` URL"),
                );
                None
            }
        });
    let service_name = raw
        .service_name
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    if service_name.trim().is_empty() {
        p.push("tracing.service_name", "must not be empty");
    }
    TracingConfig {
        otlp_endpoint,
        service_name,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::super::{AuditOutput, load_str};

    const BASE: &str = r#"
issuers:
  - name: idp
    issuer: https://idp.example.com
    audiences: [mcp]
    algorithms: [RS256]
    jwks: {url: https://idp.example.com/jwks}
policies: {schema: schema.cedarschema, files: [policies]}
registry: {files: [registry.yaml]}
"#;

    fn problems(audit: &str) -> Vec<String> {
        match load_str(
            &format!("{BASE}audit: {audit}\n"),
            "c.yaml",
            Path::new("/etc/m"),
        ) {
            Ok(_) => vec![],
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn audit_defaults_to_stdout_every_allow_no_arguments() {
        let Ok(cfg) = load_str(BASE, "c.yaml", Path::new("/etc/m")) else {
            panic!("base config is valid")
        };
        assert_eq!(cfg.audit.output, AuditOutput::Stdout);
        assert!((cfg.audit.sample_allowed - 1.0).abs() < f64::EPSILON);
        assert!(cfg.audit.log_arguments.is_empty());
    }

    #[test]
    fn a_relative_audit_file_is_resolved_against_base_dir() {
        let text = format!("{BASE}audit: {{output: logs/audit.jsonl}}\n");
        let Ok(cfg) = load_str(&text, "c.yaml", Path::new("/etc/m")) else {
            panic!("valid")
        };
        assert_eq!(
            cfg.audit.output,
            AuditOutput::File("/etc/m/logs/audit.jsonl".into())
        );
    }

    #[test]
    fn trace_export_is_off_by_default_and_gets_the_traces_path() {
        let Ok(cfg) = load_str(BASE, "c.yaml", Path::new("/etc/m")) else {
            panic!("valid")
        };
        assert_eq!(cfg.tracing.otlp_endpoint, None);
        let text = format!("{BASE}tracing: {{otlp_endpoint: 'http://otel:4318'}}\n");
        let Ok(cfg) = load_str(&text, "c.yaml", Path::new("/etc/m")) else {
            panic!("valid")
        };
        assert_eq!(
            cfg.tracing.otlp_endpoint.as_deref(),
            Some("http://otel:4318/v1/traces")
        );
        let text = format!("{BASE}tracing: {{otlp_endpoint: 'otel:4318'}}\n");
        let e = load_str(&text, "c.yaml", Path::new("/etc/m")).err();
        assert!(
            e.is_some_and(|e| e.to_string().contains("tracing.otlp_endpoint")),
            "a URL without scheme is refused"
        );
    }

    #[test]
    fn bad_audit_keys_are_reported_at_their_path() {
        for (audit, path) in [
            ("{sample_allowed: 1.5}", "audit.sample_allowed"),
            ("{queue_lines: 1}", "audit.queue_lines"),
            ("{log_arguments: ['']}", "audit.log_arguments[0]"),
            ("{output: ''}", "audit.output"),
            ("{sample: 0.5}", "sample"),
        ] {
            let p = problems(audit);
            assert!(p.iter().any(|m| m.contains(path)), "{audit}: {p:?}");
        }
    }
}
