//! `GET /metrics`: OpenMetrics for Prometheus, the classic text format for
//! everyone else (`curl`, `promtool check metrics`).

use std::sync::Arc;

use super::metrics::Metrics;

/// Content type of `/metrics` for a scraper that asks for OpenMetrics.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format, served to everyone else.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` (merged into the admin router).
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics)
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition: the two
/// differ only in that a counter family is named with its `_total` suffix
/// and there is no `# EOF` (nor `# UNIT`, which this crate never writes).
/// Tools that read only the classic format (`promtool check metrics`,
/// `curl`) get this; Prometheus asks for OpenMetrics and gets it as encoded.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.strip_suffix(" counter"))
        {
            counters.insert(name);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta.and_then(|(p, rest)| rest.split_once(' ').map(|(n, r)| (p, n, r))) {
            Some((p, name, rest)) if counters.contains(name) => {
                out.push_str(&format!("{p}{name}_total {rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

async fn scrape(
    axum::extract::State(m): axum::extract::State<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let openmetrics = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match m.encode() {
        Ok(body) if openmetrics => {
            ([(axum::http::header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
        }
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            prometheus_text(&body),
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counter_families_with_total_and_has_no_eof() {
        let open = "# HELP a_total x.\n# TYPE a counter\n# HELP a x.\na_total 1\n# TYPE g gauge\ng 2\n# EOF\n";
        let open = open.replace("# HELP a_total x.\n", "");
        assert_eq!(
            prometheus_text(&open),
            "# TYPE a_total counter\n# HELP a_total x.\na_total 1\n# TYPE g gauge\ng 2\n"
        );
    }
}
