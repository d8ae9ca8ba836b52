//! TCP sockets kept from one check to the next.
//!
//! A TCP check that opens a socket, connects and closes it pays the kernel for `socket()` and
//! `close()` on top of the connect itself. Linux lets a TCP socket be disconnected and reused:
//! `connect()` with `AF_UNSPEC` aborts the connection with a reset, exactly as the zero-linger
//! close before it did, releases the source address and port, and leaves the socket as if new.
//! So a finished check hands its socket back to a pool. A check cut short by its timeout drops
//! its socket instead (closed with a reset), so no half-open connection is reused.
//!
//! How an attempt ended is asked by connecting again (see `status`), which also disconnects
//! a refused socket: a refused check to a member on this host costs two system calls in all.
//!
//! A socket is registered with the reactor for one connection attempt only, after `connect`,
//! and only if the attempt has not ended already (to a member on this host it usually has):
//! tokio keeps a socket's "closed" readiness forever once it has seen it (closed is final for a
//! socket used once), so a socket registered across attempts would look ready from its first
//! disconnect on, and a check waiting for a connection that hangs would never wait.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Idle sockets kept per address family; more are closed. Checks finish in a round trip, so
/// even 20,000 checks a second keep only a handful in flight at once.
const MAX_IDLE: usize = 256;

/// Unconnected TCP sockets, ready for the next check.
#[derive(Debug, Default)]
pub struct SocketPool {
    /// Idle IPv4 and IPv6 sockets.
    idle: Mutex<[Vec<Socket>; 2]>,
}

impl SocketPool {
    /// Starts a connection to `target`: over already when the kernel settled it inside
    /// `connect` (a member on this host), else [`Connecting`] to wait for in a task, inside
    /// the tokio runtime (a connection in progress registers with its reactor).
    pub fn start(self: &Arc<Self>, target: SocketAddr) -> Start {
        let socket = match self.take(target) {
            Some(socket) => socket,
            None => match fresh(target) {
                Ok(socket) => socket,
                Err(error) => return Start::Over(Err(error)),
            },
        };
        let address = SockAddr::from(target);
        let attempt = match socket.connect(&address) {
            Ok(()) => Attempt::Accepted(socket),
            // To a member on this host the attempt has usually ended inside `connect` already
            // (the kernel runs both ends of the handshake, or the refusal, before returning):
            // then there is nothing to wait for, and registering with the reactor would cost
            // more than the check.
            Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {
                match status(&socket, &address) {
                    Some(Ok(())) => Attempt::Accepted(socket),
                    Some(Err(error)) => Attempt::Failed(socket, error),
                    None => {
                        return Start::Connecting(Connecting {
                            socket,
                            target: address,
                            pool: Arc::clone(self),
                        });
                    }
                }
            }
            Err(error) => Attempt::Failed(socket, error),
        };
        Start::Over(self.settle(&address, attempt))
    }

    /// Connects to `target` and disconnects at once: `Ok` when the connection was accepted.
    /// Checks take the two steps apart (see `Probe::begin`); tests take them together.
    #[cfg(test)]
    async fn connect(self: &Arc<Self>, target: SocketAddr) -> io::Result<()> {
        match self.start(target) {
            Start::Over(outcome) => outcome,
            Start::Connecting(connecting) => connecting.finish().await,
        }
    }

    /// Takes back an attempt's socket (to `target`) where it may be reused: `Ok` when the
    /// connection was accepted.
    fn settle(&self, target: &SockAddr, attempt: Attempt) -> io::Result<()> {
        match attempt {
            Attempt::Accepted(socket) => {
                // One whose disconnect fails is closed (by the drop) rather than reused.
                if disconnect(&socket).is_ok() {
                    self.give_back(target, socket);
                }
                Ok(())
            }
            Attempt::Failed(socket, error) => {
                self.give_back(target, socket);
                Err(error)
            }
            // Closed by the drop: a socket in an unknown state is never reused.
            Attempt::Unsettled(error) => Err(error),
        }
    }

    /// How many sockets are idle, for tests.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().iter().map(Vec::len).sum()
    }

    fn take(&self, target: SocketAddr) -> Option<Socket> {
        self.lock()[usize::from(target.is_ipv6())].pop()
    }

    fn give_back(&self, target: &SockAddr, socket: Socket) {
        let mut idle = self.lock();
        let idle = &mut idle[usize::from(target.is_ipv6())];
        if idle.len() < MAX_IDLE {
            idle.push(socket);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Vec<Socket>; 2]> {
        // A panic while holding the lock leaves nothing half-done: the lists stay valid.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A new non-blocking socket for `target`'s family that closes with a reset, as HAProxy's
/// checks do: a graceful close would leave the checker a TIME_WAIT socket for a minute per
/// check (at 20,000 checks/s, nine times what Linux keeps on a 24 GB machine) and cost both
/// hosts four packets instead of one.
fn fresh(target: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_linger(Some(Duration::ZERO))?;
    Ok(socket)
}

/// How one connection attempt ended, and what it left of its socket.
enum Attempt {
    /// Accepted: the socket is connected.
    Accepted(Socket),
    /// Refused or failed otherwise: the kernel has left the socket unconnected, ready for reuse
    /// (a failed `connect` undoes itself, and one that reports the failure of an attempt in
    /// progress disconnects the socket first: `__inet_stream_connect`).
    Failed(Socket, io::Error),
    /// The socket's state is unknown (its registration or wait failed): it must not be reused.
    Unsettled(io::Error),
}

/// How a check's connection began.
pub enum Start {
    /// Over: accepted (`Ok`) or failed, and the socket back in the pool.
    Over(io::Result<()>),
    /// Still being set up.
    Connecting(Connecting),
}

/// A connection attempt still in progress. Dropped, it closes its socket (with a reset), so a
/// check cut short by its timeout never leaves a half-open connection in the pool.
#[derive(Debug)]
pub struct Connecting {
    socket: Socket,
    target: SockAddr,
    pool: Arc<SocketPool>,
}

impl Connecting {
    /// Waits until the connection is set up or fails: `Ok` when it was accepted.
    pub async fn finish(self) -> io::Result<()> {
        let Connecting {
            socket,
            target,
            pool,
        } = self;
        // SAFETY: a `Socket` owns its descriptor, which stays open until the `Socket` is
        // dropped; the `AsyncFd` deregisters before it drops or hands back the `Socket`, and
        // `as_raw_fd` never changes.
        let attempt = match unsafe { AsyncFd::register_with_interest(socket, Interest::WRITABLE) } {
            Ok(waiting) => match wait_for_connection(&waiting, &target).await {
                Ok(Ok(())) => Attempt::Accepted(waiting.into_inner()),
                Ok(Err(error)) => Attempt::Failed(waiting.into_inner(), error),
                Err(error) => Attempt::Unsettled(error),
            },
            Err(error) => Attempt::Unsettled(error.into()),
        };
        pool.settle(&target, attempt)
    }
}

/// Waits until the connection in progress on `socket` is set up or fails: how it ended, or
/// `Err` when the wait itself failed and the attempt's state is unknown.
async fn wait_for_connection(
    socket: &AsyncFd<Socket>,
    target: &SockAddr,
) -> io::Result<io::Result<()>> {
    loop {
        let mut ready = socket.writable().await?;
        // Readiness is a hint: the socket's own state says whether the attempt ended.
        if let Some(ended) = status(socket.get_ref(), target) {
            return Ok(ended);
        }
        if ready.ready().is_write_closed() {
            // Reported closed, yet still connecting: never wait (or spin) on it.
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        ready.clear_ready();
    }
}

/// How the connection attempt on `socket` to `target` ended, or `None` while it is still in
/// progress. Asked by connecting again: Linux answers with 0 (or `EISCONN`) once connected,
/// `EALREADY` while connecting, and the attempt's error once it failed, disconnecting the
/// socket on the way. One system call instead of two (`SO_ERROR`, then `getpeername` to tell
/// "connected" from "connecting"), and none to disconnect after a refusal, the common failure:
/// 0.6 us less per refused check in a loop of a million.
fn status(socket: &Socket, target: &SockAddr) -> Option<io::Result<()>> {
    match socket.connect(target) {
        Ok(()) => Some(Ok(())),
        Err(error) => match error.raw_os_error() {
            Some(libc::EISCONN) => Some(Ok(())),
            Some(libc::EALREADY | libc::EINPROGRESS) => None,
            _ => Some(Err(error)),
        },
    }
}

/// Aborts `socket`'s connection, if any (a reset, since its linger is zero), and makes it
/// unconnected again.
fn disconnect(socket: &Socket) -> io::Result<()> {
    let length = size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: all-zero storage is an initialised `sockaddr` of family 0, `AF_UNSPEC`, for any
    // length up to the storage's size. socket2 has no safe constructor for that family.
    let unspecified = unsafe { SockAddr::new(SockAddrStorage::zeroed(), length) };
    socket.connect(&unspecified)
}

/// A port with nothing listening on IPv4 address `ip`, for tests: bound to reserve it (keep
/// the listener while the port is used), never listened on, so connections are refused.
#[cfg(test)]
pub(crate) fn closed_port(ip: &str) -> (std::net::TcpListener, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = format!("{ip}:0").parse().expect("addr");
    socket.bind(&addr.into()).expect("bind");
    let addr = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    (std::net::TcpListener::from(socket), addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_socket_serves_accepted_and_refused_checks_in_turn() {
        let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr");
        let (_reserved, closed) = closed_port("127.0.0.2");
        live.set_nonblocking(true).expect("nonblocking");
        let pool = Arc::new(SocketPool::default());
        for round in 0..200 {
            assert!(pool.connect(live_addr).await.is_ok(), "round {round}: live");
            let refused = pool.connect(closed).await.expect_err("closed port");
            assert_eq!(
                refused.kind(),
                io::ErrorKind::ConnectionRefused,
                "round {round}"
            );
            // Accept (and drop) what the kernel queued, so the backlog never fills.
            while live.accept().is_ok() {}
        }
        assert_eq!(pool.idle(), 1, "every check reused the first socket");
    }

    #[tokio::test]
    async fn each_address_family_keeps_its_own_sockets() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let v6 = std::net::TcpListener::bind("[::1]:0").expect("bind v6");
        let pool = Arc::new(SocketPool::default());
        for _ in 0..3 {
            for listener in [&v4, &v6] {
                let target = listener.local_addr().expect("addr");
                pool.connect(target).await.expect("accepted");
                let (_, peer) = listener.accept().expect("queued");
                assert_eq!(peer.is_ipv6(), target.is_ipv6());
            }
        }
        assert_eq!(pool.idle(), 2, "one socket per family, each reused");
    }

    #[tokio::test]
    async fn an_idle_socket_holds_no_address_or_port() {
        // Reconnected elsewhere, a socket that kept its source address would send from the
        // first route's address; one that kept its port would hold it for nothing.
        let pool = Arc::new(SocketPool::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        pool.connect(listener.local_addr().expect("addr"))
            .await
            .expect("accepted");
        let (_, client) = listener.accept().expect("queued");
        let idle = pool
            .take("127.0.0.1:1".parse().expect("addr"))
            .expect("kept");
        let local = idle.local_addr().expect("local").as_socket();
        assert_eq!(local.map(|local| local.ip()), Some([0, 0, 0, 0].into()));
        // getsockname still shows the old port (on 0.0.0.0); what matters is that it is free
        // again. A socket still holding it would keep any address from binding that port;
        // another loopback address than 127.0.0.1 is asked, where other tests' clients (whose
        // ephemeral ports may meet this one) never bind.
        std::net::TcpListener::bind(("127.201.7.9", client.port())).expect("the port was released");
    }

    #[tokio::test]
    async fn a_refused_check_leaves_its_socket_unconnected() {
        // Refused, a socket keeps the source address its connect picked until it is
        // disconnected; reused so, it would send from that address to any other member.
        let (_reserved, closed) = closed_port("127.0.0.3");
        let pool = Arc::new(SocketPool::default());
        let refused = pool.connect(closed).await.expect_err("closed port");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let idle = pool.take(closed).expect("kept");
        let local = idle.local_addr().expect("local").as_socket();
        assert_eq!(local.map(|local| local.ip()), Some([0, 0, 0, 0].into()));
    }

    /// Whether some IPv4 socket on this host is in SYN-SENT to local port `port` (from
    /// `/proc/net/tcp`: `rem_address` is `hex-ip:hex-port`, `st` 02 is SYN-SENT).
    fn syn_sent_to(port: u16) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let remote = format!(":{port:04X}");
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[2].ends_with(&remote) && fields[3] == "02"
        })
    }

    /// A listener whose accept queue is full: it drops new SYNs, so a connect to it hangs.
    fn full_listener() -> (Socket, SocketAddr, std::net::TcpStream) {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        socket.bind(&addr.into()).expect("bind");
        socket.listen(0).expect("listen");
        let full = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        let queued = std::net::TcpStream::connect(full).expect("queued");
        (socket, full, queued)
    }

    #[test]
    fn a_hanging_connect_on_a_reused_socket_waits_for_its_timeout() {
        // Between two checks the reactor sees the idle socket closed. Were that remembered, the
        // next check of a member that hangs would find the socket "ready" over and over and
        // spin inside one poll, where its timeout can never fire. So the check runs on a thread
        // of its own, and the test gives up on it after a deadline.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let outcome = runtime.block_on(async {
                let (_listener, full, _queued) = full_listener();
                let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let pool = Arc::new(SocketPool::default());
                let refused = {
                    let (_reserved, closed) = closed_port("127.0.0.1");
                    pool.connect(closed).await
                };
                pool.connect(live.local_addr().expect("addr")).await?;
                // One turn of the reactor, so it has seen whatever the disconnect left.
                tokio::task::yield_now().await;
                let hung = tokio::time::timeout(Duration::from_millis(200), pool.connect(full));
                Ok::<_, io::Error>((refused.is_err(), hung.await.is_err()))
            });
            let _ = done.send(outcome.map_err(|e| e.to_string()));
        });
        let outcome = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the hanging check never ended: it spun instead of waiting");
        assert_eq!(
            outcome,
            Ok((true, true)),
            "refused, then cut short by the timeout"
        );
    }

    #[tokio::test]
    async fn a_connection_set_up_after_a_wait_counts() {
        // The SYN is dropped while the queue is full; once it has room, the client's
        // retransmission (after about a second) gets through: the check waits for it.
        let (listener, full, _queued) = full_listener();
        let pool = Arc::new(SocketPool::default());
        let check = tokio::spawn(async move {
            let outcome = pool.connect(full).await;
            (outcome.map_err(|e| e.to_string()), pool.idle())
        });
        let port = full.port();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !syn_sent_to(port) {
            assert!(
                std::time::Instant::now() < deadline,
                "no SYN sent to {full}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await; // polling, with a deadline
        }
        let (_first, _) = listener.accept().expect("the queued connection");
        let (outcome, idle) = tokio::time::timeout(Duration::from_secs(10), check)
            .await
            .expect("retransmitted within 10 s")
            .expect("task");
        assert_eq!(outcome, Ok(()));
        assert_eq!(idle, 1, "the socket went back to the pool");
    }

    #[tokio::test]
    async fn a_check_cut_short_does_not_return_its_socket() {
        let (_listener, full, _queued) = full_listener();
        let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let pool = Arc::new(SocketPool::default());
        // The socket comes to the hanging check still marked ready by the check before.
        pool.connect(live.local_addr().expect("addr"))
            .await
            .expect("accepted");
        let cut = tokio::time::timeout(Duration::from_millis(100), pool.connect(full)).await;
        assert!(cut.is_err(), "the connect should hang: {cut:?}");
        assert_eq!(
            pool.idle(),
            0,
            "a socket still connecting must not be reused"
        );
    }
}
