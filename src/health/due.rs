//! When each probe is next due: a ring of millisecond slots.
//!
//! Written here because the usual tools fit the job badly at tens of thousands of members: a
//! binary heap's every pop is a chain of cache misses, and tokio-util's `DelayQueue` links its
//! entries through a slab. Here an entry is appended to the slot of its millisecond and the
//! slot is drained in one sequential pass; checks are due to the millisecond at best anyway
//! (tokio's timer resolution, ±5% jitter). The profile is in README "The check plane at scale".

use std::time::Duration;

use tokio::time::Instant;

/// Slots in the ring, one per millisecond: a little over two seconds. An entry due later
/// stays in its slot over the laps in between (looked at once a lap, kept).
const SLOTS: u64 = 2048;

/// Probe ids by due time, handed out no earlier than due and at most a millisecond late.
#[derive(Debug)]
pub struct DueQueue {
    /// Time of tick 0.
    origin: Instant,
    /// `slots[tick % SLOTS]`: the entries due at `tick` and later laps' ticks that share
    /// the slot, as (tick, probe id).
    slots: Vec<Vec<(u64, u64)>>,
    /// The first tick whose slot has not been drained yet.
    next: u64,
    /// Ids whose tick has come, not taken yet.
    ready: Vec<u64>,
    /// Entries in the slots.
    waiting: usize,
}

impl Default for DueQueue {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next: 0,
            ready: Vec::new(),
            waiting: 0,
        }
    }
}

impl DueQueue {
    /// Queues `id` to come due at `at` (at once if `at` has passed).
    pub fn push(&mut self, at: Instant, id: u64) {
        // Rounded up, so an id never comes out before its time.
        let since = at.saturating_duration_since(self.origin);
        let tick = since.as_nanos().div_ceil(1_000_000);
        let tick = u64::try_from(tick).unwrap_or(u64::MAX);
        if tick < self.next {
            // Its slot has been drained already: due now.
            self.ready.push(id);
            return;
        }
        self.slot(tick).push((tick, id));
        self.waiting += 1;
    }

    /// Takes one id due by `now`, if any; ids due in the same millisecond come out in no
    /// particular order.
    pub fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let now_tick = self.tick_at(now);
        if self.ready.is_empty() && now_tick >= self.next + SLOTS {
            // A lap or more behind (the process was stopped, say): one pass over every slot
            // finds all that is due, instead of a pass per millisecond missed.
            for slot in &mut self.slots {
                take_due(slot, now_tick, &mut self.ready);
            }
            self.waiting -= self.ready.len();
            self.next = now_tick + 1;
        }
        while self.ready.is_empty() && self.next <= now_tick && self.waiting > 0 {
            let tick = self.next;
            take_due(
                &mut self.slots[(tick % SLOTS) as usize],
                tick,
                &mut self.ready,
            );
            self.waiting -= self.ready.len();
            self.next += 1;
        }
        if self.waiting == 0 && self.ready.is_empty() {
            // Nothing queued: the cursor may jump to now instead of walking every empty tick.
            self.next = self.next.max(now_tick + 1);
        }
        self.ready.pop()
    }

    /// When to look again: the time of the first slot with anything in it (which may hold
    /// only later laps' entries: then the look finds nothing and costs one pass over that
    /// slot), or `None` when nothing is queued.
    pub fn next_wake(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(self.instant_of(self.next.saturating_sub(1)));
        }
        if self.waiting == 0 {
            return None;
        }
        (self.next..self.next + SLOTS)
            .find(|&tick| !self.slots[(tick % SLOTS) as usize].is_empty())
            .map(|tick| self.instant_of(tick))
    }

    fn slot(&mut self, tick: u64) -> &mut Vec<(u64, u64)> {
        &mut self.slots[(tick % SLOTS) as usize]
    }

    /// The last tick that has begun by `now`.
    fn tick_at(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_millis();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.origin + Duration::from_millis(tick)
    }
}

/// Moves the ids in `slot` due by `tick` into `ready`; later laps' entries stay.
fn take_due(slot: &mut Vec<(u64, u64)>, tick: u64, ready: &mut Vec<u64>) {
    slot.retain(|&(due, id)| {
        let come = due <= tick;
        if come {
            ready.push(id);
        }
        !come
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Pops everything due by `now`.
    fn drain(queue: &mut DueQueue, now: Instant) -> Vec<u64> {
        let mut out: Vec<u64> = std::iter::from_fn(|| queue.pop_due(now)).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn ids_come_out_when_due_never_before() {
        let mut queue = DueQueue::default();
        let t0 = queue.origin;
        queue.push(t0 + ms(10), 1);
        queue.push(t0 + ms(10) + Duration::from_micros(300), 2);
        queue.push(t0 + ms(25), 3);
        assert_eq!(drain(&mut queue, t0 + ms(9)), Vec::<u64>::new());
        assert_eq!(drain(&mut queue, t0 + ms(10)), vec![1]);
        assert_eq!(queue.next_wake(), Some(t0 + ms(11)), "2 rounds up to 11 ms");
        assert_eq!(drain(&mut queue, t0 + ms(11)), vec![2]);
        assert_eq!(queue.next_wake(), Some(t0 + ms(25)));
        assert_eq!(drain(&mut queue, t0 + ms(100)), vec![3]);
        assert_eq!(queue.next_wake(), None);
    }

    #[test]
    fn entries_further_out_than_the_ring_wait_their_lap() {
        let mut queue = DueQueue::default();
        let t0 = queue.origin;
        // Same slot, three laps apart.
        let lap = ms(SLOTS);
        queue.push(t0 + ms(5) + lap * 3, 30);
        queue.push(t0 + ms(5), 0);
        queue.push(t0 + ms(5) + lap, 10);
        assert_eq!(drain(&mut queue, t0 + ms(5)), vec![0]);
        assert_eq!(
            drain(&mut queue, t0 + ms(5) + lap - ms(1)),
            Vec::<u64>::new()
        );
        assert_eq!(drain(&mut queue, t0 + ms(5) + lap), vec![10]);
        assert_eq!(drain(&mut queue, t0 + ms(5) + lap * 2), Vec::<u64>::new());
        assert_eq!(drain(&mut queue, t0 + ms(5) + lap * 3), vec![30]);
    }

    #[test]
    fn past_due_comes_out_at_once_and_a_late_look_misses_nothing() {
        let mut queue = DueQueue::default();
        let t0 = queue.origin;
        for id in 0..1000 {
            queue.push(t0 + ms(id % 1500), id);
        }
        // Looked at late, past every due time: all come out, each once.
        assert_eq!(
            drain(&mut queue, t0 + ms(5000)),
            (0..1000).collect::<Vec<_>>()
        );
        // Pushed behind the cursor: due at once, not a lap later.
        queue.push(t0 + ms(100), 7);
        assert_eq!(queue.pop_due(t0 + ms(5000)), Some(7));
    }

    #[test]
    fn matches_a_sorted_model_under_random_use() {
        // Random pushes (some behind the cursor, some laps ahead) and looks after random
        // gaps (some over a lap): every id comes out exactly once, never before its time, and
        // no later than the first look at or after it; the wake time is never after the
        // earliest due entry.
        let mut queue = DueQueue::default();
        let t0 = queue.origin;
        let mut model: Vec<(Instant, u64)> = Vec::new();
        let mut now = t0;
        let mut next_id = 0;
        for _ in 0..20_000 {
            if rand::random_bool(0.5) {
                let offset = rand::random_range(0..5 * SLOTS);
                let at = if rand::random_bool(0.1) {
                    now.checked_sub(ms(offset)).unwrap_or(t0)
                } else {
                    now + Duration::from_micros(offset * 1000 + rand::random_range(0..1000))
                };
                queue.push(at, next_id);
                model.push((at, next_id));
                next_id += 1;
            } else {
                let gap = if rand::random_bool(0.01) {
                    rand::random_range(SLOTS..4 * SLOTS)
                } else {
                    rand::random_range(0..30)
                };
                now += ms(gap);
                if let (Some(wake), Some(earliest)) =
                    (queue.next_wake(), model.iter().map(|(at, _)| *at).min())
                {
                    assert!(wake <= earliest.max(now) + ms(1), "wakes too late");
                }
                let out = drain(&mut queue, now);
                let mut due: Vec<u64> = model
                    .iter()
                    .filter(|(at, _)| *at <= now)
                    .map(|(_, id)| *id)
                    .collect();
                due.sort_unstable();
                for id in &out {
                    assert!(
                        due.binary_search(id).is_ok(),
                        "{id} came out early or twice"
                    );
                }
                model.retain(|(_, id)| out.binary_search(id).is_err());
                // Only what came due within the last millisecond may still wait.
                assert!(
                    model.iter().all(|(at, _)| *at + ms(1) > now),
                    "an entry due a millisecond ago is still in"
                );
            }
        }
    }

    #[test]
    fn an_idle_queue_does_not_walk_the_time_it_slept() {
        let mut queue = DueQueue::default();
        let t0 = queue.origin;
        assert_eq!(queue.pop_due(t0 + Duration::from_secs(3600)), None);
        assert_eq!(queue.next, 3_600_001, "the cursor jumped past now");
        queue.push(t0 + Duration::from_secs(3600) + ms(20), 1);
        assert_eq!(
            queue.next_wake(),
            Some(t0 + Duration::from_secs(3600) + ms(20))
        );
    }
}
