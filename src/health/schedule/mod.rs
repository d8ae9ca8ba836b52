//! The probe schedule: when each member is next due, and the checks in flight.
//!
//! The schedule decides when, and takes each check's first step itself ([`Probe::begin`]): a
//! TCP check of a member on this host is over inside that step, with no task and no timer.
//! A check that must wait runs on as a tokio task of its own, bounded by its timeout, so a
//! hung backend delays nobody else. A long-lived task and two timers per member cost about
//! 640 bytes each plus a timer wake-up per check; here a waiting member costs 16 bytes in a
//! slot of [`DueQueue`].
//! Waiting checks are tasks, not futures polled inside the schedule's task, because tokio's
//! cooperative budget is per task: thousands of HTTP checks inside one task exhausted it and
//! were polled over and over for nothing (20,000 refused HTTP checks/s took a whole core and
//! managed 6,800/s).

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::task::{Id, JoinSet};
use tokio::time::Sleep;

use super::due::DueQueue;
use super::probe::{Begun, Pending, Probe};
use super::state::{Failure, Outcome};

/// One probe result, addressed to the probe that produced it.
#[derive(Debug)]
pub struct Report {
    /// The probe's id.
    pub probe: u64,
    /// The probe's tag (see [`Schedule::add`]).
    pub tag: u64,
    /// What happened.
    pub outcome: Outcome,
    /// How long the check took, timeouts included.
    pub took: Duration,
    /// When it finished.
    pub at: Instant,
}

/// How often a member is checked, by what its last checks said (HAProxy's `inter`,
/// `fastinter` and `downinter`).
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Between checks of a member that is up.
    pub interval: Duration,
    /// Between checks while a member is in doubt: after a failure of an up member, until
    /// `fall` failures or a success; and on a down member's way up, until `rise` successes.
    pub fast: Duration,
    /// Between checks of a member that is down.
    pub down: Duration,
    /// Consecutive failures that take a member down.
    pub fall: u32,
    /// Consecutive successes that bring it up.
    pub rise: u32,
    /// Whether to hold a connection open (`hold = true`): its end puts the member in doubt.
    pub hold: bool,
}

impl Pacing {
    /// Every check `interval` apart, whatever it finds.
    pub fn steady(interval: Duration) -> Self {
        Self {
            interval,
            fast: interval,
            down: interval,
            fall: 1,
            rise: 1,
            hold: false,
        }
    }
}

/// A member's check, as scheduled.
#[derive(Debug)]
struct Scheduled {
    id: u64,
    tag: u64,
    probe: Probe,
    pacing: Pacing,
    timeout: Duration,
    /// The member's health as its own results say, for pacing only (the health state is the
    /// monitor's): consecutive failures and successes, and whether `fall` failures have come
    /// without `rise` successes since.
    failures: u32,
    successes: u32,
    down: bool,
    /// Whether a check of it is running now.
    in_flight: bool,
}

impl Scheduled {
    /// Counts `ok` (None: no result) and says how long until the next check.
    fn next_after(&mut self, ok: Option<bool>) -> Duration {
        let pacing = self.pacing;
        match ok {
            None => pacing.interval,
            Some(true) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.down && self.successes >= pacing.rise {
                    self.down = false;
                }
                if self.down {
                    pacing.fast
                } else {
                    pacing.interval
                }
            }
            Some(false) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if !self.down && self.failures >= pacing.fall {
                    self.down = true;
                }
                if self.down { pacing.down } else { pacing.fast }
            }
        }
    }
}

/// Where a probe is kept: its slot, and the slot's generation (a slot freed and reused by
/// another probe gets a new one, so the first probe's due entries and checks in flight are
/// recognised as stale). Packed into a `u64` for [`DueQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    slot: u32,
    generation: u32,
}

impl Key {
    fn pack(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.slot)
    }

    fn unpack(packed: u64) -> Self {
        Key {
            slot: packed as u32,
            generation: (packed >> 32) as u32,
        }
    }
}

/// Longest the schedule sleeps with nothing due (no probes at all).
const IDLE: Duration = Duration::from_secs(3600);

/// Most checks begun in one go: first steps run inside the schedule's task, so a start-up
/// with thousands due at once yields between rounds to let reports and commands through.
const BEGIN_ROUND: usize = 256;

/// Every probe's next run, and the checks running now.
pub struct Schedule {
    /// The probes, each in a slot with its generation. Checks find their probe by slot, not
    /// by a hash lookup: at 20,000 checks/s every lookup is a cache miss or two.
    slots: Vec<(u32, Option<Scheduled>)>,
    /// Free slots.
    free: Vec<u32>,
    /// Each probe id's key, for adding, finding and removing probes by id.
    keys: HashMap<u64, Key>,
    /// Next run of each waiting probe, by packed key. Entries of removed probes are skipped
    /// when they come up.
    due: DueQueue,
    /// Reports of checks that were over in their first step, not yet handed out.
    finished: Vec<Report>,
    in_flight: JoinSet<Report>,
    /// The probe and start of each check in flight, by task: what to reschedule should a
    /// check's task fail without a report.
    started: HashMap<Id, (Key, tokio::time::Instant)>,
    wake: Pin<Box<Sleep>>,
    /// Where the jitter comes from; seeded, so that a test can replay a schedule exactly.
    jitter: SmallRng,
    /// The held connections' tasks, by probe id.
    holds: HashMap<u64, tokio::task::AbortHandle>,
    /// Probes whose held connection ended, to be checked at once.
    doubts: (
        tokio::sync::mpsc::UnboundedSender<u64>,
        tokio::sync::mpsc::UnboundedReceiver<u64>,
    ),
}

impl Default for Schedule {
    /// A schedule whose jitter is seeded from the OS.
    fn default() -> Self {
        Self::seeded(rand::random())
    }
}

impl Schedule {
    /// A schedule whose jitter comes from `seed`: the same seed, the same offsets.
    pub fn seeded(seed: u64) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            keys: HashMap::new(),
            due: DueQueue::default(),
            finished: Vec::new(),
            in_flight: JoinSet::new(),
            started: HashMap::new(),
            wake: Box::pin(tokio::time::sleep(IDLE)),
            jitter: SmallRng::seed_from_u64(seed),
            holds: HashMap::new(),
            doubts: tokio::sync::mpsc::unbounded_channel(),
        }
    }
}

/// Longest wait for a member's first check: however long its interval, a member starts
/// `unknown` (answered on faith) only until its first check can report.
pub const FIRST_CHECK_SPREAD: Duration = Duration::from_millis(100);

impl Schedule {
    /// Schedules `probe` under `id`: first within a tenth of an interval (at most
    /// [`FIRST_CHECK_SPREAD`]), then every interval
    /// with ±5% jitter so that many members configured alike do not probe in lockstep. Its
    /// reports carry `tag`, for the caller to find what a report is about without a lookup.
    pub fn add(&mut self, id: u64, tag: u64, probe: Probe, interval: Duration, timeout: Duration) {
        let _ = self.add_paced(id, tag, probe, Pacing::steady(interval), timeout);
    }

    /// As [`Schedule::add`], checking as often as `pacing` says for what the checks find.
    /// With a hold, returns the flag that says whether its connection is open now.
    pub fn add_paced(
        &mut self,
        id: u64,
        tag: u64,
        probe: Probe,
        pacing: Pacing,
        timeout: Duration,
    ) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        self.remove(id);
        let interval = pacing.interval;
        let held = pacing.hold.then(|| probe.hold_target()).flatten();
        let scheduled = Scheduled {
            id,
            tag,
            probe,
            pacing,
            timeout,
            failures: 0,
            successes: 0,
            down: false,
            in_flight: false,
        };
        let open = held.map(|target| {
            let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let task = tokio::spawn(super::hold::hold(
                id,
                target,
                self.doubts.0.clone(),
                pacing.interval,
                timeout,
                std::sync::Arc::clone(&open),
            ));
            self.holds.insert(id, task.abort_handle());
            open
        });
        let key = match self.free.pop() {
            Some(slot) => {
                let (generation, entry) = &mut self.slots[slot as usize];
                *generation = generation.wrapping_add(1);
                *entry = Some(scheduled);
                Key {
                    slot,
                    generation: *generation,
                }
            }
            None => {
                let Ok(slot) = u32::try_from(self.slots.len()) else {
                    return None; // four billion probes: not a configuration that loads
                };
                self.slots.push((0, Some(scheduled)));
                Key {
                    slot,
                    generation: 0,
                }
            }
        };
        self.keys.insert(id, key);
        let spread = (interval / 10).min(FIRST_CHECK_SPREAD);
        let first =
            tokio::time::Instant::now() + spread.mul_f64(self.jitter.random_range(0.0..1.0));
        self.due.push(first, key.pack());
        open
    }

    /// Whether probe `id` is scheduled (a reload asks [`Schedule::retag`], which says too).
    #[cfg(test)]
    fn contains(&self, id: u64) -> bool {
        self.keys.contains_key(&id)
    }

    /// Gives probe `id`'s reports from now on `tag`, those of a check in flight included;
    /// false when there is no such probe.
    pub fn retag(&mut self, id: u64, tag: u64) -> bool {
        let Some(&key) = self.keys.get(&id) else {
            return false;
        };
        match self.get_mut(key) {
            Some(scheduled) => {
                scheduled.tag = tag;
                true
            }
            None => false,
        }
    }

    /// Keeps the probes for which `keep` is true; returns how many were removed. A removed
    /// probe's check in flight still finishes (within its timeout), without a report.
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> usize {
        let gone: Vec<u64> = self.keys.keys().copied().filter(|id| !keep(*id)).collect();
        for id in &gone {
            self.remove(*id);
        }
        gone.len()
    }

    fn remove(&mut self, id: u64) {
        if let Some(hold) = self.holds.remove(&id) {
            hold.abort();
        }
        if let Some(key) = self.keys.remove(&id) {
            self.slots[key.slot as usize].1 = None;
            self.free.push(key.slot);
        }
    }

    fn get(&self, key: Key) -> Option<&Scheduled> {
        match self.slots.get(key.slot as usize) {
            Some((generation, Some(scheduled))) if *generation == key.generation => Some(scheduled),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: Key) -> Option<&mut Scheduled> {
        match self.slots.get_mut(key.slot as usize) {
            Some((generation, Some(scheduled))) if *generation == key.generation => Some(scheduled),
            _ => None,
        }
    }

    /// Checks probe `id` at once (its held connection ended), unless a check of it is running
    /// already: its next periodic check is dropped (the slot's generation moves on, so that
    /// entry is stale) and one is queued for now; after it, the pacing of a member in doubt
    /// applies.
    fn check_now(&mut self, id: u64) {
        let Some(&key) = self.keys.get(&id) else {
            return;
        };
        if self.get(key).is_none_or(|scheduled| scheduled.in_flight) {
            return;
        }
        let (generation, _) = &mut self.slots[key.slot as usize];
        *generation = generation.wrapping_add(1);
        let fresh = Key {
            slot: key.slot,
            generation: *generation,
        };
        self.keys.insert(id, fresh);
        self.due.push(tokio::time::Instant::now(), fresh.pack());
    }

    /// Waits for at least one finished check and moves up to `max` of them into `batch`,
    /// starting the checks that come due meanwhile. Cancel-safe: nothing is lost when the
    /// future is dropped before it completes.
    pub async fn next(&mut self, batch: &mut Vec<Report>, max: usize) {
        loop {
            while let Ok(id) = self.doubts.1.try_recv() {
                self.check_now(id);
            }
            self.start_due();
            let room = max.saturating_sub(batch.len()).min(self.finished.len());
            batch.extend(self.finished.drain(..room));
            let idle = || tokio::time::Instant::now() + IDLE;
            let wake_at = self.due.next_wake().unwrap_or_else(idle);
            self.wake.as_mut().reset(wake_at);
            let finished = poll_fn(|cx| {
                while batch.len() < max {
                    let (task, done) = match self.in_flight.poll_join_next_with_id(cx) {
                        Poll::Ready(Some(Ok((task, done)))) => (task, Some(done)),
                        Poll::Ready(Some(Err(failed))) => (failed.id(), None),
                        Poll::Ready(None) | Poll::Pending => break,
                    };
                    let Some((key, started)) = self.started.remove(&task) else {
                        continue;
                    };
                    let ok = done.as_ref().map(|report| report.outcome.is_ok());
                    if let Some(scheduled) = self.get_mut(key) {
                        scheduled.in_flight = false;
                    }
                    self.reschedule(key, started, ok);
                    // The probe's tag now (retagged while the check ran, say); a removed
                    // probe's report is dropped.
                    if let (Some(mut report), Some(scheduled)) = (done, self.get(key)) {
                        report.tag = scheduled.tag;
                        batch.push(report);
                    }
                }
                if !batch.is_empty() {
                    return Poll::Ready(true);
                }
                // A held connection ended: back round the loop to check that member now.
                if let Poll::Ready(Some(id)) = self.doubts.1.poll_recv(cx) {
                    self.check_now(id);
                    return Poll::Ready(false);
                }
                self.wake.as_mut().poll(cx).map(|()| false)
            })
            .await;
            if finished {
                return;
            }
        }
    }

    /// Begins every check whose time has come (up to [`BEGIN_ROUND`]).
    fn start_due(&mut self) {
        let now = tokio::time::Instant::now();
        for _ in 0..BEGIN_ROUND {
            let Some(packed) = self.due.pop_due(now) else {
                break;
            };
            let key = Key::unpack(packed);
            let Some(scheduled) = self.get(key) else {
                continue;
            };
            let (id, tag) = (scheduled.id, scheduled.tag);
            let started = Instant::now();
            match scheduled.probe.begin() {
                Begun::Over(outcome) => {
                    let ok = Some(outcome.is_ok());
                    self.finished.push(report(id, tag, outcome, started));
                    self.reschedule(key, now, ok);
                }
                Begun::Pending(pending) => {
                    let check = finish(id, tag, pending, scheduled.timeout, started);
                    if let Some(scheduled) = self.get_mut(key) {
                        scheduled.in_flight = true;
                    }
                    let task = self.in_flight.spawn(check);
                    self.started.insert(task.id(), (key, now));
                }
            }
        }
    }

    /// Queues the next run of the probe at `key`, if it is still scheduled, as long (±5%)
    /// after its last one started as its pacing says for that check's result `ok`.
    fn reschedule(&mut self, key: Key, started: tokio::time::Instant, ok: Option<bool>) {
        let jitter = self.jitter.random_range(0.95..1.05);
        if let Some(scheduled) = self.get_mut(key) {
            let next = started + scheduled.next_after(ok).mul_f64(jitter);
            self.due.push(next, key.pack());
        }
    }
}

/// Finishes a check begun at `started`, bounded by its timeout.
async fn finish(
    id: u64,
    tag: u64,
    pending: Pending,
    timeout: Duration,
    started: Instant,
) -> Report {
    let outcome = match tokio::time::timeout(timeout, pending.finish()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timeout after {}", humantime::format_duration(timeout)).into()),
    };
    report(id, tag, outcome, started)
}

/// The report of probe `id`'s check begun at `started` and over now.
fn report(id: u64, tag: u64, outcome: Result<(), Failure>, started: Instant) -> Report {
    let at = Instant::now();
    let took = at.saturating_duration_since(started);
    Report {
        probe: id,
        tag,
        outcome: outcome.map(|()| took),
        took,
        at,
    }
}

#[cfg(test)]
mod tests;
