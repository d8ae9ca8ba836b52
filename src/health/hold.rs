//! Held connections (`hold = true`): one idle TCP connection kept open to each such member, so
//! that the moment its process dies — its kernel closes the connection with a FIN or a reset —
//! the member is put in doubt and checked at once, instead of at its next periodic check.
//! ZooKeeper's ephemeral nodes work the same way: a session that drops is seen at once.
//!
//! A hold only ever *triggers* a check; the checks and `fall` decide. A member that closes idle
//! connections, or restarted quickly, passes that check and its hold is reopened. A hold that
//! lasted less than an interval is reopened only an interval later, so a member that closes
//! every connection at once costs a check an interval, not a loop. The connection carries TCP
//! keepalive and `TCP_USER_TIMEOUT` from the check's timing, so a host that vanished without a
//! FIN is found by the periodic checks as without a hold, never later.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tracing::debug;

/// Holds a connection to `target` for probe `id` for as long as the task runs, sending `id`
/// to `doubts` whenever the connection ends or cannot be opened.
pub(super) async fn hold(
    id: u64,
    target: SocketAddr,
    doubts: UnboundedSender<u64>,
    interval: Duration,
    timeout: Duration,
) {
    loop {
        let opened = Instant::now();
        match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
            Ok(Ok(mut stream)) => {
                tune(&stream, interval, timeout);
                let mut discard = [0u8; 512];
                // Whatever the member sends is dropped; its end or an error ends the hold.
                while matches!(stream.read(&mut discard).await, Ok(n) if n > 0) {}
                debug!(%target, "held connection ended: checking at once");
                if doubts.send(id).is_err() {
                    return;
                }
                if opened.elapsed() < interval {
                    tokio::time::sleep(interval).await;
                }
            }
            // Not held now (refused, timed out, out of descriptors): the periodic checks decide;
            // try again an interval later.
            _ => tokio::time::sleep(interval).await,
        }
    }
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
