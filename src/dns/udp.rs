//! The UDP query path: on each listen address, one thread per usable core, each with its own
//! `SO_REUSEPORT` socket, receiving, answering and sending in a plain loop.
//!
//! This replaces hickory-server's UDP handling (a task spawned per datagram, and channels
//! between the socket task and the handler) because that machinery, not the answer, was most
//! of the CPU per query (README "Performance"). The behaviour is the same: the bytes are
//! decided by [`respond`], which mirrors hickory's handling of raw requests, and the Knot
//! differential tests and malformed-input tests run over this path. TCP stays on
//! hickory-server. A worker never waits on anything but its socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SocketProtocol, Socket, Type};
use tracing::debug;

use super::server::{Protocol, respond};
use crate::metrics::{Metrics, QueryLabels};
use crate::snapshot::SnapshotCell;

/// Largest request read, as hickory-server reads them; the rest of a longer datagram is
/// discarded by the kernel.
const MAX_REQUEST: usize = 4096;

/// How often an idle worker looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The UDP workers of every listen address; [`Workers::stop`] ends them.
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Binds `threads` sockets on each address in `listen` (failing, with the address named,
    /// if any cannot be bound) and starts a worker on each.
    pub fn start(
        listen: &[SocketAddr],
        threads: usize,
        cell: SnapshotCell,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let mut sockets = Vec::new();
        for addr in listen {
            for _ in 0..threads.max(1) {
                let socket = bind(*addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                sockets.push(socket);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sockets
            .into_iter()
            .map(|socket| {
                let (stop, cell, metrics) =
                    (Arc::clone(&stop), Arc::clone(&cell), Arc::clone(&metrics));
                std::thread::Builder::new()
                    .name("dns-udp".into())
                    .spawn(move || serve(&socket, &stop, &cell, &metrics))
            })
            .collect::<io::Result<_>>()?;
        Ok(Self { stop, threads })
    }

    /// Stops every worker after the datagram it is answering, and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM,
        Some(SocketProtocol::UDP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(STOP_CHECK))?;
    Ok(socket)
}

fn serve(socket: &UdpSocket, stop: &AtomicBool, cell: &SnapshotCell, metrics: &Metrics) {
    let mut buffer = [0u8; MAX_REQUEST];
    while !stop.load(Ordering::Relaxed) {
        let (length, source) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(error) => {
                debug!(%error, "UDP receive failed");
                continue;
            }
        };
        let started = Instant::now();
        let snapshot = cell.load();
        let Some(answered) = respond(&snapshot, &buffer[..length], Protocol::Udp, source) else {
            continue;
        };
        if let Err(error) = socket.send_to(&answered.bytes, source) {
            debug!(%error, %source, "cannot send response");
        }
        let labels = QueryLabels {
            rcode: super::server::rcode_name(answered.rcode),
            qtype: answered.qtype.map_or("none", Into::into),
            transport: "udp",
        };
        metrics.queries.get_or_create(&labels).inc();
        metrics
            .response_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}
