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

/// A member's check, as scheduled.
#[derive(Debug)]
struct Scheduled {
    id: u64,
    tag: u64,
    probe: Probe,
    interval: Duration,
    timeout: Duration,
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
        self.remove(id);
        let scheduled = Scheduled {
            id,
            tag,
            probe,
            interval,
            timeout,
        };
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
                    return; // four billion probes: not a configuration that loads
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

    /// Waits for at least one finished check and moves up to `max` of them into `batch`,
    /// starting the checks that come due meanwhile. Cancel-safe: nothing is lost when the
    /// future is dropped before it completes.
    pub async fn next(&mut self, batch: &mut Vec<Report>, max: usize) {
        loop {
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
                    self.reschedule(key, started);
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
                    self.finished.push(report(id, tag, outcome, started));
                    self.reschedule(key, now);
                }
                Begun::Pending(pending) => {
                    let check = finish(id, tag, pending, scheduled.timeout, started);
                    let task = self.in_flight.spawn(check);
                    self.started.insert(task.id(), (key, now));
                }
            }
        }
    }

    /// Queues the next run of the probe at `key`, if it is still scheduled, an interval
    /// (±5%) after its last one started.
    fn reschedule(&mut self, key: Key, started: tokio::time::Instant) {
        let jitter = self.jitter.random_range(0.95..1.05);
        if let Some(scheduled) = self.get(key) {
            let next = started + scheduled.interval.mul_f64(jitter);
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
mod tests {
    use super::*;
    use crate::config::{CheckKind, CheckPlan, HttpCheck};
    use crate::health::sockets::closed_port;

    const INTERVAL: Duration = Duration::from_millis(50);
    /// Longer than any wait here, so a hung check never finishes within a test.
    const TIMEOUT: Duration = Duration::from_secs(30);

    fn http_plan(port: u16) -> CheckPlan {
        CheckPlan {
            kind: CheckKind::Http(HttpCheck {
                scheme: "http".into(),
                path: "/".into(),
                host: None,
                expect_status: 200..=299,
                tls_verify: true,
            }),
            port,
            interval: TIMEOUT,
            timeout: TIMEOUT,
            rise: 1,
            fall: 1,
        }
    }

    /// Collects reports until `done` says stop or 10 s pass.
    async fn collect(schedule: &mut Schedule, done: impl FnMut(&[Report]) -> bool) -> Vec<Report> {
        collect_within(schedule, Duration::from_secs(10), done).await
    }

    /// Collects every report that arrives within `limit`.
    async fn collect_for(schedule: &mut Schedule, limit: Duration) -> Vec<Report> {
        collect_within(schedule, limit, |_| false).await
    }

    /// Collects reports until `done` says stop or `limit` passes.
    async fn collect_within(
        schedule: &mut Schedule,
        limit: Duration,
        mut done: impl FnMut(&[Report]) -> bool,
    ) -> Vec<Report> {
        let mut all = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&all) && tokio::time::Instant::now() < deadline {
            let mut batch = Vec::new();
            let next = schedule.next(&mut batch, 64);
            if tokio::time::timeout_at(deadline, next).await.is_ok() {
                all.append(&mut batch);
            }
        }
        all
    }

    #[tokio::test]
    async fn a_hung_check_does_not_delay_the_others() {
        // Accepts and never answers: the HTTP check hangs until its timeout.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hung_port = hung.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = hung.accept().await {
                open.push(socket);
            }
        });
        // Accepts at once: the TCP check passes.
        let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let live_addr = live.local_addr().expect("addr");

        let mut schedule = Schedule::default();
        let localhost = "127.0.0.1".parse().expect("ip");
        let probe =
            Probe::new(&http_plan(hung_port), localhost, &mut Default::default()).expect("probe");
        schedule.add(1, 1, probe, TIMEOUT, TIMEOUT);
        schedule.add(
            2,
            2,
            Probe::Tcp {
                target: live_addr,
                sockets: Default::default(),
            },
            INTERVAL,
            TIMEOUT,
        );

        let reports = collect(&mut schedule, |all| {
            all.iter().filter(|r| r.probe == 2).count() >= 5
        })
        .await;
        assert!(
            reports
                .iter()
                .filter(|r| r.probe == 2)
                .all(|r| r.outcome.is_ok()),
            "{reports:?}"
        );
        assert!(
            reports.iter().filter(|r| r.probe == 2).count() >= 5,
            "the live member kept being checked: {reports:?}"
        );
        assert!(
            reports.iter().all(|r| r.probe != 1),
            "the hung check had not timed out yet: {reports:?}"
        );
        held.abort();
    }

    /// When each probe reported, by the paused clock, over `limit` from now.
    async fn timeline(seed: u64, probes: u64, limit: Duration) -> Vec<(u64, Duration)> {
        let (_reserved, addr) = closed_port("127.0.0.1");
        let mut schedule = Schedule::seeded(seed);
        let sockets = std::sync::Arc::default();
        for id in 0..probes {
            let probe = Probe::Tcp {
                target: addr,
                sockets: std::sync::Arc::clone(&sockets),
            };
            schedule.add(id, id, probe, Duration::from_secs(1), TIMEOUT);
        }
        let start = tokio::time::Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < limit {
            let mut batch = Vec::new();
            let next = schedule.next(&mut batch, 64);
            if tokio::time::timeout_at(start + limit, next).await.is_ok() {
                seen.extend(batch.iter().map(|r| (r.probe, start.elapsed())));
            }
        }
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn first_checks_spread_and_later_ones_jitter_within_bounds_replayably() {
        let (probes, limit) = (20, Duration::from_millis(3500));
        let first = timeline(7, probes, limit).await;
        for id in 0..probes {
            let times: Vec<Duration> = first
                .iter()
                .filter(|(probe, _)| *probe == id)
                .map(|(_, at)| *at)
                .collect();
            // Within a tenth of the interval (at most FIRST_CHECK_SPREAD), then every
            // interval ±5% (a millisecond either side for the queue's tick).
            assert!(
                times[0] <= FIRST_CHECK_SPREAD + Duration::from_millis(1),
                "{id}: {times:?}"
            );
            assert_eq!(times.len(), 4, "{id}: {times:?}");
            for pair in times.windows(2) {
                let gap = pair[1] - pair[0];
                let (low, high) = (Duration::from_millis(949), Duration::from_millis(1051));
                assert!(
                    (low..=high).contains(&gap),
                    "{id}: gap {gap:?} in {times:?}"
                );
            }
        }
        let offsets: std::collections::HashSet<Duration> =
            first.iter().map(|(_, at)| *at).collect();
        assert!(offsets.len() > 40, "jitter spreads the checks: {offsets:?}");
        // The same seed replays the same schedule; another one does not.
        assert_eq!(timeline(7, probes, limit).await, first);
        assert_ne!(timeline(8, probes, limit).await, first);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_over_in_their_first_step_all_report_when_many_are_due_at_once() {
        // More than one round of first steps, each over at once (refused), handed out in
        // batches smaller than a round: none may be lost or doubled on the way.
        let (_reserved, addr) = closed_port("127.0.0.1");
        let mut schedule = Schedule::default();
        let probes = 3 * BEGIN_ROUND as u64 + 7;
        let sockets = std::sync::Arc::default();
        for id in 0..probes {
            let probe = Probe::Tcp {
                target: addr,
                sockets: std::sync::Arc::clone(&sockets),
            };
            // Every first check within 200 ms, the next not before 1.9 s.
            schedule.add(id, id, probe, Duration::from_secs(2), TIMEOUT);
        }
        // The clock is paused: moved past every first check at once, they are all due now.
        tokio::time::advance(Duration::from_millis(250)).await;
        let reports = collect(&mut schedule, |all| all.len() as u64 >= probes).await;
        let mut seen: Vec<u64> = reports.iter().map(|r| r.probe).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..probes).collect::<Vec<_>>(), "each probe once");
        assert!(reports.iter().all(|r| r.outcome.is_err()), "{reports:?}");
    }

    #[tokio::test]
    async fn a_slot_reused_by_a_new_probe_serves_only_the_new_one() {
        let (_reserved, addr) = closed_port("127.0.0.1");
        let tcp = || Probe::Tcp {
            target: addr,
            sockets: Default::default(),
        };
        let mut schedule = Schedule::default();
        schedule.add(1, 10, tcp(), INTERVAL, TIMEOUT);
        let first = collect(&mut schedule, |all| !all.is_empty()).await;
        assert!(
            matches!(
                first[..],
                [Report {
                    probe: 1,
                    tag: 10,
                    ..
                }]
            ),
            "{first:?}"
        );
        // Probe 1's next run is queued; probe 2 takes its slot, due in 100 ms at most and
        // then not for 950 ms. Were the queued entry taken for probe 2, it would run twice.
        assert_eq!(schedule.retain(|id| id != 1), 1);
        schedule.add(2, 20, tcp(), Duration::from_secs(1), TIMEOUT);
        let reports = collect_for(&mut schedule, Duration::from_millis(600)).await;
        assert!(
            matches!(
                reports[..],
                [Report {
                    probe: 2,
                    tag: 20,
                    ..
                }]
            ),
            "{reports:?}"
        );
    }

    #[tokio::test]
    async fn a_check_in_flight_reports_with_the_tag_its_probe_has_when_it_ends() {
        // Accepts and never answers: the HTTP check hangs until its timeout.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = hung.local_addr().expect("addr").port();
        let (accepted, mut in_flight) = tokio::sync::mpsc::channel(8);
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = hung.accept().await {
                open.push(socket);
                let _ = accepted.send(()).await;
            }
        });
        let localhost = "127.0.0.1".parse().expect("ip");
        let probe =
            Probe::new(&http_plan(port), localhost, &mut Default::default()).expect("probe");
        let mut schedule = Schedule::default();
        let timeout = Duration::from_millis(300);
        schedule.add(3, 30, probe, Duration::from_secs(30), timeout);
        let mut batch = Vec::new();
        tokio::select! {
            _ = in_flight.recv() => {}
            () = schedule.next(&mut batch, 64) => panic!("reported before it began: {batch:?}"),
        }
        assert!(schedule.retag(3, 31));
        assert!(!schedule.retag(4, 41), "no probe 4");
        let reports = collect(&mut schedule, |all| !all.is_empty()).await;
        assert!(
            matches!(
                reports[..],
                [Report {
                    probe: 3,
                    tag: 31,
                    outcome: Err(_),
                    ..
                }]
            ),
            "{reports:?}"
        );
        held.abort();
    }

    #[tokio::test]
    async fn a_removed_probe_is_not_run_again() {
        let (_reserved, addr) = closed_port("127.0.0.1");
        let mut schedule = Schedule::default();
        schedule.add(
            7,
            7,
            Probe::Tcp {
                target: addr,
                sockets: Default::default(),
            },
            INTERVAL,
            TIMEOUT,
        );
        let first = collect(&mut schedule, |all| !all.is_empty()).await;
        assert!(
            matches!(
                first[..],
                [Report {
                    probe: 7,
                    outcome: Err(_),
                    ..
                }]
            ),
            "{first:?}"
        );

        assert_eq!(schedule.retain(|id| id != 7), 1);
        assert!(!schedule.contains(7));
        let mut batch = Vec::new();
        let waited = tokio::time::timeout(INTERVAL * 6, schedule.next(&mut batch, 64)).await;
        assert!(waited.is_err(), "no report after removal: {batch:?}");
    }
}
