//! DNS serving: the listeners (this module), the UDP workers and TCP connections, the fast path
//! and the memo in front of request handling, and the pure answer function behind it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tracing::info;

use crate::metrics::Metrics;
use crate::snapshot::SnapshotCell;

pub mod acl;
pub mod answer;
pub mod cache;
pub mod compose;
pub mod fast;
pub mod journal;
pub mod request;
pub mod responder;
pub mod rrl;
pub mod secondaries;
pub mod socket;
pub mod tcp;
pub mod transfer;
pub mod tsig;
pub mod udp;
pub mod wire;

/// The DNS listeners: TCP and UDP, each on our own loops.
pub struct Listeners {
    tcp: tcp::Tcp,
    udp: udp::Workers,
}

impl Listeners {
    /// Stops accepting, answers what has been received, and returns when done.
    pub async fn shutdown(self) {
        let Listeners { tcp, udp } = self;
        let stopped = tokio::task::spawn_blocking(move || udp.stop());
        tcp.shutdown().await;
        let _ = stopped.await;
    }
}

/// Binds UDP and TCP on every address and starts serving from `cell`. Fails, naming the
/// address, if any cannot be bound, so a misconfigured server never half-starts.
pub async fn serve(
    listen: &[SocketAddr],
    inherited: &mut socket::Inherited,
    tcp_limits: tcp::Limits,
    limiter: Option<rrl::RateLimiter>,
    cell: SnapshotCell,
    metrics: Arc<Metrics>,
) -> io::Result<Listeners> {
    let mut listeners = Vec::with_capacity(listen.len());
    for addr in listen {
        let listener = match inherited.take_tcp(*addr) {
            Some(listener) => tcp::adopt(listener),
            None => tcp::bind(*addr),
        }
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(listener);
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let udp = udp::Workers::start(
        listen,
        inherited,
        threads,
        Arc::clone(&cell),
        Arc::clone(&metrics),
        limiter.map(Arc::new),
    )?;
    let tcp = tcp::Tcp::start(listeners, tcp_limits, cell, metrics);
    for addr in listen {
        info!(%addr, "serving DNS on {addr} over UDP and TCP");
    }
    Ok(Listeners { tcp, udp })
}
