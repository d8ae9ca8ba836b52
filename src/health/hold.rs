//! Held connections (`hold = true`): one connection kept open to each such member, so that the
//! moment its process dies — its kernel closes the connection with a FIN or a reset — the
//! member is put in doubt and checked at once, instead of at its next periodic check.
//! ZooKeeper's ephemeral nodes work the same way: a session that drops is seen at once.
//!
//! For a tcp check the held connection is idle. For an http check it is an HTTP/1.1
//! keep-alive connection ([`HttpHold`]) that the periodic checks send their requests over, so
//! a member sees one connection, busy once an interval, as from any keep-alive client — not an
//! idle socket beside a fresh connection per check (which servers close after their header
//! timeout).
//!
//! A hold only ever *triggers* a check; the checks and `fall` decide. A member that closes idle
//! connections, or restarted quickly, passes that check and its hold is reopened. A hold that
//! ends within [`SHORT_HOLD`] is reopened after a wait that doubles up to the interval, so a
//! member that closes every connection at once (one at its connection limit, say) is checked
//! about as often as without a hold, not in a loop. A hold that cannot be opened at all waits an
//! interval: the periodic checks decide meanwhile. The connection carries TCP keepalive and
//! `TCP_USER_TIMEOUT` from the check's timing, so a host that vanished without a FIN is found by
//! the periodic checks as without a hold, never later.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tracing::debug;

/// A hold that ended sooner than this after it opened counts as short: the next waits longer.
pub const SHORT_HOLD: Duration = Duration::from_secs(1);

/// What a member's hold connects to.
#[derive(Debug, Clone)]
pub enum Target {
    /// An idle TCP connection (tcp checks).
    Tcp(SocketAddr),
    /// A keep-alive HTTP connection the checks use (http checks).
    Http(Arc<HttpHold>),
}

/// The held keep-alive connection of an http check's member, shared by the hold's task (which
/// opens it and sees it end) and the checks (which send their requests over it).
#[derive(Debug)]
pub struct HttpHold {
    /// Where to connect.
    pub target: SocketAddr,
    /// TLS for https checks: the configuration and the name to send and verify.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// The connection's request sender while it is open and no check is using it.
    sender: Mutex<Option<SendRequest<Empty<Bytes>>>>,
}

impl HttpHold {
    /// A hold of `target`, over TLS when `tls` says so.
    pub fn new(
        target: SocketAddr,
        tls: Option<(
            Arc<rustls::ClientConfig>,
            rustls::pki_types::ServerName<'static>,
        )>,
    ) -> Self {
        Self {
            target,
            tls,
            sender: Mutex::new(None),
        }
    }

    /// The held connection for one request, if it is open and ready; give it back with
    /// [`HttpHold::give_back`] once the response has been read whole. A sender dropped instead
    /// (the check timed out, the body was too long) closes the connection, and the hold
    /// opens another.
    pub fn take(&self) -> Option<SendRequest<Empty<Bytes>>> {
        let mut slot = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        slot.take().filter(SendRequest::is_ready)
    }

    /// Returns the connection taken by [`HttpHold::take`] for the next check.
    pub fn give_back(&self, sender: SendRequest<Empty<Bytes>>) {
        if sender.is_ready() {
            *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        }
    }

    fn set(&self, sender: Option<SendRequest<Empty<Bytes>>>) {
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = sender;
    }
}

/// Holds a connection to `target` for probe `id` for as long as the task runs, sending `id`
/// to `doubts` whenever the connection ends.
pub(super) async fn hold(
    id: u64,
    target: Target,
    doubts: UnboundedSender<u64>,
    interval: Duration,
    timeout: Duration,
    open: Arc<AtomicBool>,
) {
    let first_wait = interval.min(SHORT_HOLD);
    let mut wait = first_wait;
    loop {
        let opened = Instant::now();
        let held = match &target {
            Target::Tcp(addr) => hold_tcp(*addr, interval, timeout, &open).await,
            Target::Http(http) => hold_http(http, interval, timeout, &open).await,
        };
        open.store(false, Ordering::Relaxed);
        if !held {
            // Not held now (refused, timed out, out of descriptors): the periodic checks decide.
            tokio::time::sleep(interval).await;
            continue;
        }
        debug!(target = ?target_addr(&target), "held connection ended: checking at once");
        if doubts.send(id).is_err() {
            return;
        }
        if opened.elapsed() < SHORT_HOLD {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(interval.max(first_wait));
        } else {
            wait = first_wait;
        }
    }
}

fn target_addr(target: &Target) -> SocketAddr {
    match target {
        Target::Tcp(addr) => *addr,
        Target::Http(http) => http.target,
    }
}

/// Holds an idle connection until it ends; false when it could not be opened.
async fn hold_tcp(
    target: SocketAddr,
    interval: Duration,
    timeout: Duration,
    open: &AtomicBool,
) -> bool {
    let Ok(Ok(mut stream)) = tokio::time::timeout(timeout, TcpStream::connect(target)).await else {
        return false;
    };
    tune(&stream, interval, timeout);
    open.store(true, Ordering::Relaxed);
    let mut discard = [0u8; 512];
    // Whatever the member sends is dropped; its end or an error ends the hold.
    while matches!(stream.read(&mut discard).await, Ok(n) if n > 0) {}
    true
}

/// Holds a keep-alive HTTP connection, lent to the checks, until it ends; false when it could
/// not be opened.
async fn hold_http(
    http: &HttpHold,
    interval: Duration,
    timeout: Duration,
    open: &AtomicBool,
) -> bool {
    let opening = async {
        let stream = TcpStream::connect(http.target).await.ok()?;
        tune(&stream, interval, timeout);
        match &http.tls {
            None => handshake(http, stream).await,
            Some((config, name)) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), stream)
                    .await
                    .ok()?;
                handshake(http, tls).await
            }
        }
    };
    let Ok(Some(connection)) = tokio::time::timeout(timeout, opening).await else {
        return false;
    };
    // Runs the connection (the checks' requests go through it) until either side closes it.
    open.store(true, Ordering::Relaxed);
    connection.await;
    http.set(None);
    true
}

/// A running HTTP/1.1 client connection: done when either side closes it.
type Connection = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// HTTP/1.1 over `io`: its request sender is lent to the checks; the connection is returned,
/// to be run until it ends.
async fn handshake<Io>(http: &HttpHold, io: Io) -> Option<Connection>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .ok()?;
    http.set(Some(sender));
    Some(Box::pin(async move {
        let _ = connection.await;
    }))
}

/// TCP keepalive probes from the check's timing, and `TCP_USER_TIMEOUT`, so a dead peer
/// that sent nothing ends the hold too (the periodic checks find it first in any case).
fn tune(stream: &TcpStream, interval: Duration, timeout: Duration) {
    let socket = socket2::SockRef::from(stream);
    let idle = interval.max(Duration::from_secs(1));
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(idle)
        .with_retries(2);
    let _ = socket.set_tcp_keepalive(&keepalive);
    let _ = socket.set_tcp_user_timeout(Some(interval + timeout));
}
