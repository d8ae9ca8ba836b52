//! The check plane: schedules probes, runs member state machines and policies, and publishes
//! a new snapshot whenever a service's answer changes.
//!
//! Every member is probed by its own task, so a slow backend delays nobody else. Results flow
//! over a channel to one [`Monitor`] task, the only owner of health state: no locks. The query
//! path only ever sees the snapshots it publishes.

pub mod probe;
pub mod state;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::rr::LowerName;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::{Plan, ServicePlan};
use crate::policy::{self, Selection};
use crate::snapshot::{
    ServerStrings, ServiceRecords, Snapshot, SnapshotCell, ZoneSnapshot, later_serial, next_serial,
};
use probe::Probe;
use state::{MemberHealth, Outcome, State};

/// One probe result, addressed to its member.
#[derive(Debug)]
struct Report {
    service: usize,
    member: usize,
    outcome: Outcome,
    at: Instant,
}

/// Health of every member and the answers that follow from it.
pub struct Monitor {
    plan: Plan,
    /// `health[service][member]`, indexed as in the plan.
    health: Vec<Vec<MemberHealth>>,
    /// `answers[service]`: the IPv4 selection, then the IPv6 one.
    answers: Vec<[Selection; 2]>,
    /// Current SOA serial per zone.
    serials: Vec<u32>,
    /// The CHAOS strings every snapshot carries.
    server_strings: Arc<ServerStrings>,
}

impl Monitor {
    /// Every member unknown, every service answering its primaries, serials from the zone files
    /// or the clock, whichever is later.
    pub fn new(plan: Plan) -> Self {
        let now = Instant::now();
        let health = plan
            .services
            .iter()
            .map(|s| s.members.iter().map(|_| MemberHealth::new(now)).collect())
            .collect();
        let clock = unix_now();
        // A zone with services changes while it runs, so its serial must not go back across a
        // restart; a zone without any is the file's, serial included.
        let serials = (0..plan.zones.len())
            .map(|z| {
                let file_serial = plan.zones[z].file_serial();
                if plan.services.iter().any(|s| s.zone == z) {
                    later_serial(file_serial, clock)
                } else {
                    file_serial
                }
            })
            .collect();
        let server_strings = Arc::new(ServerStrings {
            identity: plan.server.identity.clone(),
            version: plan.server.version.clone(),
        });
        let mut monitor = Self {
            plan,
            health,
            answers: Vec::new(),
            serials,
            server_strings,
        };
        monitor.answers = (0..monitor.plan.services.len())
            .map(|i| monitor.select(i))
            .collect();
        monitor
    }

    /// The snapshot of the current answers.
    pub fn snapshot(&self) -> Snapshot {
        let mut services: Vec<HashMap<LowerName, ServiceRecords>> =
            vec![HashMap::new(); self.plan.zones.len()];
        for (service, [v4, v6]) in self.plan.services.iter().zip(&self.answers) {
            let addresses = v4.addresses.iter().chain(&v6.addresses).copied();
            let records = ServiceRecords::new(&service.name, service.ttl, addresses);
            services[service.zone].insert(LowerName::new(&service.name), records);
        }
        let zones = self
            .plan
            .zones
            .iter()
            .zip(services)
            .zip(&self.serials)
            .map(|((zone, services), serial)| {
                ZoneSnapshot::new(Arc::clone(zone), *serial, services)
            })
            .collect();
        Snapshot {
            zones,
            server: Arc::clone(&self.server_strings),
        }
    }

    /// Starts a probe task per member and the task that applies their results, publishing into
    /// `cell`. Dropping the returned [`Checks`] stops all of them.
    pub fn start(self, cell: SnapshotCell) -> Checks {
        let (reports, mut inbox) = mpsc::channel(1024);
        let mut tasks = JoinSet::new();
        for (s, service) in self.plan.services.iter().enumerate() {
            for (m, addr) in service.members.iter().enumerate() {
                match Probe::new(&service.check, *addr) {
                    Ok(probe) => {
                        tasks.spawn(probe_loop(
                            probe,
                            s,
                            m,
                            service.check.interval,
                            service.check.timeout,
                            reports.clone(),
                        ));
                    }
                    Err(e) => {
                        error!(service = %service.name, member = %addr, error = %e, "cannot check member; it stays unknown")
                    }
                }
            }
        }
        let mut monitor = self;
        tasks.spawn(async move {
            while let Some(report) = inbox.recv().await {
                if monitor.apply(report) {
                    cell.store(Arc::new(monitor.snapshot()));
                }
            }
        });
        Checks { _tasks: tasks }
    }

    /// Applies one report; true when some answer changed and a new snapshot is due.
    fn apply(&mut self, report: Report) -> bool {
        let service = &self.plan.services[report.service];
        let member = service.members[report.member];
        let health = &mut self.health[report.service][report.member];
        let Some(transition) = health.observe(
            report.outcome,
            service.check.rise,
            service.check.fall,
            report.at,
        ) else {
            return false;
        };
        info!(
            service = %service.name,
            member = %member,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            "member {member} of {} is {}: {}",
            service.name,
            transition.to,
            transition.reason,
        );
        let new = self.select(report.service);
        let old = std::mem::replace(&mut self.answers[report.service], new);
        if old == self.answers[report.service] {
            return false;
        }
        log_answer_change(service, &old, &self.answers[report.service]);
        let zone = service.zone;
        self.serials[zone] = next_serial(self.serials[zone], unix_now());
        true
    }

    fn select(&self, s: usize) -> [Selection; 2] {
        let service = &self.plan.services[s];
        let current = self.answers.get(s);
        let family = |v4: bool| {
            let members: Vec<(IpAddr, State)> = service
                .members
                .iter()
                .zip(&self.health[s])
                .filter(|(addr, _)| addr.is_ipv4() == v4)
                .map(|(addr, health)| (*addr, health.state))
                .collect();
            let held = current.map_or(&[][..], |c| &c[usize::from(!v4)].addresses[..]);
            policy::select(service.policy, service.failback, &members, held)
        };
        [family(true), family(false)]
    }
}

fn log_answer_change(service: &ServicePlan, old: &[Selection; 2], new: &[Selection; 2]) {
    for (family, (old, new)) in ["A", "AAAA"].iter().zip(old.iter().zip(new)) {
        if old == new {
            continue;
        }
        let list = |s: &Selection| {
            s.addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if new.failing_open {
            warn!(service = %service.name, family, answer = %list(new), "every {family} member of {} is down; failing open and answering all of them", service.name);
        } else {
            info!(service = %service.name, family, from = %list(old), to = %list(new), "{} {family} answer changed from {} to {}", service.name, list(old), list(new));
        }
    }
}

/// The running check plane; dropping it stops every probe.
pub struct Checks {
    _tasks: JoinSet<()>,
}

/// Checks one member forever: first within a tenth of an interval of start-up, then every
/// interval with ±5% jitter so that many members configured alike do not probe in lockstep.
async fn probe_loop(
    probe: Probe,
    service: usize,
    member: usize,
    interval: Duration,
    timeout: Duration,
    reports: mpsc::Sender<Report>,
) {
    let mut next = tokio::time::Instant::now() + interval.mul_f64(rand::random_range(0.0..0.1));
    loop {
        tokio::time::sleep_until(next).await;
        let started = tokio::time::Instant::now();
        let outcome = match tokio::time::timeout(timeout, probe.run()).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!(
                "timeout after {}",
                humantime::format_duration(timeout)
            )),
        };
        let report = Report {
            service,
            member,
            outcome,
            at: Instant::now(),
        };
        if reports.send(report).await.is_err() {
            return;
        }
        next = started + interval.mul_f64(rand::random_range(0.95..1.05));
    }
}

fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}
