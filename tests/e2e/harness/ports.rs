//! Free TCP ports on 127.0.0.1 for the processes a test starts.
//!
//! All e2e tests run in one process, many at once: a port handed out once is
//! never handed out again in this process, so two tests (or two calls of one
//! test) cannot be given the same port between its release and its use.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{LazyLock, Mutex};

/// Every port handed out so far in this test process.
static GIVEN: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A port that was free a moment ago and was never handed out before.
pub fn free_port() -> u16 {
    let [p] = free_ports();
    p
}

/// `n` distinct free ports, none handed out before in this process.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Hold every listener until all are picked so the kernel cannot repeat one.
    let mut held = Vec::new();
    let mut picked = Vec::with_capacity(N);
    while picked.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if given.insert(port) {
            picked.push(port);
        }
        held.push(listener);
    }
    std::array::from_fn(|i| picked[i])
}
