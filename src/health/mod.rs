//! The check plane: schedules probes, runs member state machines and policies, and publishes
//! a new snapshot whenever a service's answer changes.
//!
//! One task owns all health state, with no locks: it begins every check from a [`Schedule`]
//! (a check that must wait finishes as a short task bounded by its own timeout, so a slow
//! backend delays nobody else), applies their results, and takes operator commands (status,
//! overrides, reload) over a channel. The query path only ever sees the snapshots it
//! publishes, and nothing here ever waits on the query path.

pub mod admin;
pub mod due;
pub mod probe;
pub mod schedule;
pub mod sockets;
pub mod state;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::rr::{LowerName, Name};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::{CheckPlan, Plan, ServicePlan};
use crate::metrics::{MemberCounters, MemberSeries, Metrics, ServiceLabels, ZoneLabels};
use crate::notify::{AnswerChange, Delivery};
use crate::policy::{self, FamilyAnswers, Selection};
use crate::snapshot::{
    ServerStrings, ServiceRecords, Snapshot, SnapshotCell, ZoneSnapshot, later_serial, next_serial,
};
use crate::status::{CheckStatus, MemberStatus, ServiceStatus, StateFileStatus, Status};
use admin::{AdminOverride, Damaged, SaveTicket, SavedOverride, Saver};
use probe::Probe;
use schedule::{Report, Schedule};
use state::{Failure, MemberHealth, State};

/// A member of a configured service, with its health and the id of its probe in the schedule.
#[derive(Debug)]
struct Member {
    addr: IpAddr,
    probe: u64,
    health: MemberHealth,
    last_check: Option<LastCheck>,
    /// This member's check counts and state as exported to Prometheus.
    counters: Arc<MemberCounters>,
}

/// The most recent finished check, as cheap to keep as possible (formatted on `status`).
#[derive(Debug, Clone)]
struct LastCheck {
    ok: bool,
    took: Duration,
    error: Option<Failure>,
    at: SystemTime,
}

impl LastCheck {
    fn status(&self) -> CheckStatus {
        CheckStatus {
            result: if self.ok { "ok" } else { "fail" }.to_string(),
            latency_ms: self.took.as_secs_f64() * 1000.0,
            error: self.error.as_deref().map(str::to_string),
            at: rfc3339(self.at),
        }
    }
}

/// Where a member's overrides are kept: the service name (lower-cased) and the address.
type MemberKey = (LowerName, IpAddr);

/// Health of every member and the answers that follow from it.
pub struct Monitor {
    plan: Plan,
    /// `members[service][member]`, indexed as in the plan.
    members: Vec<Vec<Member>>,
    /// `answers[service]`: what each family of the service answers now.
    answers: Vec<FamilyAnswers>,
    /// `records[service]`: `answers[service]` rendered, shared by every snapshot until the
    /// answer changes.
    records: Vec<Arc<ServiceRecords>>,
    /// Current SOA serial per zone.
    serials: Vec<u32>,
    /// The CHAOS strings every snapshot carries.
    server_strings: Arc<ServerStrings>,
    /// Operator overrides, with when they were set.
    overrides: HashMap<MemberKey, (AdminOverride, SystemTime)>,
    metrics: Arc<Metrics>,
    /// Where answer changes go to be sent to webhooks.
    events: Option<mpsc::Sender<Delivery>>,
    next_probe: u64,
    /// When a check last logged that it could not be made for want of descriptors (logged at
    /// most once a second, however many checks hit it).
    no_result_logged: Option<Instant>,
    /// Writes the state file, once the check plane runs.
    saver: Option<Saver>,
    /// Whether the overrides changed before the saver started.
    unsaved: bool,
    /// The damaged state file found at start, if any.
    damaged: Option<Damaged>,
    /// The config generation: 1 at start, one more for every reload.
    generation: u64,
}

/// Why an override could not be set.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such service.
    #[error("no service named {0}")]
    UnknownService(String),
    /// The service has no such member.
    #[error("{service} has no member {member}")]
    UnknownMember {
        /// The service.
        service: String,
        /// The address asked for.
        member: IpAddr,
    },
    /// The check plane has stopped (the server is shutting down).
    #[error("the check plane has stopped")]
    Stopped,
}

/// What a reload changed, for the log and the API.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadSummary {
    /// The config generation now served: 1 at start, one more for every reload applied.
    pub generation: u64,
    /// Zones served now.
    pub zones: usize,
    /// Services configured now.
    pub services: usize,
    /// Members whose check did not change and kept their health.
    pub members_kept: usize,
    /// Members added or with a changed check, starting unknown.
    pub members_started: usize,
    /// Members no longer checked.
    pub members_stopped: usize,
}

enum Command {
    Status(oneshot::Sender<Status>),
    SetAdmin {
        service: String,
        member: IpAddr,
        admin: Option<AdminOverride>,
        reply: oneshot::Sender<Result<Option<SaveTicket>, AdminError>>,
    },
    Reload(Box<Plan>, oneshot::Sender<ReloadSummary>),
}

/// A handle on the running check plane, for the API and signal handlers.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
}

impl Control {
    /// The status of every service and member; None once the check plane has stopped.
    pub async fn status(&self) -> Option<Status> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Sets (`Some`) or clears (`None`) an override; it applies to the very next query. The
    /// ticket waits for it to reach the state file.
    pub async fn set_admin(
        &self,
        service: &str,
        member: IpAddr,
        admin: Option<AdminOverride>,
    ) -> Result<Option<SaveTicket>, AdminError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::SetAdmin {
            service: service.to_string(),
            member,
            admin,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }

    /// Replaces the running plan with `plan`, keeping the health of unchanged members.
    pub async fn reload(&self, plan: Plan) -> Option<ReloadSummary> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Reload(Box::new(plan), reply))
            .await
            .ok()?;
        answer.await.ok()
    }
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

    /// Starts from a damaged state file (see [`admin::recover`]): every configured member
    /// whose address it names is drained, and those drains are saved once checks start.
    pub fn recover_damaged(&mut self, damaged: Damaged) {
        let now = SystemTime::now();
        let mut drained = Vec::new();
        for service in &self.plan.services {
            let key = LowerName::new(&service.name);
            for member in &service.members {
                if damaged.text.contains(&member.to_string()) {
                    self.overrides
                        .insert((key.clone(), *member), (AdminOverride::Drain, now));
                    drained.push(format!("{member} of {}", service.name));
                }
            }
        }
        error!(
            error = %damaged.error,
            moved_to = ?damaged.moved_to,
            drained = drained.len(),
            "the state file is damaged ({}); started without it, kept it aside as {}, and drained every member it names until an operator says otherwise: {}",
            damaged.error,
            damaged.moved_to.as_ref().map_or("(could not move it)".to_string(), |p| p.display().to_string()),
            if drained.is_empty() { "none".to_string() } else { drained.join(", ") },
        );
        self.unsaved = true;
        self.damaged = Some(damaged);
        for s in 0..self.plan.services.len() {
            self.reselect(s, "drained after a damaged state file");
        }
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
            .map(|(((zone, services), index), serial)| {
                ZoneSnapshot::new(Arc::clone(zone), Arc::clone(index), *serial, services)
            })
            .collect();
        Snapshot {
            zones,
            server: Arc::clone(&self.server_strings),
        }
    }

    /// Starts the task that probes every member, applies the results and commands, and
    /// publishes into `cell`. Dropping the returned [`Checks`] stops it.
    pub fn start(mut self, cell: SnapshotCell) -> (Control, Checks) {
        let (commands, command_inbox) = mpsc::channel(64);
        self.saver = Some(Saver::start(
            self.plan.server.state_file.clone(),
            Arc::clone(&self.metrics),
        ));
        if std::mem::take(&mut self.unsaved) {
            self.request_save();
        }
        let mut running = Running {
            monitor: self,
            schedule: Schedule::default(),
            clients: probe::Clients::default(),
            cell,
            published: tokio::time::Instant::now(),
            unpublished: false,
        };
        let wanted: Vec<(u64, usize, usize)> = running.monitor.probe_ids().collect();
        for (id, s, m) in wanted {
            running.schedule_probe(id, s, m);
        }
        let task = tokio::spawn(running.run(command_inbox));
        (Control { commands }, Checks { task })
    }

    /// Every member's probe id with its service and member index.
    fn probe_ids(&self) -> impl Iterator<Item = (u64, usize, usize)> + '_ {
        self.members.iter().enumerate().flat_map(|(s, members)| {
            members
                .iter()
                .enumerate()
                .map(move |(m, member)| (member.probe, s, m))
        })
    }

    /// Makes `plan` the running plan. Members found in `keep` (by service, address and an
    /// identical check) carry their health over; the rest start unknown with a new probe id.
    fn install(&mut self, plan: Plan, keep: &mut HashMap<MemberKey, (CheckPlan, Member)>) {
        let now = Instant::now();
        self.generation += 1;
        let old_answers: HashMap<LowerName, FamilyAnswers> = self
            .plan
            .services
            .iter()
            .map(|s| LowerName::new(&s.name))
            .zip(std::mem::take(&mut self.answers))
            .collect();
        // Each running zone's serial and file digest, by apex.
        let old_zones: HashMap<LowerName, (u32, u64)> = self
            .plan
            .zones
            .iter()
            .zip(std::mem::take(&mut self.serials))
            .map(|(z, serial)| (z.origin_key.clone(), (serial, z.digest)))
            .collect();

        self.members = plan
            .services
            .iter()
            .map(|service| {
                let key = LowerName::new(&service.name);
                service
                    .members
                    .iter()
                    .map(|addr| match keep.remove(&(key.clone(), *addr)) {
                        Some((check, member)) if check == service.check => member,
                        _ => {
                            self.next_probe += 1;
                            Member {
                                addr: *addr,
                                probe: self.next_probe,
                                health: MemberHealth::new(now),
                                last_check: None,
                                counters: Arc::default(),
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        // A set of what is configured, so many overrides and services do not multiply.
        let configured_members: HashSet<MemberKey> = if self.overrides.is_empty() {
            HashSet::new()
        } else {
            plan.services
                .iter()
                .flat_map(|s| {
                    let key = LowerName::new(&s.name);
                    s.members.iter().map(move |m| (key.clone(), *m))
                })
                .collect()
        };
        self.overrides.retain(|(service, addr), (admin, _)| {
            let configured = configured_members.contains(&(service.clone(), *addr));
            if !configured {
                info!(service = %service, member = %addr, admin = %admin, "dropping the {admin} override of {addr} in {service}: no longer configured");
            }
            configured
        });
        self.server_strings = Arc::new(ServerStrings {
            identity: plan.server.identity.clone(),
            version: plan.server.version.clone(),
        });
        self.plan = plan;

        // Services whose answer the reload changed, with what they answered before.
        let mut changed: Vec<(usize, &FamilyAnswers)> = Vec::new();
        let mut answers = Vec::with_capacity(self.plan.services.len());
        for s in 0..self.plan.services.len() {
            let key = LowerName::new(&self.plan.services[s].name);
            let old = old_answers.get(&key);
            let new = self.select(s, old);
            if let Some(old) = old
                && *old != new
            {
                changed.push((s, old));
            }
            answers.push(new);
        }
        self.answers = answers;
        self.records = (0..self.answers.len()).map(|s| self.render(s)).collect();

        // A zone with services changes while it runs, so its serial must not go back across
        // a restart or reload; a zone without any is the file's, serial included.
        let clock = unix_now();
        self.serials = (0..self.plan.zones.len())
            .map(|z| {
                let zone = &self.plan.zones[z];
                let file_serial = zone.file_serial();
                if !self.plan.services.iter().any(|s| s.zone == z) {
                    return file_serial;
                }
                let Some(&(old, digest)) = old_zones.get(&zone.origin_key) else {
                    return later_serial(file_serial, clock);
                };
                let current = later_serial(old, file_serial);
                let edited = digest != zone.digest;
                let answers_changed = changed
                    .iter()
                    .any(|(s, _)| self.plan.services[*s].zone == z);
                if current == old && (edited || answers_changed) {
                    next_serial(old, clock)
                } else {
                    current
                }
            })
            .collect();
        // Reported once the serials are set, so events carry the serial that goes with them.
        for (s, old) in changed {
            let new = self.answers[s].clone();
            self.answer_changed(s, old, &new, "config reloaded");
        }
        self.metrics.zone_serial.clear();
        for (zone, serial) in self.plan.zones.iter().zip(&self.serials) {
            self.set_serial_metric(&zone.origin, *serial);
        }
        let mut rows = Vec::with_capacity(self.members.iter().map(Vec::len).sum());
        for (service, members) in self.plan.services.iter().zip(&self.members) {
            let name: Arc<str> = service.name.to_string().into();
            for member in members {
                member.counters.set_state(member.health.state.index());
                rows.push(MemberSeries {
                    service: Arc::clone(&name),
                    member: member.addr,
                    counters: Arc::clone(&member.counters),
                });
            }
        }
        self.metrics.members.replace(rows);
    }

    fn set_serial_metric(&self, origin: &Name, serial: u32) {
        let labels = ZoneLabels {
            zone: origin.to_string(),
        };
        self.metrics
            .zone_serial
            .get_or_create(&labels)
            .set(i64::from(serial));
    }

    /// Where `report` belongs: its service and member index, from its tag (set when the
    /// probe was scheduled, and again by every reload that keeps it). The member there must
    /// own the probe; anything else is a report from a probe no longer configured.
    fn locate(&self, report: &Report) -> Option<(usize, usize)> {
        let (s, m) = MemberIndex::from_tag(report.tag).indexes();
        let owner = self.members.get(s).and_then(|members| members.get(m))?;
        (owner.probe == report.probe).then_some((s, m))
    }

    /// Applies one report; true when some answer changed and a new snapshot is due.
    fn apply(&mut self, report: Report, index: (usize, usize)) -> bool {
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
                error!(service = %service.name, member = %member.addr, "a check of {} could not be made: this host is out of file descriptors; it counts as no result, not as a failure (see failover_dns_checks_no_result_total)", member.addr);
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
    fn transition(&mut self, s: usize, m: usize, transition: state::Transition) -> bool {
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
    fn reselect(&mut self, s: usize, reason: &str) -> bool {
        let new = self.select(s, self.answers.get(s));
        let old = std::mem::replace(&mut self.answers[s], new);
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

    /// Service `s`'s current answer as the records the query path serves.
    fn render(&self, s: usize) -> Arc<ServiceRecords> {
        let service = &self.plan.services[s];
        let addresses = self.answers[s].addresses();
        Arc::new(ServiceRecords::new(&service.name, service.ttl, &addresses))
    }

    /// Logs, counts and sends to webhooks one change of a service's answer.
    fn answer_changed(&self, s: usize, old: &FamilyAnswers, new: &FamilyAnswers, reason: &str) {
        let service = &self.plan.services[s];
        let labels = ServiceLabels {
            service: service.name.to_string(),
        };
        self.metrics.failovers.get_or_create(&labels).inc();
        let events = self
            .events
            .as_ref()
            .filter(|_| !self.plan.webhooks.is_empty());
        let hooks: Arc<[crate::config::WebhookPlan]> = self.plan.webhooks.clone().into();
        let serial = self.serials.get(service.zone).copied().unwrap_or_default();
        for ((family, old), (_, new)) in old.by_type().into_iter().zip(new.by_type()) {
            if old == new {
                continue;
            }
            log_answer_change(service, family, old, new, reason);
            let Some(events) = events else {
                continue;
            };
            let event = AnswerChange {
                event: "answer_changed",
                service: service.name.to_string(),
                family,
                from: old.addresses.clone(),
                to: new.addresses.clone(),
                failing_open: new.failing_open,
                reason: reason.to_string(),
                serial,
                at: rfc3339(SystemTime::now()),
            };
            if events.try_send((Arc::clone(&hooks), event)).is_err() {
                warn!(service = %service.name, "webhook queue full; a failover event was not sent");
            }
        }
    }

    /// The answer for service `s` from its members' states and overrides; `current` is what
    /// it answers now (for `failback = false`).
    fn select(&self, s: usize, current: Option<&FamilyAnswers>) -> FamilyAnswers {
        let service = &self.plan.services[s];
        let key = LowerName::new(&service.name);
        let family = |v4: bool| {
            let members: Vec<(IpAddr, State, Option<AdminOverride>)> = self.members[s]
                .iter()
                .filter(|m| m.addr.is_ipv4() == v4)
                .map(|m| {
                    let admin = self.overrides.get(&(key.clone(), m.addr)).map(|o| o.0);
                    (m.addr, m.health.state, admin)
                })
                .collect();
            // Drained members are left out, unless that would leave none.
            let all_drained = members
                .iter()
                .all(|(_, _, admin)| *admin == Some(AdminOverride::Drain));
            let effective: Vec<(IpAddr, State)> = members
                .iter()
                .filter(|(_, _, admin)| all_drained || *admin != Some(AdminOverride::Drain))
                .map(|(addr, state, admin)| match admin {
                    Some(AdminOverride::ForceUp) => (*addr, State::Up),
                    _ => (*addr, *state),
                })
                .collect();
            let held = current.map_or(&[][..], |c| &c.of(v4).addresses[..]);
            policy::select(service.policy, service.failback, &effective, held)
        };
        FamilyAnswers {
            v4: family(true),
            v6: family(false),
        }
    }

    fn set_admin(
        &mut self,
        service: &str,
        member: IpAddr,
        admin: Option<AdminOverride>,
    ) -> Result<(bool, Option<SaveTicket>), AdminError> {
        let wanted = Name::from_ascii(service)
            .map(|n| LowerName::new(&n))
            .map_err(|_| AdminError::UnknownService(service.to_string()))?;
        let s = self
            .plan
            .services
            .iter()
            .position(|svc| LowerName::new(&svc.name) == wanted)
            .ok_or_else(|| AdminError::UnknownService(service.to_string()))?;
        let name = self.plan.services[s].name.clone();
        if !self.plan.services[s].members.contains(&member) {
            return Err(AdminError::UnknownMember {
                service: name.to_string(),
                member,
            });
        }
        let key = (wanted, member);
        let before = self.overrides.get(&key).map(|o| o.0);
        match admin {
            Some(admin) => {
                if before != Some(admin) {
                    self.overrides.insert(key, (admin, SystemTime::now()));
                }
            }
            None => {
                self.overrides.remove(&key);
            }
        }
        let label = admin.map_or("auto".to_string(), |a| a.to_string());
        info!(service = %name, member = %member, admin = %label, "admin set member {member} of {name} to {label}");
        // In force at once; saved off this task (a stalled disk must not stall failovers).
        let changed = self.reselect(s, &format!("admin set member {member} to {label}"));
        let ticket = self
            .request_save()
            .and_then(|version| Some(self.saver.as_ref()?.ticket(version)));
        Ok((changed, ticket))
    }

    /// Hands the overrides to the saver; the version to wait for, once it runs.
    fn request_save(&mut self) -> Option<u64> {
        let saved: Vec<SavedOverride> = self
            .overrides
            .iter()
            .map(|((service, member), (admin, since))| SavedOverride {
                service: service.to_string(),
                member: *member,
                admin: *admin,
                since: admin::unix_seconds(*since),
            })
            .collect();
        match &mut self.saver {
            Some(saver) => Some(saver.save(saved)),
            None => {
                self.unsaved = true;
                None
            }
        }
    }

    fn status(&self) -> Status {
        let wall = SystemTime::now();
        let now = Instant::now();
        let services = self
            .plan
            .services
            .iter()
            .zip(&self.members)
            .zip(&self.answers)
            .map(|((service, members), answers)| {
                let key = LowerName::new(&service.name);
                ServiceStatus {
                    name: service.name.to_string(),
                    policy: service.policy.as_str().to_string(),
                    ttl: service.ttl,
                    answering: answers.addresses(),
                    failing_open: answers.failing_open(),
                    members: members
                        .iter()
                        .map(|m| MemberStatus {
                            address: m.addr,
                            state: m.health.state.to_string(),
                            admin: self.overrides.get(&(key.clone(), m.addr)).map(|o| o.0),
                            since: rfc3339(wall - now.saturating_duration_since(m.health.since)),
                            consecutive_successes: m.health.successes,
                            consecutive_failures: m.health.failures,
                            last_check: m.last_check.as_ref().map(LastCheck::status),
                        })
                        .collect(),
                }
            })
            .collect();
        let saved = match &self.saver {
            _ if self.unsaved => Err(None),
            Some(saver) => saver.saved(),
            None => Ok(()),
        };
        Status {
            generation: self.generation,
            state_file: StateFileStatus {
                path: self.plan.server.state_file.display().to_string(),
                saved: saved.is_ok(),
                error: saved.err().flatten(),
                damaged: self.damaged.as_ref().map(|d| {
                    d.moved_to
                        .as_ref()
                        .map_or("(not moved)".to_string(), |p| p.display().to_string())
                }),
            },
            services,
        }
    }
}

/// Most reports applied at a time.
const REPORT_BATCH: usize = 4096;

/// Least time between two snapshots published for check results. A snapshot is rebuilt whole
/// (2.5-5.4 ms measured at 10,000 services), so when many members change together (start-up,
/// a switch dying) their changes are published together: the first change after a quiet
/// spell is published at once, later ones wait at most this long.
const PUBLISH_GAP: Duration = Duration::from_millis(10);

/// The monitor task's state: the monitor plus the probes it runs.
struct Running {
    monitor: Monitor,
    schedule: Schedule,
    /// Sockets and HTTP clients for new probes; started afresh on reload (running probes keep
    /// theirs).
    clients: probe::Clients,
    cell: SnapshotCell,
    /// When the last snapshot was published.
    published: tokio::time::Instant,
    /// Whether answers changed since then.
    unpublished: bool,
}

impl Running {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(REPORT_BATCH);
        let publish_due = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(publish_due);
        loop {
            tokio::select! {
                () = self.schedule.next(&mut batch, REPORT_BATCH) => {
                    let mut changed = false;
                    for report in batch.drain(..) {
                        changed |= self.apply(report);
                    }
                    if changed && !self.unpublished {
                        self.unpublished = true;
                        publish_due.as_mut().reset(self.published + PUBLISH_GAP);
                    }
                }
                () = &mut publish_due, if self.unpublished => {}
                Some(command) = commands.recv() => self.command(command),
                else => return,
            }
            if self.unpublished && tokio::time::Instant::now() >= self.published + PUBLISH_GAP {
                self.publish();
            }
        }
    }

    /// Applies one report; true when an answer changed.
    fn apply(&mut self, report: Report) -> bool {
        match self.monitor.locate(&report) {
            Some(index) => self.monitor.apply(report, index),
            None => false, // from a probe stopped by a reload
        }
    }

    fn publish(&mut self) {
        self.cell.store(Arc::new(self.monitor.snapshot()));
        self.published = tokio::time::Instant::now();
        self.unpublished = false;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.monitor.status());
            }
            Command::SetAdmin {
                service,
                member,
                admin,
                reply,
            } => {
                let result = self.monitor.set_admin(&service, member, admin);
                if matches!(result, Ok((true, _))) {
                    self.publish();
                }
                let _ = reply.send(result.map(|(_, ticket)| ticket));
            }
            Command::Reload(plan, reply) => {
                let summary = self.reload(*plan);
                let _ = reply.send(summary);
            }
        }
    }

    /// Installs `plan`: unchanged members keep health and probe, the rest are started or
    /// stopped, and a new snapshot is published whatever changed.
    fn reload(&mut self, plan: Plan) -> ReloadSummary {
        let monitor = &mut self.monitor;
        let mut keep: HashMap<MemberKey, (CheckPlan, Member)> = HashMap::new();
        for (service, members) in monitor
            .plan
            .services
            .iter()
            .zip(std::mem::take(&mut monitor.members))
        {
            for member in members {
                let key = (LowerName::new(&service.name), member.addr);
                keep.insert(key, (service.check.clone(), member));
            }
        }
        let overrides = monitor.overrides.len();
        monitor.install(plan, &mut keep);
        if monitor.overrides.len() != overrides {
            monitor.request_save();
        }
        let mut summary = ReloadSummary {
            generation: monitor.generation,
            zones: monitor.plan.zones.len(),
            services: monitor.plan.services.len(),
            ..ReloadSummary::default()
        };
        // Probes of members no longer in the plan stop; kept members keep theirs (their id is
        // among the new plan's), retagged with where they are now; the rest get new ones.
        // Hash lookups: 20,000 members reload without a quadratic scan.
        let wanted: Vec<(u64, usize, usize)> = monitor.probe_ids().collect();
        let wanted_ids: HashSet<u64> = wanted.iter().map(|&(id, _, _)| id).collect();
        summary.members_stopped = self.schedule.retain(|id| wanted_ids.contains(&id));
        self.clients = probe::Clients::default();
        for (id, s, m) in wanted {
            if self.schedule.retag(id, MemberIndex::new(s, m).tag()) {
                summary.members_kept += 1;
            } else {
                summary.members_started += 1;
                self.schedule_probe(id, s, m);
            }
        }
        self.publish();
        summary
    }

    fn schedule_probe(&mut self, id: u64, s: usize, m: usize) {
        let service = &self.monitor.plan.services[s];
        let addr = self.monitor.members[s][m].addr;
        match Probe::new(&service.check, addr, &mut self.clients) {
            Ok(probe) => {
                let check = &service.check;
                let tag = MemberIndex::new(s, m).tag();
                self.schedule
                    .add(id, tag, probe, check.interval, check.timeout);
            }
            Err(e) => {
                error!(service = %service.name, member = %addr, error = %e, "cannot check member {addr}; it counts as down");
                let now = Instant::now();
                let reason = format!("cannot be checked: {e}");
                if let Some(transition) =
                    self.monitor.members[s][m].health.cannot_check(reason, now)
                    && self.monitor.transition(s, m, transition)
                {
                    self.unpublished = true;
                }
            }
        }
    }
}

/// Where a member is in the plan: `plan.services[service].members[member]`. A probe carries it
/// as its tag in the schedule, so a report finds its member without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemberIndex {
    service: u32,
    member: u32,
}

impl MemberIndex {
    /// Member `m` of service `s` (indexes that fit a plan: a config of four billion services
    /// does not load).
    fn new(s: usize, m: usize) -> Self {
        Self {
            service: u32::try_from(s).unwrap_or(u32::MAX),
            member: u32::try_from(m).unwrap_or(u32::MAX),
        }
    }

    /// As the schedule's tag.
    fn tag(self) -> u64 {
        u64::from(self.service) << 32 | u64::from(self.member)
    }

    /// From the schedule's tag.
    fn from_tag(tag: u64) -> Self {
        Self {
            service: (tag >> 32) as u32,
            member: tag as u32,
        }
    }

    /// (service, member) as indexes into the plan.
    fn indexes(self) -> (usize, usize) {
        (self.service as usize, self.member as usize)
    }
}

/// The one structured event for a change of what `family` of `service` answers.
fn log_answer_change(
    service: &ServicePlan,
    family: &str,
    old: &Selection,
    new: &Selection,
    reason: &str,
) {
    let list = |s: &Selection| {
        s.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    if new.failing_open {
        warn!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), failing_open = true, reason, "every {family} member of {} is down; failing open and answering all of them", service.name);
    } else {
        info!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), failing_open = false, reason, "{} {family} answer changed from {} to {}", service.name, list(old), list(new));
    }
}

/// The running check plane; dropping it stops the monitor task and, with it, every probe.
pub struct Checks {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `at` as RFC 3339 in UTC, to the millisecond.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn unix_now() -> u32 {
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
