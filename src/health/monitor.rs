//! The monitor: every member's health and the answers that follow from it.
//!
//! Owned by the one check-plane task (`running`); nothing here does I/O or waits.
//! A check's report changes a member's state, a state change reselects its service's answer,
//! and a changed answer raises its zone's serial and is rendered for the next snapshot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::rr::{LowerName, Name};
use tokio::sync::mpsc;
use tracing::{error, info};

use super::admin::{Damaged, SavedOverride, Saver};
use super::schedule::Report;
use super::state::{self, Failure, MemberHealth};
use crate::config::Plan;
use crate::metrics::{MemberCounters, Metrics};
use crate::notify::Delivery;
use crate::policy::AdminOverride;
use crate::policy::{self, FamilyAnswers};
use crate::snapshot::{ServerStrings, ServiceRecords, Snapshot, ZoneSnapshot, next_serial};
use crate::status::CheckStatus;

/// A member of a configured service, with its health and the id of its probe in the schedule.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) addr: IpAddr,
    /// Where its check connects (`check_address`, `port`).
    pub(super) check_target: std::net::SocketAddr,
    /// With `hold = true`: whether its held connection is open now.
    pub(super) held: Option<Arc<std::sync::atomic::AtomicBool>>,
    pub(super) probe: u64,
    pub(super) health: MemberHealth,
    pub(super) last_check: Option<LastCheck>,
    /// This member's check counts and state as exported to Prometheus.
    pub(super) counters: Arc<MemberCounters>,
}

/// The most recent finished check, as cheap to keep as possible (formatted on `status`).
#[derive(Debug, Clone)]
pub(super) struct LastCheck {
    pub(super) ok: bool,
    pub(super) took: Duration,
    pub(super) error: Option<Failure>,
    pub(super) at: SystemTime,
}

impl LastCheck {
    pub(super) fn status(&self) -> CheckStatus {
        CheckStatus {
            result: if self.ok { "ok" } else { "fail" }.to_string(),
            latency_ms: self.took.as_secs_f64() * 1000.0,
            error: self.error.as_deref().map(str::to_string),
            at: rfc3339(self.at),
        }
    }
}

/// Where a member's overrides are kept: the service name (lower-cased) and the address.
pub(super) type MemberKey = (LowerName, IpAddr);

/// Health of every member and the answers that follow from it.
pub struct Monitor {
    pub(super) plan: Plan,
    /// `members[service][member]`, indexed as in the plan.
    pub(super) members: Vec<Vec<Member>>,
    /// `answers[service]`: what each family of the service answers now.
    pub(super) answers: Vec<FamilyAnswers>,
    /// `records[service]`: `answers[service]` rendered, shared by every snapshot until the
    /// answer changes.
    pub(super) records: Vec<Arc<ServiceRecords>>,
    /// Current SOA serial per zone.
    pub(super) serials: Vec<u32>,
    /// The CHAOS strings every snapshot carries.
    pub(super) server_strings: Arc<ServerStrings>,
    /// Operator overrides, with when they were set.
    pub(super) overrides: HashMap<MemberKey, (AdminOverride, SystemTime)>,
    pub(super) metrics: Arc<Metrics>,
    /// Where answer changes go to be sent to webhooks.
    pub(super) events: Option<mpsc::Sender<Delivery>>,
    pub(super) next_probe: u64,
    /// When a check last logged that it could not be made for want of descriptors (logged at
    /// most once a second, however many checks hit it).
    pub(super) no_result_logged: Option<Instant>,
    /// Writes the state file, once the check plane runs.
    pub(super) saver: Option<Saver>,
    /// Whether the overrides changed before the saver started.
    pub(super) unsaved: bool,
    /// The damaged state file found at start, if any.
    pub(super) damaged: Option<Damaged>,
    /// The config generation: 1 at start, one more for every reload.
    pub(super) generation: u64,
    /// Counts the snapshots published, for whoever follows them (NOTIFY).
    pub(super) publishes: Option<tokio::sync::watch::Sender<u64>>,
    /// Where answer changes go for `/watch`.
    pub(super) watch: Option<Arc<crate::watch::Hub>>,
    /// Failbacks held back by `failback_delay`: when each service is to be looked at again.
    pub(super) failbacks: std::collections::BTreeSet<(Instant, usize)>,
}

impl Monitor {
    /// Every member unknown, every service answering its primaries, serials from the zone
    /// files or the clock, and the overrides saved in the state file.
    pub fn new(
        plan: Plan,
        saved: Vec<SavedOverride>,
        metrics: Arc<Metrics>,
        events: Option<mpsc::Sender<Delivery>>,
    ) -> Self {
        let mut monitor = Self {
            server_strings: Arc::new(ServerStrings::default()),
            serials: Vec::new(),
            members: Vec::new(),
            answers: Vec::new(),
            records: Vec::new(),
            overrides: HashMap::new(),
            metrics,
            events,
            next_probe: 0,
            no_result_logged: None,
            saver: None,
            unsaved: false,
            damaged: None,
            generation: 0,
            publishes: None,
            watch: None,
            failbacks: std::collections::BTreeSet::new(),
            plan,
        };
        for saved in saved {
            let Ok(name) = Name::from_ascii(&saved.service) else {
                continue;
            };
            // `load` bounds `since`; should that ever change, now beats a panic.
            let since = SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(saved.since))
                .unwrap_or_else(SystemTime::now);
            monitor
                .overrides
                .insert((LowerName::new(&name), saved.member), (saved.admin, since));
        }
        let plan = monitor.plan.clone();
        monitor.install(plan, &mut HashMap::new());
        monitor
    }

    /// Publishes every answer change from now on to `hub`, for `/watch`.
    pub fn watch_with(&mut self, hub: Arc<crate::watch::Hub>) {
        self.watch = Some(hub);
    }

    /// Counts each snapshot published from now on in `publishes`.
    pub fn announce_publishes(&mut self, publishes: tokio::sync::watch::Sender<u64>) {
        self.publishes = Some(publishes);
    }

    /// The snapshot of the current answers.
    pub fn snapshot(&self) -> Snapshot {
        let mut services: Vec<HashMap<LowerName, Arc<ServiceRecords>>> =
            vec![HashMap::new(); self.plan.zones.len()];
        for (service, records) in self.plan.services.iter().zip(&self.records) {
            services[service.zone].insert(LowerName::new(&service.name), Arc::clone(records));
        }
        let zones = self
            .plan
            .zones
            .iter()
            .zip(services)
            .zip(&self.plan.indexes)
            .zip(&self.serials)
            .zip(&self.plan.transfers)
            .map(|((((zone, services), index), serial), transfer)| {
                ZoneSnapshot::new(Arc::clone(zone), Arc::clone(index), *serial, services)
                    .with_transfer(Arc::clone(transfer))
            })
            .collect();
        Snapshot {
            zones,
            server: Arc::clone(&self.server_strings),
            keys: Arc::clone(&self.plan.keys),
        }
    }

    /// Every member's probe id with its service and member index.
    pub(super) fn probe_ids(&self) -> impl Iterator<Item = (u64, usize, usize)> + '_ {
        self.members.iter().enumerate().flat_map(|(s, members)| {
            members
                .iter()
                .enumerate()
                .map(move |(m, member)| (member.probe, s, m))
        })
    }

    /// Where `report` belongs: its service and member index, from its tag (set when the
    /// probe was scheduled, and again by every reload that keeps it). The member there must
    /// own the probe; anything else is a report from a probe no longer configured.
    pub(super) fn locate(&self, report: &Report) -> Option<(usize, usize)> {
        let (s, m) = MemberIndex::from_tag(report.tag).indexes();
        let owner = self.members.get(s).and_then(|members| members.get(m))?;
        (owner.probe == report.probe).then_some((s, m))
    }

    /// Applies one report; true when some answer changed and a new snapshot is due.
    pub(super) fn apply(&mut self, report: Report, index: (usize, usize)) -> bool {
        let (s, m) = index;
        let service = &self.plan.services[s];
        let member = &mut self.members[s][m];
        if let Err(failure) = &report.outcome
            && state::is_no_result(failure)
        {
            self.metrics.checks_no_result.inc();
            let now = Instant::now();
            if self
                .no_result_logged
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
            {
                self.no_result_logged = Some(now);
                error!(service = %service.name, member = %member.addr, "a check of {} could not be made ({failure}); it counts as no result, not as a failure (see failover_dns_checks_no_result_total)", member.addr);
            }
            // Nothing about the member changes: not its state, not its counts.
            return false;
        }
        let ok = report.outcome.is_ok();
        member.counters.count_check(ok);
        if ok {
            self.metrics
                .check_seconds
                .observe(report.took.as_secs_f64());
        }
        let transition = member.health.observe(
            &report.outcome,
            service.check.rise,
            service.check.fall,
            report.at,
        );
        member.last_check = Some(LastCheck {
            ok,
            took: report.took,
            error: report.outcome.err(),
            at: SystemTime::now(),
        });
        let Some(transition) = transition else {
            return false;
        };
        self.transition(s, m, transition)
    }

    /// Logs and counts member `m` of service `s` changing state, and reselects the answer;
    /// true when the answer changed.
    pub(super) fn transition(&mut self, s: usize, m: usize, transition: state::Transition) -> bool {
        let service = &self.plan.services[s];
        let member = &self.members[s][m];
        member.counters.set_state(transition.to.index());
        let addr = member.addr;
        info!(
            service = %service.name,
            member = %addr,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            "member {addr} of {} is {}: {}",
            service.name,
            transition.to,
            transition.reason,
        );
        let reason = format!("member {addr} is {}: {}", transition.to, transition.reason);
        self.reselect(s, &reason)
    }

    /// Recomputes service `s`'s answer; true (with the serial raised) when it changed.
    pub(super) fn reselect(&mut self, s: usize, reason: &str) -> bool {
        let new = self.select(s, self.answers.get(s));
        let old = std::mem::replace(&mut self.answers[s], new);
        if let Some(due) = old.failback_due() {
            self.failbacks.remove(&(due, s));
        }
        if let Some(due) = self.answers[s].failback_due() {
            self.failbacks.insert((due, s));
        }
        if old == self.answers[s] {
            return false;
        }
        self.records[s] = self.render(s);
        let zone = self.plan.services[s].zone;
        self.serials[zone] = next_serial(self.serials[zone], unix_now());
        self.set_serial_metric(&self.plan.zones[zone].origin, self.serials[zone]);
        let new = self.answers[s].clone();
        self.answer_changed(s, &old, &new, reason);
        true
    }

    /// When the next failback held back by `failback_delay` is due, if any.
    pub(super) fn next_failback(&self) -> Option<Instant> {
        self.failbacks.first().map(|(at, _)| *at)
    }

    /// Looks again at every service whose held-back failback is due at `now`; true when some
    /// answer changed.
    pub(super) fn failbacks_due(&mut self, now: Instant) -> bool {
        let mut changed = false;
        while let Some(&(at, s)) = self.failbacks.first() {
            if at > now {
                break;
            }
            self.failbacks.remove(&(at, s));
            let delay = humantime::format_duration(self.plan.services[s].failback_delay);
            changed |= self.reselect(s, &format!("failback_delay {delay} passed"));
        }
        changed
    }

    /// Service `s`'s current answer as the records the query path serves.
    pub(super) fn render(&self, s: usize) -> Arc<ServiceRecords> {
        let service = &self.plan.services[s];
        let answers = &self.answers[s];
        let addresses = answers.addresses();
        let weights: Vec<u32> = [&answers.v4, &answers.v6]
            .iter()
            .flat_map(|s| s.weights.iter().copied())
            .collect();
        Arc::new(ServiceRecords::weighted(
            &service.name,
            service.ttl,
            &addresses,
            &weights,
        ))
    }

    /// The answer for service `s` from its members' states and overrides at `now`; `current`
    /// is what it answers now (for `failback = false` and `failback_delay`).
    pub(super) fn select(&self, s: usize, current: Option<&FamilyAnswers>) -> FamilyAnswers {
        let now = Instant::now();
        let service = &self.plan.services[s];
        let key = LowerName::new(&service.name);
        let none = policy::Selection::default();
        let family = |v4: bool| {
            let members: Vec<policy::OverriddenMember> = self.members[s]
                .iter()
                .zip(&service.members)
                .filter(|(m, _)| m.addr.is_ipv4() == v4)
                .map(|(m, plan)| {
                    let admin = self.overrides.get(&(key.clone(), m.addr)).map(|o| o.0);
                    let candidate = policy::Candidate {
                        addr: m.addr,
                        state: m.health.state,
                        tier: plan.tier,
                        weight: plan.weight,
                        since: Some(m.health.since),
                    };
                    (candidate, admin)
                })
                .collect();
            let effective = policy::apply_overrides(&members);
            let fallback: Vec<IpAddr> = service
                .fallback
                .iter()
                .filter(|a| a.is_ipv4() == v4)
                .copied()
                .collect();
            let rules = policy::Rules {
                policy: service.policy,
                failback: service.failback,
                failback_delay: service.failback_delay,
                max_answers: service.max_answers,
                when_all_down: service.when_all_down,
                fallback: &fallback,
            };
            let current = current.map_or(&none, |c| c.of(v4));
            policy::select(&rules, &effective, current, now)
        };
        FamilyAnswers {
            v4: family(true),
            v6: family(false),
        }
    }
}

/// Where a member is in the plan: `plan.services[service].members[member]`. A probe carries it
/// as its tag in the schedule, so a report finds its member without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MemberIndex {
    pub(super) service: u32,
    pub(super) member: u32,
}

impl MemberIndex {
    /// Member `m` of service `s` (indexes that fit a plan: a config of four billion services
    /// does not load).
    pub(super) fn new(s: usize, m: usize) -> Self {
        Self {
            service: u32::try_from(s).unwrap_or(u32::MAX),
            member: u32::try_from(m).unwrap_or(u32::MAX),
        }
    }

    /// As the schedule's tag.
    pub(super) fn tag(self) -> u64 {
        u64::from(self.service) << 32 | u64::from(self.member)
    }

    /// From the schedule's tag.
    pub(super) fn from_tag(tag: u64) -> Self {
        Self {
            service: (tag >> 32) as u32,
            member: tag as u32,
        }
    }

    /// (service, member) as indexes into the plan.
    pub(super) fn indexes(self) -> (usize, usize) {
        (self.service as usize, self.member as usize)
    }
}

/// `at` as RFC 3339 in UTC, to the millisecond.
pub(super) fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

pub(super) fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::MemberIndex;

    #[test]
    fn a_member_index_survives_its_trip_through_the_schedules_tag() {
        for (s, m) in [(0, 0), (1, 0), (0, 1), (70_000, 3), (u32::MAX as usize, 9)] {
            let index = MemberIndex::new(s, m);
            assert_eq!(MemberIndex::from_tag(index.tag()), index);
            assert_eq!(index.indexes(), (s, m));
        }
        assert_ne!(MemberIndex::new(1, 0).tag(), MemberIndex::new(0, 1).tag());
    }
}
