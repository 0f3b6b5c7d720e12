//! The Envoy configuration of a deployment, rendered from the registry, the
//! mcp-authz configuration and a [`Deployment`]: one route per registered
//! server path with its `mcp_server` context extension, so that a registered
//! server gets its route and nothing else can.
//!
//! What every rendered file holds (Envoy 1.40, static bootstrap):
//! - ext_authz (`failure_mode_allow: false`, `status_on_error: 503`, HTTP/2
//!   cluster, request body up to `limits.max_body_bytes`), then ext_proc
//!   (response headers; bodies of list responses on request), on MCP routes;
//! - the RFC 9728 metadata route and the registry API route to mcp-authz's
//!   public port with both filters disabled;
//! - a catch-all `direct_response` 404 (JSON-RPC body) reaching no server;
//! - MCP routes without a route timeout (a tool call may report progress for
//!   minutes; a GET stream stays open), bounded by `stream_idle_timeout`;
//! - path normalisation, headers with underscores refused, CORS for the
//!   configuration's `origins.allowed`, a JSON access log naming decisions.

use std::fmt::Write as _;

use super::description::{AuthzAddress, Deployment, Endpoint, Listener, upstream_url};
use crate::catalog::Catalog;
use crate::config::Config;

/// Why the Envoy configuration cannot be rendered.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct RenderError(pub Vec<String>);

/// What the header comment names as the sources.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub config: &'a str,
    pub deployment: &'a str,
}

/// One server route: path prefix, context extension, cluster, rewrite.
struct ServerRoute {
    prefix: String,
    extension: String,
    cluster: String,
    rewrite: String,
}

/// One upstream cluster.
struct Cluster {
    name: String,
    endpoint: Endpoint,
    tls: bool,
}

/// Renders Envoy's YAML.
///
/// # Errors
/// Each registered server without a path prefix, with host-based routes, or
/// without an upstream (`upstreams.<name>` or its registry `probe_url`).
pub fn render(
    cfg: &Config,
    catalog: &Catalog,
    d: &Deployment,
    sources: Sources<'_>,
) -> Result<String, RenderError> {
    let (routes, clusters) = server_routes(catalog, d)?;
    let mut out = String::new();
    header(&mut out, d, sources);
    listeners(&mut out, cfg, d, &routes);
    cluster_section(&mut out, d, &clusters);
    Ok(out)
}

fn server_routes(
    catalog: &Catalog,
    d: &Deployment,
) -> Result<(Vec<ServerRoute>, Vec<Cluster>), RenderError> {
    let mut problems = Vec::new();
    let mut routes = Vec::new();
    let mut clusters = Vec::new();
    // A typo in `upstreams` would silently leave a server on its probe URL.
    for name in d.upstreams.keys() {
        if catalog.server(name).is_none() {
            problems.push(format!(
                "upstreams.{name}: no registered server is named `{name}`"
            ));
        }
    }
    for s in &catalog.servers {
        let url = d.upstreams.get(&s.name).or(s.probe_url.as_ref());
        let Some(url) = url else {
            problems.push(format!(
                "server `{}`: no upstream: set `upstreams.{}` in the deployment description or `probe_url` in the registry",
                s.name, s.name
            ));
            continue;
        };
        let up = match upstream_url(url) {
            Ok(u) => u,
            Err(e) => {
                problems.push(format!("server `{}`: {e}", s.name));
                continue;
            }
        };
        if !s.route.hosts.is_empty() {
            problems.push(format!(
                "server `{}`: route.hosts is not rendered (host-based routes need their own virtual host); route it by path_prefixes",
                s.name
            ));
            continue;
        }
        if s.route.path_prefixes.is_empty() {
            problems.push(format!(
                "server `{}`: no route.path_prefixes to route it by",
                s.name
            ));
            continue;
        }
        for prefix in &s.route.path_prefixes {
            routes.push(ServerRoute {
                prefix: prefix.clone(),
                extension: s.route.context_extension.clone(),
                cluster: s.name.clone(),
                rewrite: up.path.clone(),
            });
        }
        clusters.push(Cluster {
            name: s.name.clone(),
            endpoint: up.endpoint,
            tls: up.tls,
        });
    }
    if problems.is_empty() {
        Ok((routes, clusters))
    } else {
        Err(RenderError(problems))
    }
}

fn secs(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

fn socket(e: &Endpoint) -> String {
    format!("{{ address: {}, port_value: {} }}", e.host, e.port)
}

fn header(out: &mut String, d: &Deployment, sources: Sources<'_>) {
    let _ = writeln!(
        out,
        "# Envoy 1.40 configuration rendered by `mcp-authz envoy render` from
# the mcp-authz configuration `{}` (its registry, origins and body limit)
# and the deployment description `{}`.
# Do not edit: change the registry or the description and render again.
#
# Every request to an MCP server is checked by mcp-authz (ext_authz) and its
# response processed by mcp-authz (ext_proc: list filtering, session binding).
# Validate: envoy --mode validate -c <this file>
admin:
  address:
    socket_address: {}

static_resources:
  listeners:",
        sources.config,
        sources.deployment,
        socket(&d.admin)
    );
}

fn listeners(out: &mut String, cfg: &Config, d: &Deployment, routes: &[ServerRoute]) {
    for (i, l) in d.listeners.iter().enumerate() {
        let _ = writeln!(
            out,
            "    - name: {}
      address:
        socket_address: {}
      filter_chains:",
            l.name,
            socket(&l.address)
        );
        if i == 0 {
            let _ = writeln!(
                out,
                "        - filters:
            # Anchored: every other listener reuses the same routes and filters.
            - &mcp_http"
            );
            connection_manager(out, cfg, d, routes);
        } else {
            let _ = writeln!(out, "        - filters: [*mcp_http]");
        }
        if let Some(tls) = &l.tls {
            downstream_tls(out, l, tls);
        }
    }
}

fn downstream_tls(out: &mut String, l: &Listener, tls: &super::description::Tls) {
    let _ = writeln!(
        out,
        "          # `{}`: TLS{}.
          transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        l.name,
        if tls.client_ca.is_some() {
            "; a client certificate is required and its URI SAN (SPIFFE id) reaches mcp-authz as the source principal"
        } else {
            ""
        }
    );
    if tls.client_ca.is_some() {
        let _ = writeln!(out, "              require_client_certificate: true");
    }
    let _ = writeln!(
        out,
        "              common_tls_context:
                tls_certificates:
                  - certificate_chain: {{ filename: {} }}
                    private_key: {{ filename: {} }}",
        tls.certificate, tls.private_key
    );
    if let Some(ca) = &tls.client_ca {
        let _ = writeln!(
            out,
            "                validation_context:
                  trusted_ca: {{ filename: {ca} }}"
        );
    }
}

/// Per-route config disabling ext_authz (ext_proc is off by default).
const BOTH_DISABLED: &str = "                          typed_per_filter_config:
                            envoy.filters.http.ext_authz:
                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              disabled: true";

fn connection_manager(out: &mut String, cfg: &Config, d: &Deployment, routes: &[ServerRoute]) {
    let _ = writeln!(
        out,
        "              name: envoy.filters.network.http_connection_manager
              typed_config:
                \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: mcp
                codec_type: AUTO"
    );
    if d.access_log {
        access_log(out);
    }
    let _ = writeln!(
        out,
        "                # `X_Forwarded_Groups` is not `X-Forwarded-Groups` to Envoy or
                # mcp-authz, but Python WSGI, CGI and several frameworks read
                # it as that: refuse every header name with an underscore
                # (HTTP/1.1: 400; HTTP/2: the stream is reset).
                common_http_protocol_options:
                  headers_with_underscores_action: REJECT_REQUEST
                # MCP streams are long: a tool call may report progress for
                # minutes and a GET (SSE) stream stays open. MCP routes have no
                # route timeout; a stream silent this long is closed.
                stream_idle_timeout: {}
                # One path, one meaning: route and authorize the path the
                # upstream will act on. An escaped `/` or `\\` (`%2F`, `%5C`),
                # which servers decode differently, is unescaped first, then
                # RFC 3986 dot segments are removed and `//` merged:
                # `/mcp/knowledge/..%2Fpresto` is presto, and routed as such.
                normalize_path: true
                merge_slashes: true
                path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD
                route_config:
                  name: mcp_routes
                  virtual_hosts:
                    - name: mcp
                      domains: [\"*\"]",
        secs(d.stream_idle_timeout)
    );
    cors(out, cfg);
    let _ = writeln!(
        out,
        "                      routes:
                        # RFC 9728 metadata for MCP clients: public, served by
                        # mcp-authz itself, no authorization on this route.
                        - match: {{ path_separated_prefix: /.well-known/oauth-protected-resource }}
                          route: {{ cluster: mcp_authz_public }}
{BOTH_DISABLED}
                        # The registry API (`/v0.1/servers`, `/v0.1/access`):
                        # mcp-authz authenticates the bearer token itself and
                        # never reads client identity headers, so no ext_authz.
                        - match: {{ path_separated_prefix: /v0.1 }}
                          route: {{ cluster: mcp_authz_public }}
{BOTH_DISABLED}
                        # One route per registered MCP server path. The context
                        # extension names the server to mcp-authz, so the decision
                        # never depends on parsing the path. `path_separated_prefix`
                        # matches `/mcp/presto` and `/mcp/presto/...`, never
                        # `/mcp/prestoXYZ`. No route timeout (see stream_idle_timeout)."
    );
    for r in routes {
        let _ = writeln!(
            out,
            "                        - match: {{ path_separated_prefix: {} }}
                          route: {{ cluster: {}, prefix_rewrite: {}, timeout: 0s }}
                          typed_per_filter_config:
                            envoy.filters.http.ext_authz:
                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                              check_settings:
                                context_extensions: {{ mcp_server: {} }}
                            envoy.filters.http.ext_proc:
                              \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig
                              config:
                                \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute
                                overrides: {{}}",
            r.prefix, r.cluster, r.rewrite, r.extension
        );
    }
    let _ = writeln!(
        out,
        "                        # Every other path: a JSON-RPC 404 from Envoy itself,
                        # reaching neither mcp-authz nor any MCP server.
                        - match: {{ prefix: / }}
                          direct_response:
                            status: 404
                            body:
                              inline_string: '{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32001,\"message\":\"no MCP server is registered at this path\",\"data\":{{\"reason\":\"unknown_route\"}}}}}}'
                          response_headers_to_add:
                            - header: {{ key: content-type, value: application/json }}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
{BOTH_DISABLED}"
    );
    http_filters(out, cfg, d);
}

/// Longest value of one access-log field, in bytes. mcp-authz already cuts
/// the client-chosen `tool` and `method` to 1 KiB plus `…`
/// ([`crate::ext_authz::metadata::MAX_JOINED_BYTES`]); Envoy's `:N` cuts
/// anything longer (and the path and request id, which reach Envoy's log
/// without mcp-authz) as a second line of defence.
const ACCESS_LOG_FIELD_BYTES: usize = 1027;

fn access_log(out: &mut String) {
    let n = ACCESS_LOG_FIELD_BYTES;
    let _ = writeln!(
        out,
        "                # One JSON line per request on stdout, naming what mcp-authz
                # decided: the ext_authz filter stores mcp-authz's
                # `dynamic_metadata` (allow and deny) under its own name.
                # Never log `authorization` or the identity headers. `:{n}`
                # bounds every value (mcp-authz cuts `tool` and `method` first).
                access_log:
                  - name: envoy.access_loggers.stdout
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                      log_format:
                        json_format:
                          time: \"%START_TIME%\"
                          request_id: \"%REQ(X-REQUEST-ID):{n}%\"
                          method: \"%REQ(:METHOD)%\"
                          path: \"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):{n}%\"
                          status: \"%RESPONSE_CODE%\"
                          duration_ms: \"%DURATION%\""
    );
    for key in [
        "user", "service", "surface", "server", "method", "tool", "decision", "reason", "policies",
    ] {
        let name = if key == "method" { "mcp_method" } else { key };
        let _ = writeln!(
            out,
            "                          {name}: \"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:{key}):{n}%\""
        );
    }
}

fn cors(out: &mut String, cfg: &Config) {
    if cfg.origins.allowed.is_empty() {
        let _ = writeln!(
            out,
            "                      # No browser origins are allowed (`origins.allowed` is empty):
                      # no CORS policy, and mcp-authz refuses any request with an Origin."
        );
        return;
    }
    let _ = writeln!(
        out,
        "                      # Browser-based MCP clients (MCP Inspector) send a CORS
                      # preflight without credentials: the cors filter answers
                      # it before ext_authz, for the configuration's
                      # `origins.allowed` (mcp-authz checks `Origin` on every
                      # request). A client sending `Mcp-Param-*` headers needs
                      # each one listed in `allow_headers` (one per tool argument).
                      typed_per_filter_config:
                        envoy.filters.http.cors:
                          \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                          allow_origin_string_match:"
    );
    for o in &cfg.origins.allowed {
        let _ = writeln!(out, "                            - exact: {o}");
    }
    let _ = writeln!(
        out,
        "                          allow_methods: \"POST, GET, DELETE, OPTIONS\"
                          allow_headers: \"authorization, content-type, accept, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name, last-event-id\"
                          expose_headers: \"mcp-session-id, www-authenticate\"
                          max_age: \"600\"
                          # A preflight from any other origin gets no CORS
                          # headers: it goes on to ext_authz, which refuses it."
    );
}

fn http_filters(out: &mut String, cfg: &Config, d: &Deployment) {
    let _ = writeln!(
        out,
        "                http_filters:
                  # Before ext_authz: a CORS preflight carries no credentials.
                  - name: envoy.filters.http.cors
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      grpc_service:
                        envoy_grpc: {{ cluster_name: mcp_authz }}
                        timeout: {}
                      # Fail closed, and make an outage (503) distinguishable
                      # from a policy deny (403, Envoy's default on error).
                      failure_mode_allow: false
                      status_on_error: {{ code: ServiceUnavailable }}
                      # mcp-authz reads the JSON-RPC body (method, tool, arguments)
                      # and refuses (413) a body it did not receive whole. The
                      # limit is mcp-authz's `limits.max_body_bytes`.
                      with_request_body:
                        max_request_bytes: {}
                        allow_partial_message: true
                        pack_as_bytes: true
                      include_peer_certificate: true
                  # After ext_authz, on MCP routes: mcp-authz sees each
                  # response's headers, binds an upstream `Mcp-Session-Id`
                  # to the caller and, for list requests, filters the body
                  # (it switches the body mode to STREAMED itself). The
                  # caller reaches ext_proc only through ext_authz's dynamic
                  # metadata (sealed by mcp-authz), never through headers.
                  # Off by default, on for each MCP route: a request Envoy
                  # refuses before routing (a header with an underscore) gets
                  # its 400 without waiting on ext_proc.
                  - name: envoy.filters.http.ext_proc
                    disabled: true
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      grpc_service:
                        envoy_grpc: {{ cluster_name: mcp_authz }}
                        timeout: {}
                      failure_mode_allow: false
                      # An mcp-authz outage is a 503 here too, as for ext_authz.
                      status_on_error: {{ code: ServiceUnavailable }}
                      message_timeout: {}
                      allow_mode_override: true
                      processing_mode:
                        request_header_mode: SKIP
                        response_header_mode: SEND
                        request_body_mode: NONE
                        response_body_mode: NONE
                        request_trailer_mode: SKIP
                        response_trailer_mode: SKIP
                      metadata_options:
                        forwarding_namespaces:
                          untyped: [envoy.filters.http.ext_authz]
                  - name: envoy.filters.http.router
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
",
        secs(d.authz_timeout),
        cfg.limits.max_body_bytes,
        secs(d.authz_timeout * 2),
        secs(d.authz_timeout * 2),
    );
}

fn cluster_section(out: &mut String, d: &Deployment, clusters: &[Cluster]) {
    let _ = writeln!(out, "  clusters:");
    static_cluster(out, "mcp_authz_public", &d.authz_public, false);
    // A Service name (standalone mcp-authz) needs DNS; an IP or a socket does not.
    let authz_type = match &d.authz_grpc {
        AuthzAddress::Tcp(e) if e.host.parse::<std::net::IpAddr>().is_err() => "STRICT_DNS",
        _ => "STATIC",
    };
    let _ = writeln!(
        out,
        "    - name: mcp_authz
      type: {authz_type}
      connect_timeout: 0.25s
      # gRPC needs HTTP/2: without it every Check fails and every request is denied.
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {{}}
      load_assignment:
        cluster_name: mcp_authz
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:"
    );
    match &d.authz_grpc {
        AuthzAddress::Tcp(e) => {
            let _ = writeln!(out, "                    socket_address: {}", socket(e));
        }
        AuthzAddress::Unix(path) => {
            let _ = writeln!(out, "                    pipe: {{ path: {path} }}");
        }
    }
    for c in clusters {
        static_cluster(out, &c.name, &c.endpoint, c.tls);
    }
}

fn static_cluster(out: &mut String, name: &str, e: &Endpoint, tls: bool) {
    let ip = e.host.parse::<std::net::IpAddr>().is_ok();
    let _ = writeln!(
        out,
        "    - name: {name}
      type: {}
      connect_timeout: 0.25s",
        if ip { "STATIC" } else { "STRICT_DNS" }
    );
    if tls {
        let _ = writeln!(
            out,
            "      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: {}",
            e.host
        );
    }
    let _ = writeln!(
        out,
        "      load_assignment:
        cluster_name: {name}
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {}",
        socket(e)
    );
}
