//! DNS over TCP: messages behind a two-byte length (RFC 1035 §4.2.2), any number per
//! connection, answered in the order they arrive (RFC 7766 §6.2.1.1). A connection is closed
//! when no message begins for the idle timeout, when a message that has begun does not arrive
//! whole within the I/O timeout (counted from its first byte, so a client trickling a byte at
//! a time cannot hold it), or when a response cannot be written within the I/O timeout.
//!
//! At most `tcp_max_clients` connections are open at once; a new one beyond that closes the
//! oldest idle one (RFC 7766 §6.2.3), or is closed itself when every open one is mid-message.
//! So a flood of clients costs a bounded number of descriptors and never takes those the
//! health checks need.
//!
//! Written by hand rather than served by hickory-server, whose graceful shutdown drops its
//! open connections at once: queries a client had already sent went unanswered (a test saw
//! it under load). Here a shutdown stops accepting, then every connection, including those
//! the kernel had completed but nobody had accepted yet, answers each whole message it has
//! already received, and closes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Protocol as SocketProtocol, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::responder::Responder;
use super::socket::socket_for;
use super::transfer::{self, Outcome};
use crate::connections::{Admitted, Connections, Entry, after_failed_accept};
use crate::metrics::count_query;
use crate::metrics::{Metrics, ReasonLabels};
use crate::snapshot::SnapshotCell;

/// Messages of a zone transfer made ahead of the client (about 16 KiB each).
const TRANSFER_QUEUE: usize = 4;

/// Bounds on what a shutdown still serves, so that clients that keep connecting or sending
/// cannot hold it up: connections taken from the backlog (Linux's default `somaxconn`), and
/// reads per connection (each up to a buffer's worth of messages).
const DRAIN_CONNECTIONS: usize = 4096;
const DRAIN_READS: usize = 64;

/// The TCP listeners and their connections, until [`Tcp::shutdown`].
pub struct Tcp {
    stop: watch::Sender<bool>,
    listeners: JoinSet<()>,
}

/// The limits every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a message to begin.
    pub idle_timeout: Duration,
    /// Longest a message may take to arrive from its first byte, and a response to be written.
    pub io_timeout: Duration,
    /// Most connections open at once.
    pub max_clients: usize,
    /// Most zone transfers running at once.
    pub transfers_out: usize,
}

/// What every connection needs.
struct Shared {
    cell: SnapshotCell,
    metrics: Arc<Metrics>,
    limits: Limits,
    open: Arc<Connections>,
    /// Permits for the zone transfers running (`transfers_out`).
    transfers: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    /// Registers a connection just accepted, making room for it; None when it must be closed.
    fn admit(&self, peer: SocketAddr) -> Option<Entry> {
        let Some((entry, admitted)) = self.open.admit() else {
            self.count_dropped("refused");
            debug!(%peer, "closing a new TCP connection: every connection is busy");
            return None;
        };
        if admitted == Admitted::Evicted {
            self.count_dropped("evicted");
        }
        Some(entry)
    }

    fn count_dropped(&self, reason: &'static str) {
        self.metrics
            .tcp_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

impl Tcp {
    /// Starts accepting on every listener.
    pub fn start(
        listeners: Vec<TcpListener>,
        limits: Limits,
        cell: SnapshotCell,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            cell,
            metrics,
            limits,
            open: Connections::new(limits.max_clients),
            transfers: Arc::new(tokio::sync::Semaphore::new(limits.transfers_out)),
        });
        let mut tasks = JoinSet::new();
        for listener in listeners {
            tasks.spawn(accept(listener, Arc::clone(&shared), stopping.clone()));
        }
        Self {
            stop,
            listeners: tasks,
        }
    }

    /// Stops accepting and returns once every connection has answered what it had received.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        while self.listeners.join_next().await.is_some() {}
    }
}

/// Backlog of a listener: as many completed connections as a shutdown still serves.
const BACKLOG: i32 = DRAIN_CONNECTIONS as i32;

/// A listener on `addr` (IPv6 only on an IPv6 address: [`socket_for`]).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(addr, Type::STREAM, SocketProtocol::TCP)?;
    // As tokio's own `TcpListener::bind`: a restart must not wait for old connections'
    // TIME_WAIT to end.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A listener handed over already bound and listening (see [`super::socket::Inherited`]).
pub fn adopt(listener: std::net::TcpListener) -> io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Accepts connections on `listener` until the stop, then serves the ones already waiting.
async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopping: watch::Receiver<bool>) {
    let for_connections = stopping.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(entry) = shared.admit(peer) {
                        let stopping = for_connections.clone();
                        connections.spawn(serve(stream, peer, entry, Arc::clone(&shared), stopping));
                    }
                }
                Err(error) => {
                    debug!(%error, "cannot accept a TCP connection");
                    after_failed_accept(&error).await;
                }
            },
            () = stopped(&mut stopping) => break,
        }
        while connections.try_join_next().is_some() {}
    }
    // A client whose connection the kernel completed before the stop has sent its queries too.
    for _ in 0..DRAIN_CONNECTIONS {
        let Ok(Ok((stream, peer))) = timeout(Duration::ZERO, listener.accept()).await else {
            break;
        };
        let Some(entry) = shared.admit(peer) else {
            continue;
        };
        let connection = serve(
            stream,
            peer,
            entry,
            Arc::clone(&shared),
            for_connections.clone(),
        );
        connections.spawn(connection);
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection: answers each whole message in order; after the stop, only those
/// already received.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    entry: Entry,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let connection = Arc::clone(&entry.connection);
    let limits = shared.limits;
    let mut received: Vec<u8> = Vec::with_capacity(512);
    let mut responder = Responder::tcp();
    let mut draining = *stopping.borrow();
    let mut drain_reads = 0;
    // When the first byte of the message not yet whole arrived.
    let mut message_began: Option<tokio::time::Instant> = None;
    loop {
        let mut consumed = 0;
        while let Some(message) = whole_message(&received[consumed..]) {
            consumed += 2 + message.len();
            let started = Instant::now();
            if let Some(qtype) = transfer::asked(message).map(|asked| asked.qtype()) {
                let sent = send_transfer(&mut stream, message.to_vec(), peer, &shared).await;
                let Some(rcode) = sent else {
                    return;
                };
                count_query(
                    &shared.metrics,
                    rcode,
                    Some(RecordType::from(qtype)),
                    "tcp",
                    started,
                );
                continue;
            }
            let snapshot = shared.cell.load();
            let Some(answered) = responder.respond(&snapshot, message, peer) else {
                continue;
            };
            if u16::try_from(answered.bytes.len()).is_err() {
                continue; // Cannot happen: the encoder's limit for TCP is u16::MAX.
            }
            if !write_message(&mut stream, &answered.bytes, peer, &shared).await {
                return;
            }
            count_query(
                &shared.metrics,
                answered.rcode,
                answered.qtype,
                "tcp",
                started,
            );
        }
        received.drain(..consumed);
        if received.is_empty() {
            message_began = None;
            connection.set_idle(true);
        } else if consumed > 0 || message_began.is_none() {
            // What is left is the start of a message not yet whole.
            message_began = Some(tokio::time::Instant::now());
        }

        let read = if draining {
            // Only what has arrived already: a read that would wait ends the connection.
            if drain_reads == DRAIN_READS {
                return;
            }
            drain_reads += 1;
            match timeout(Duration::ZERO, stream.read_buf(&mut received)).await {
                Ok(read) => read,
                Err(_) => return,
            }
        } else {
            let (deadline, why) = match message_began {
                Some(began) => (began + limits.io_timeout, "message_timeout"),
                None => (tokio::time::Instant::now() + limits.idle_timeout, "idle"),
            };
            tokio::select! {
                read = tokio::time::timeout_at(deadline, stream.read_buf(&mut received)) => match read {
                    Ok(read) => read,
                    Err(_) if why == "idle" => return debug!(%peer, "closing an idle TCP connection"),
                    Err(_) => {
                        shared.count_dropped(why);
                        return debug!(%peer, "closing a TCP connection whose message did not arrive whole within tcp_io_timeout");
                    }
                },
                () = stopped(&mut stopping) => {
                    draining = true;
                    continue;
                }
                () = connection.evicted() => {
                    return debug!(%peer, "closing the oldest idle TCP connection to make room for a new one");
                }
            }
        };
        match read {
            Ok(0) => return,
            // Busy from the moment anything arrives, before it is answered.
            Ok(_) => connection.set_idle(false),
            Err(error) => return debug!(%peer, %error, "TCP read failed"),
        }
    }
}

/// Answers the zone transfer request `request` on `stream`. The messages are made from the
/// current snapshot off the async threads and handed over a channel of [`TRANSFER_QUEUE`]
/// messages, so a slow client holds up its own transfer, never another, and a large zone is
/// never held whole; each is written within the I/O timeout. At most `transfers_out` run at
/// once (BIND's setting of that name): beyond, REFUSED. The response code sent, or None when
/// the connection must close.
async fn send_transfer(
    stream: &mut TcpStream,
    request: Vec<u8>,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<ResponseCode> {
    let asked = transfer::asked(&request)?;
    let zone = asked.zone().to_string();
    let Ok(permit) = Arc::clone(&shared.transfers).try_acquire_owned() else {
        shared
            .metrics
            .transfers
            .get_or_create(&ReasonLabels { reason: "busy" })
            .inc();
        warn!(%peer, zone, "refused a zone transfer of {zone} to {peer}: transfers_out are running already");
        let refused = transfer::busy(&asked);
        return write_message(stream, &refused, peer, shared)
            .await
            .then_some(ResponseCode::Refused);
    };
    let snapshot = shared.cell.load_full();
    let (sender, mut messages) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_QUEUE);
    let maker = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let asked = transfer::asked(&request)?;
        let mut sink = |message: Vec<u8>| sender.blocking_send(message).is_ok();
        let outcome = transfer::respond(
            &snapshot,
            &snapshot.keys,
            &request,
            &asked,
            peer.ip(),
            false,
            &mut sink,
        );
        Some(outcome)
    });
    let mut count = 0usize;
    let mut written = true;
    while let Some(message) = messages.recv().await {
        count += 1;
        if !write_message(stream, &message, peer, shared).await {
            written = false;
            break;
        }
    }
    // Dropping the receiver stops the maker at its next message, if it is still making them.
    drop(messages);
    let outcome = maker.await.ok()??;
    if !written {
        return None;
    }
    match outcome {
        Outcome::Sent(kind) => {
            shared
                .metrics
                .transfers
                .get_or_create(&ReasonLabels { reason: kind })
                .inc();
            info!(%peer, zone, kind, messages = count, "zone transfer to {peer} of {zone}: {kind}, {count} messages");
            Some(ResponseCode::NoError)
        }
        Outcome::Refused(message, why) => {
            shared
                .metrics
                .transfers
                .get_or_create(&ReasonLabels { reason: "refused" })
                .inc();
            warn!(%peer, zone, why, "refused a zone transfer of {zone} to {peer}: {why}");
            let rcode = ResponseCode::from_low(message.get(3).map_or(0, |b| b & 0x0F));
            write_message(stream, &message, peer, shared)
                .await
                .then_some(rcode)
        }
    }
}

/// Writes one DNS message with its length within the I/O timeout; false when it could not be.
async fn write_message(
    stream: &mut TcpStream,
    message: &[u8],
    peer: SocketAddr,
    shared: &Shared,
) -> bool {
    let Ok(length) = u16::try_from(message.len()) else {
        return false;
    };
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    match timeout(shared.limits.io_timeout, stream.write_all(&framed)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            debug!(%peer, %error, "cannot send a TCP response");
            false
        }
        Err(_) => {
            debug!(%peer, "TCP client does not read its responses");
            false
        }
    }
}

/// Resolves once the stop is sent (or `Tcp` is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard it returns must not live across an await: it is not Send.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}

/// The first whole message in `bytes` (after its length), if it has all arrived.
fn whole_message(bytes: &[u8]) -> Option<&[u8]> {
    let (length, rest) = bytes.split_first_chunk::<2>()?;
    rest.get(..usize::from(u16::from_be_bytes(*length)))
}

#[cfg(test)]
mod tests {
    use super::whole_message;

    #[test]
    fn messages_are_cut_at_their_length_and_only_when_whole() {
        assert_eq!(whole_message(&[]), None);
        assert_eq!(whole_message(&[0]), None);
        assert_eq!(whole_message(&[0, 3, 1, 2]), None);
        assert_eq!(whole_message(&[0, 3, 1, 2, 3, 9]), Some(&[1, 2, 3][..]));
        assert_eq!(whole_message(&[0, 0, 7]), Some(&[][..]));
    }
}
