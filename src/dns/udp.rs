//! The UDP query path: on each listen address, one thread per usable core, each with its own
//! `SO_REUSEPORT` socket, receiving, answering and sending in a plain loop, up to 32
//! datagrams per `recvmmsg`/`sendmmsg` call (nix's safe wrappers).
//!
//! Each worker answers through its own [`Responder`] (fast path, memo, full path).
//!
//! This replaces hickory-server's UDP handling (a task spawned per datagram, and channels
//! between the socket task and the handler) because that machinery, not the answer, was most
//! of the CPU per query (README "Performance"). The behaviour is the same: the bytes are
//! decided by [`respond`](super::request::respond), which mirrors hickory's handling of raw
//! requests, and the Knot differential tests and malformed-input tests run over this path.
//! A worker never waits on anything but its socket.
//!
//! On a wildcard address (`0.0.0.0`, `::`) every answer leaves from the address its query was
//! sent to, learnt from `IP_PKTINFO`/`IPV6_PKTINFO`: the kernel would otherwise pick the
//! source by route, and a client drops an answer from an address it did not ask.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, RecvMsg, SockaddrStorage,
    recvmmsg, sendmmsg, setsockopt, sockopt,
};
use socket2::{Protocol as SocketProtocol, Type};
use tracing::{debug, warn};

use super::responder::Responder;
use super::rrl::{RateLimiter, Verdict, truncated};
use super::socket::Inherited;
use super::socket::socket_for;
use crate::metrics::QueryCounts;
use crate::metrics::{Metrics, ReasonLabels};
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
    /// if any cannot be bound), or shares among them the socket `inherited` holds for it, and
    /// starts a worker on each.
    pub fn start(
        listen: &[SocketAddr],
        inherited: &mut Inherited,
        threads: usize,
        cell: SnapshotCell,
        metrics: Arc<Metrics>,
        limiter: Option<Arc<RateLimiter>>,
    ) -> io::Result<Self> {
        let mut sockets = Vec::new();
        for addr in listen {
            let named =
                |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
            let handed = inherited.take_udp(*addr);
            for _ in 0..threads.max(1) {
                let socket = match &handed {
                    // Workers share it: each reads its own batches from the one queue.
                    Some(socket) => socket.try_clone().and_then(|socket| {
                        socket.set_read_timeout(Some(STOP_CHECK))?;
                        Ok(socket)
                    }),
                    None => bind(*addr),
                };
                sockets.push(socket.map_err(named)?);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sockets
            .into_iter()
            .map(|socket| {
                let (stop, cell, metrics) =
                    (Arc::clone(&stop), Arc::clone(&cell), Arc::clone(&metrics));
                let limiter = limiter.clone();
                std::thread::Builder::new()
                    .name("dns-udp".into())
                    .spawn(move || serve(&socket, &stop, &cell, &metrics, limiter.as_deref()))
            })
            .collect::<io::Result<_>>()?;
        Ok(Self { stop, threads })
    }

    /// Stops every worker once it has answered the datagrams already queued on its socket
    /// (at most `DRAIN_BATCHES` batches of them), and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket_for(addr, Type::DGRAM, SocketProtocol::UDP)?;
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

fn serve(
    socket: &UdpSocket,
    stop: &AtomicBool,
    cell: &SnapshotCell,
    metrics: &Metrics,
    limiter: Option<&RateLimiter>,
) {
    yield_to_checks();
    let dropped = metrics
        .rate_limited
        .get_or_create(&ReasonLabels { reason: "dropped" })
        .clone();
    let slipped = metrics
        .rate_limited
        .get_or_create(&ReasonLabels { reason: "slipped" })
        .clone();
    let mut limited = 0;
    let fd = socket.as_raw_fd();
    let arrivals = match socket.local_addr() {
        Ok(local) if local.ip().is_unspecified() => learn_arrivals(socket, local),
        _ => None,
    };
    let mut buffers = vec![[0u8; MAX_REQUEST]; BATCH];
    let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, arrivals.clone());
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut reply_from_headers =
        MultiHeaders::<SockaddrStorage>::preallocate(BATCH, arrivals.clone());
    // (buffer index, length, source, where it arrived) of each datagram of the batch.
    let mut received: Vec<(usize, usize, SockaddrStorage, Option<Arrival>)> =
        Vec::with_capacity(BATCH);
    let mut responses: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut destinations: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    let mut reply_from: Vec<Option<Arrival>> = Vec::with_capacity(BATCH);
    let mut responder = Responder::udp();
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
                Ok(messages) => received.extend(messages.enumerate().filter_map(|(i, m)| {
                    let arrival = arrivals.as_ref().and_then(|_| arrival(&m));
                    Some((i, m.bytes, m.address?, arrival))
                })),
                Err(Errno::EAGAIN) if stopping => return,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(error) => {
                    debug!(%error, "UDP receive failed");
                    continue;
                }
            }
        }
        if arrivals.is_some() && received.iter().any(|r| r.3.is_none()) {
            // The kernel shrank that slot's control buffer to what it wrote, and nix does not
            // restore it between calls (nix-rust/nix#2813): start again with full ones.
            receive_headers = MultiHeaders::preallocate(BATCH, arrivals.clone());
        }

        let snapshot = cell.load_full();
        let second = limiter.map_or(0, RateLimiter::second);
        responses.clear();
        destinations.clear();
        reply_from.clear();
        for (index, length, address, arrival) in &received {
            let Some(source) = socket_addr(address) else {
                continue;
            };
            let started = Instant::now();
            let request = &buffers[*index][..*length];
            let Some(answered) = responder.respond(&snapshot, request, source) else {
                continue;
            };
            let verdict = limiter.map_or(Verdict::Send, |l| {
                l.admit(source.ip(), second, &mut limited)
            });
            let bytes = match verdict {
                Verdict::Send => answered.bytes,
                Verdict::Slip => {
                    slipped.inc();
                    let Some(cut) = truncated(&answered.bytes) else {
                        continue;
                    };
                    cut
                }
                Verdict::Drop => {
                    dropped.inc();
                    continue;
                }
            };
            counts.count(metrics, answered.rcode, answered.qtype, started);
            responses.push(bytes);
            destinations.push(Some(*address));
            reply_from.push(*arrival);
        }
        let slices: Vec<[IoSlice<'_>; 1]> = responses.iter().map(|r| [IoSlice::new(r)]).collect();
        // nix's sendmmsg gives every message of a call the same control messages
        // (nix-rust/nix#1954), so each run of answers from one address is a call of its own.
        let mut start = 0;
        while start < slices.len() {
            let from = reply_from[start];
            let end = start
                + reply_from[start..]
                    .iter()
                    .take_while(|f| **f == from)
                    .count();
            let (slices, destinations) = (&slices[start..end], &destinations[start..end]);
            let sent = match from {
                None => send(fd, &mut send_headers, slices, destinations, &[]),
                Some(Arrival::V4(addr)) => {
                    // Index 0 lets routing choose the interface, as for any other reply.
                    let info = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from(addr).to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    let control = [ControlMessage::Ipv4PacketInfo(&info)];
                    send(fd, &mut reply_from_headers, slices, destinations, &control)
                }
                Some(Arrival::V6(addr, interface)) => {
                    // The interface stays: a link-local address means nothing without it.
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: addr.octets(),
                        },
                        ipi6_ifindex: interface,
                    };
                    let control = [ControlMessage::Ipv6PacketInfo(&info)];
                    send(fd, &mut reply_from_headers, slices, destinations, &control)
                }
            };
            if let Err(error) = sent {
                debug!(%error, "cannot send responses");
            }
            start = end;
        }
    }
}

/// Where a datagram arrived on a wildcard socket: the address (and, for IPv6, the interface)
/// its answer must leave from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    V4(Ipv4Addr),
    V6(Ipv6Addr, u32),
}

/// Asks the kernel to tell, with every datagram, the address it was sent to; returns the
/// control buffer one datagram needs for it, or None (answers then leave from the address
/// routing picks, which is right whenever the host has one address per route).
fn learn_arrivals(socket: &UdpSocket, local: SocketAddr) -> Option<Vec<u8>> {
    let (result, buffer) = match local {
        SocketAddr::V4(_) => (
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
            cmsg_space!(libc::in_pktinfo),
        ),
        SocketAddr::V6(_) => (
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
            cmsg_space!(libc::in6_pktinfo),
        ),
    };
    match result {
        Ok(()) => Some(buffer),
        Err(error) => {
            warn!(%local, %error, "cannot learn the address UDP queries arrive at; answers leave from the address routing picks");
            None
        }
    }
}

/// The address datagram `message` was sent to, from its packet-info control message.
fn arrival(message: &RecvMsg<'_, '_, SockaddrStorage>) -> Option<Arrival> {
    message.cmsgs().ok()?.find_map(|control| match control {
        ControlMessageOwned::Ipv4PacketInfo(info) => Some(Arrival::V4(Ipv4Addr::from(
            u32::from_be(info.ipi_spec_dst.s_addr),
        ))),
        ControlMessageOwned::Ipv6PacketInfo(info) => Some(Arrival::V6(
            Ipv6Addr::from(info.ipi6_addr.s6_addr),
            info.ipi6_ifindex,
        )),
        _ => None,
    })
}

fn send(
    fd: RawFd,
    headers: &mut MultiHeaders<SockaddrStorage>,
    slices: &[[IoSlice<'_>; 1]],
    destinations: &[Option<SockaddrStorage>],
    control: &[ControlMessage<'_>],
) -> nix::Result<()> {
    sendmmsg(
        fd,
        headers,
        slices,
        destinations,
        control,
        MsgFlags::empty(),
    )
    .map(drop)
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}
