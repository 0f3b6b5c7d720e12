//! An in-process upstream that answers every request with what it received.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::Request;
use axum::response::Json;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// What the echo upstream saw, as it reports it in its JSON reply.
#[derive(Debug, Deserialize)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Every header as received, repeated headers as separate entries.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        super::header_values(&self.headers, name)
    }
}

/// The echo server; aborted on drop.
pub struct Echo {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    /// Binds a free port on 127.0.0.1 and serves in the current runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo");
        let port = listener.local_addr().expect("echo addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new().fallback(echo).with_state(Arc::clone(&hits));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("echo server");
        });
        Self { port, hits, task }
    }

    /// How many requests reached the upstream so far (counted on arrival,
    /// before the body is read).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(State(hits): State<Arc<AtomicUsize>>, req: Request<Body>) -> Json<Value> {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = to_bytes(body, 8 << 20).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    Json(json!({
        "method": parts.method.as_str(),
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}
