//! The watch stream's events: every change of a service's answers, numbered, kept in a
//! bounded history for clients that reconnect, and broadcast to every `/watch` client (see
//! `api`). The check plane publishes without waiting; a client that falls more than
//! [`BUFFER`] events behind is dropped (and told to reconnect by the closed stream), never
//! waited for.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::notify::AnswerChange;

/// Events kept for clients that reconnect with `Last-Event-ID`.
pub const HISTORY: usize = 1024;
/// Events a client may fall behind before it is dropped.
pub const BUFFER: usize = 256;

/// One numbered event.
pub type Numbered = (u64, Arc<AnswerChange>);

/// Where answer changes are published for watchers.
pub struct Hub {
    state: Mutex<History>,
    sender: broadcast::Sender<Numbered>,
}

struct History {
    last_id: u64,
    events: VecDeque<Numbered>,
}

impl Default for Hub {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(BUFFER);
        Self {
            state: Mutex::new(History {
                last_id: 0,
                events: VecDeque::with_capacity(HISTORY),
            }),
            sender,
        }
    }
}

/// What a new watcher starts from.
pub struct Subscription {
    /// The events after the one it last saw, when the history still holds them all; None when
    /// it must start from a fresh snapshot.
    pub missed: Option<Vec<Numbered>>,
    /// The id of the last event published when it subscribed.
    pub last_id: u64,
    /// Every event from then on.
    pub receiver: broadcast::Receiver<Numbered>,
}

impl Hub {
    /// Numbers `change`, keeps it, and sends it to every watcher. Never waits.
    pub fn publish(&self, change: AnswerChange) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.last_id += 1;
        let event = (state.last_id, Arc::new(change));
        if state.events.len() == HISTORY {
            state.events.pop_front();
        }
        state.events.push_back(event.clone());
        // Under the lock, so a subscriber sees each event either in its `missed` or from its
        // receiver, never both or neither. No receiver: nobody watches; fine.
        let _ = self.sender.send(event);
    }

    /// A watcher that last saw event `last_seen` (None: a new one).
    pub fn subscribe(&self, last_seen: Option<u64>) -> Subscription {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.sender.subscribe();
        let missed = last_seen.and_then(|seen| {
            if seen > state.last_id {
                return None; // From another run of the server.
            }
            let oldest = state.events.front().map_or(state.last_id + 1, |e| e.0);
            // Everything after `seen` must still be held.
            (seen + 1 >= oldest).then(|| {
                state
                    .events
                    .iter()
                    .filter(|e| e.0 > seen)
                    .cloned()
                    .collect()
            })
        });
        Subscription {
            missed,
            last_id: state.last_id,
            receiver,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(serial: u32) -> AnswerChange {
        AnswerChange {
            event: "answer_changed",
            service: "www.example.test.".into(),
            family: "A",
            from: vec![],
            to: vec![],
            failing_open: false,
            reason: String::new(),
            serial,
            at: String::new(),
        }
    }

    #[test]
    fn a_watcher_resumes_from_history_or_starts_afresh_when_it_is_gone() {
        let hub = Hub::default();
        for serial in 1..=3 {
            hub.publish(change(serial));
        }
        let resumed = hub.subscribe(Some(1));
        let ids: Vec<u64> = resumed.missed.expect("held").iter().map(|e| e.0).collect();
        assert_eq!(ids, [2, 3]);
        assert!(
            hub.subscribe(Some(3))
                .missed
                .expect("up to date")
                .is_empty()
        );
        assert!(hub.subscribe(Some(99)).missed.is_none(), "another run's id");
        for serial in 0..HISTORY as u32 {
            hub.publish(change(serial));
        }
        assert!(hub.subscribe(Some(1)).missed.is_none(), "no longer held");
        let mut live = hub.subscribe(None);
        hub.publish(change(7));
        assert_eq!(live.receiver.try_recv().expect("sent").1.serial, 7);
    }
}
