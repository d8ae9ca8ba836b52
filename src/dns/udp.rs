//! The UDP query path: on each listen address, one thread per usable core, each with its own
//! `SO_REUSEPORT` socket, receiving, answering and sending in a plain loop, up to 32
//! datagrams per `recvmmsg`/`sendmmsg` call (nix's safe wrappers).
//!
//! Repeated questions are answered from a per-worker [`ResponseCache`].
//!
//! This replaces hickory-server's UDP handling (a task spawned per datagram, and channels
//! between the socket task and the handler) because that machinery, not the answer, was most
//! of the CPU per query (README "Performance"). The behaviour is the same: the bytes are
//! decided by [`respond`], which mirrors hickory's handling of raw requests, and the Knot
//! differential tests and malformed-input tests run over this path. TCP stays on
//! hickory-server. A worker never waits on anything but its socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use socket2::{Domain, Protocol as SocketProtocol, Socket, Type};
use tracing::debug;

use super::cache::ResponseCache;
use super::server::QueryCounts;
use crate::metrics::Metrics;
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

    /// Stops every worker once it has answered the datagrams already queued on its socket
    /// (at most [`DRAIN_BATCHES`] batches of them), and waits for them.
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

/// Datagrams received (and responses sent) per system call, at most.
const BATCH: usize = 32;

/// Most batches a stopping worker still answers from its socket's queue: more than a default
/// receive buffer holds, so queries already received are answered, while a flood that keeps
/// coming cannot hold up the shutdown.
const DRAIN_BATCHES: usize = 64;

/// How much nicer UDP workers are than the rest of the server: when the CPU is short, queries
/// yield to the check plane, which then gets three quarters of a saturated core. A query flood
/// may slow answers but must never delay a failover (README "The check plane at scale").
const WORKER_NICENESS: libc::c_int = 5;

/// Lowers the calling thread's priority by [`WORKER_NICENESS`] (nix offers no `setpriority`).
fn yield_to_checks() {
    // SAFETY: getpriority and setpriority take plain integers and touch no memory. On Linux the
    // nice value is per thread and `who = 0` means the calling thread (setpriority(2), NOTES);
    // raising it needs no privilege. (A nice of -1 reads like an error; then this thread is
    // merely set to 4 instead of -1 + 5.)
    let result = unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(
            libc::PRIO_PROCESS,
            0,
            current.saturating_add(WORKER_NICENESS).min(19),
        )
    };
    if result != 0 {
        debug!(error = %io::Error::last_os_error(), "cannot lower the UDP worker's priority");
    }
}

fn serve(socket: &UdpSocket, stop: &AtomicBool, cell: &SnapshotCell, metrics: &Metrics) {
    yield_to_checks();
    let fd = socket.as_raw_fd();
    let mut buffers = vec![[0u8; MAX_REQUEST]; BATCH];
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    // (buffer index, length, source) of each datagram of the batch.
    let mut received: Vec<(usize, usize, SockaddrStorage)> = Vec::with_capacity(BATCH);
    let mut responses: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut destinations: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    let mut cache = ResponseCache::default();
    let mut counts = QueryCounts::new("udp");
    let mut drained = 0;
    loop {
        // Wait for one datagram, then take whatever else is already queued; once stopping,
        // only take what is queued.
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            if drained == DRAIN_BATCHES {
                return;
            }
            drained += 1;
        }
        let wait = if stopping {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::MSG_WAITFORONE
        };
        received.clear();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(fd, &mut receive_headers, slices.iter_mut(), wait, None) {
                Ok(messages) => received.extend(
                    messages
                        .enumerate()
                        .filter_map(|(i, m)| Some((i, m.bytes, m.address?))),
                ),
                Err(Errno::EAGAIN) if stopping => return,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(error) => {
                    debug!(%error, "UDP receive failed");
                    continue;
                }
            }
        }

        let snapshot = cell.load_full();
        responses.clear();
        destinations.clear();
        for (index, length, address) in &received {
            let Some(source) = socket_addr(address) else {
                continue;
            };
            let started = Instant::now();
            let request = &buffers[*index][..*length];
            let Some(answered) = cache.respond(&snapshot, request, source) else {
                continue;
            };
            counts.count(metrics, answered.rcode, answered.qtype, started);
            responses.push(answered.bytes);
            destinations.push(Some(*address));
        }
        if responses.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = responses.iter().map(|r| [IoSlice::new(r)]).collect();
        let no_control: [ControlMessage<'_>; 0] = [];
        if let Err(error) = sendmmsg(
            fd,
            &mut send_headers,
            slices.iter(),
            &destinations,
            no_control,
            MsgFlags::empty(),
        ) {
            debug!(%error, "cannot send responses");
        }
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}
