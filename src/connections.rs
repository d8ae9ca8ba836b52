//! The open connections of a listener, with a cap. A new connection beyond the cap closes the
//! oldest idle one to make room (RFC 7766 §6.2.3), or is refused when none is idle: a flood
//! of clients costs a bounded number of descriptors, and a real client arriving in the middle
//! of one still gets in, at the price of the attacker's oldest connection.
//!
//! Connections are admitted where they are accepted, in the order they arrive, so "oldest"
//! is the order clients connected in. What "idle" means is the owner's to say: DNS TCP marks a connection busy while part of a
//! message is in, the API while a request is being handled. This module only keeps the
//! table, and says how long an accept loop waits after a failed accept; it never touches a
//! socket.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How long an accept loop pauses when the process is out of file descriptors or memory,
/// instead of retrying in a busy loop while connections wait in the backlog.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// After a failed accept: a pause when it failed for want of descriptors or memory, which
/// waiting can cure; none for anything else (a client gone before it was accepted).
pub async fn after_failed_accept(error: &io::Error) {
    let out_of_resources = matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    );
    if out_of_resources {
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }
}

/// The open connections, oldest first.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    connections: BTreeMap<u64, Arc<Connection>>,
}

/// What the table knows of one open connection.
#[derive(Debug)]
pub struct Connection {
    idle: AtomicBool,
    close: Notify,
}

impl Connection {
    /// Marks it idle (it may be closed to make room) or busy.
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Resolves when the connection must close to make room for a newer one.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }
}

/// How a new connection was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// There was room.
    Room,
    /// The oldest idle connection was closed for it.
    Evicted,
}

impl Connections {
    /// A table of at most `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(Open::default()),
        })
    }

    /// Makes room for a new connection (idle until its owner says otherwise) and registers
    /// it; None when every open connection is busy, so the new one must be closed instead.
    pub fn admit(self: &Arc<Self>) -> Option<(Entry, Admitted)> {
        let mut open = self.lock();
        let mut admitted = Admitted::Room;
        if open.connections.len() >= self.max {
            let oldest_idle = open
                .connections
                .iter()
                .find(|(_, c)| c.idle.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.connections.remove(&oldest_idle) {
                evicted.close.notify_one();
                admitted = Admitted::Evicted;
            }
        }
        let id = open.next;
        open.next += 1;
        let connection = Arc::new(Connection {
            idle: AtomicBool::new(true),
            close: Notify::new(),
        });
        open.connections.insert(id, Arc::clone(&connection));
        Some((
            Entry {
                table: Arc::clone(self),
                id,
                connection,
            },
            admitted,
        ))
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.lock().connections.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's place in the table; it leaves the table when dropped.
#[derive(Debug)]
pub struct Entry {
    table: Arc<Connections>,
    id: u64,
    /// The connection, to mark idle or busy and to learn of its eviction.
    pub connection: Arc<Connection>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.table.lock().connections.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room_and_none_is_made_when_all_are_busy() {
        let table = Connections::new(2);
        let (first, _) = table.admit().expect("room");
        let (second, how) = table.admit().expect("room");
        assert_eq!(how, Admitted::Room);
        // Full: the oldest idle one goes.
        let (third, how) = table.admit().expect("evicts");
        assert_eq!(how, Admitted::Evicted);
        assert_eq!(table.len(), 2);
        drop(first); // its owner closes it; the table has let it go already
        assert_eq!(table.len(), 2);
        // Both busy: no room.
        second.connection.set_idle(false);
        third.connection.set_idle(false);
        assert!(table.admit().is_none());
        // One idle again: it is the one that goes.
        third.connection.set_idle(true);
        let (_fourth, how) = table.admit().expect("evicts");
        assert_eq!(how, Admitted::Evicted);
        drop(second);
        assert_eq!(table.len(), 1);
    }

    #[tokio::test]
    async fn an_evicted_connection_is_told() {
        let table = Connections::new(1);
        let (first, _) = table.admit().expect("room");
        let _second = table.admit().expect("evicts");
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            first.connection.evicted(),
        )
        .await
        .expect("told to close");
    }
}
