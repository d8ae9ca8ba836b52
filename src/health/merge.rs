//! Reload merging: a new plan replaces the running one, and every member whose service,
//! address and check are unchanged keeps its health and its probe.
//!
//! The rules: members are matched by (service, address) and kept only with an identical
//! check; overrides of members no longer configured are dropped; serials follow
//! [`crate::snapshot::serial_after_reload`]; a changed answer is reported as an event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::rr::LowerName;
use tracing::info;

use super::ReloadSummary;
use super::monitor::{Member, MemberIndex, MemberKey, Monitor, unix_now};
use super::probe;
use super::running::Running;
use super::state::MemberHealth;
use crate::config::{CheckPlan, Plan};
use crate::metrics::MemberSeries;
use crate::policy::FamilyAnswers;
use crate::snapshot::{ServerStrings, serial_after_reload};

impl Monitor {
    /// Makes `plan` the running plan. Members found in `keep` (by service, address and an
    /// identical check) carry their health over; the rest start unknown with a new probe id.
    pub(super) fn install(
        &mut self,
        plan: Plan,
        keep: &mut HashMap<MemberKey, (CheckPlan, Member)>,
    ) {
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
                    .map(|plan| match keep.remove(&(key.clone(), plan.address)) {
                        Some((check, member))
                            if check == service.check
                                && member.check_target == plan.check_target =>
                        {
                            member
                        }
                        _ => {
                            self.next_probe += 1;
                            Member {
                                addr: plan.address,
                                check_target: plan.check_target,
                                held: None,
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
                    s.members.iter().map(move |m| (key.clone(), m.address))
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
        self.failbacks.clear();
        for s in 0..self.plan.services.len() {
            let key = LowerName::new(&self.plan.services[s].name);
            let old = old_answers.get(&key);
            let new = self.select(s, old);
            if let Some(due) = new.failback_due() {
                self.failbacks.insert((due, s));
            }
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
                let running = old_zones.get(&zone.origin_key);
                let edited = running.is_some_and(|&(_, digest)| digest != zone.digest);
                let answers_changed = changed
                    .iter()
                    .any(|(s, _)| self.plan.services[*s].zone == z);
                serial_after_reload(
                    self.plan.services.iter().any(|s| s.zone == z),
                    zone.file_serial(),
                    running.map(|&(serial, _)| serial),
                    edited || answers_changed,
                    clock,
                )
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
}

impl Running {
    /// Installs `plan`: unchanged members keep health and probe, the rest are started or
    /// stopped, and a new snapshot is published whatever changed.
    pub(super) fn reload(&mut self, plan: Plan) -> ReloadSummary {
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
        self.clients = probe::Clients::new(self.monitor.plan.server.max_scripts);
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
}
