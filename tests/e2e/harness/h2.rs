//! Plain HTTP/2 requests (h2c, prior knowledge) to Envoy's listener.
//!
//! The crate's reqwest is built without HTTP/2; tonic's `Channel` is an h2c
//! client that sends any `http::Request`, so it carries these requests.

use std::future::poll_fn;

use tonic::codegen::Service;
use tonic::transport::Channel;

use super::http::Reply;

/// Sends one HTTP/2 request; `Err` carries the transport error (e.g. a reset stream).
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let mut channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("h2c connect to envoy");
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(tonic::body::Body::new(axum::body::Body::from(body)))
        .expect("request");
    poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let resp = channel.call(req).await.map_err(|e| format!("{e:?}"))?;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(axum::body::Body::new(body), 8 << 20)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
