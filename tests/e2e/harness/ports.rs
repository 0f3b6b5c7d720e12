//! Free TCP ports on 127.0.0.1 for the processes a test starts.

use std::net::TcpListener;

/// Returns a port that was free a moment ago: bind port 0, read it, release it.
///
/// Another process could take it before ours binds; the kernel hands out
/// ephemeral ports in a scattered order, so in practice this does not happen.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// `n` distinct free ports.
pub fn free_ports<const N: usize>() -> [u16; N] {
    // Hold every listener until all are picked so the kernel cannot repeat one.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}
