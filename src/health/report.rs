//! What the monitor tells the outside: `/status`, answer-change events (log, metrics,
//! webhooks) and the zone serial metric.
//!
//! Reads the monitor's state and never changes it; webhook events are queued, never awaited.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hickory_proto::rr::{LowerName, Name};
use tracing::{info, warn};

use super::monitor::{LastCheck, Monitor, rfc3339};
use crate::config::ServicePlan;
use crate::metrics::{ServiceLabels, ZoneLabels};
use crate::notify::AnswerChange;
use crate::policy::{FamilyAnswers, Selection};
use crate::status::{MemberStatus, PendingFailback, ServiceStatus, StateFileStatus, Status};

impl Monitor {
    /// Logs, counts and sends to webhooks one change of a service's answer.
    pub(super) fn answer_changed(
        &self,
        s: usize,
        old: &FamilyAnswers,
        new: &FamilyAnswers,
        reason: &str,
    ) {
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
            if let (None, Some(mode)) = (old.all_down, new.all_down) {
                let labels = crate::metrics::AllDownLabels {
                    service: service.name.to_string(),
                    family: family.to_string(),
                    mode: mode.as_str().to_string(),
                };
                self.metrics.all_down.get_or_create(&labels).inc();
            }
            if events.is_none() && self.watch.is_none() {
                continue;
            }
            let event = AnswerChange {
                event: "answer_changed",
                service: service.name.to_string(),
                family,
                from: old.addresses.clone(),
                to: new.addresses.clone(),
                failing_open: new.failing_open(),
                reason: reason.to_string(),
                serial,
                at: rfc3339(SystemTime::now()),
            };
            if let Some(watch) = &self.watch {
                watch.publish(event.clone());
            }
            if let Some(events) = events
                && events.try_send((Arc::clone(&hooks), event)).is_err()
            {
                warn!(service = %service.name, "webhook queue full; a failover event was not sent");
            }
        }
    }

    pub(super) fn set_serial_metric(&self, origin: &Name, serial: u32) {
        let labels = ZoneLabels {
            zone: origin.to_string(),
        };
        self.metrics
            .zone_serial
            .get_or_create(&labels)
            .set(i64::from(serial));
    }

    /// Every service and member as `GET /status` shows them, at wall time `wall` and
    /// monotonic time `now` (a member's `since` is `wall` less how long ago it changed).
    pub(super) fn status_at(&self, wall: SystemTime, now: Instant) -> Status {
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
                    when_all_down: service.when_all_down.as_str().to_string(),
                    all_down: answers.all_down().map(|mode| mode.as_str().to_string()),
                    pending_failback: answers.pending_failback().map(|(to, at)| PendingFailback {
                        to: to.clone(),
                        at: rfc3339(wall + at.saturating_duration_since(now)),
                    }),
                    members: members
                        .iter()
                        .zip(&service.members)
                        .map(|(m, plan)| MemberStatus {
                            address: m.addr,
                            check: Some(m.check_target),
                            tier: plan.tier,
                            weight: plan.weight,
                            held: m
                                .held
                                .as_ref()
                                .map(|open| open.load(std::sync::atomic::Ordering::Relaxed)),
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
            // Filled in by the API from the NOTIFY senders, which the check plane never waits on.
            notify: Vec::new(),
        }
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
    use crate::config::WhenAllDown;
    match new.all_down {
        Some(WhenAllDown::AnswerAll) => {
            warn!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), failing_open = true, when_all_down = "answer-all", reason, "every {family} member of {} is down; failing open and answering all of them", service.name);
        }
        Some(WhenAllDown::Fallback) => {
            warn!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), when_all_down = "fallback", reason, "every {family} member of {} is down; answering its fallback {}", service.name, list(new));
        }
        Some(WhenAllDown::AnswerNone) => {
            warn!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), when_all_down = "answer-none", reason, "every {family} member of {} is down; answering no {family} records", service.name);
        }
        None => {
            info!(event = "answer_changed", service = %service.name, family, from = %list(old), to = %list(new), failing_open = false, reason, "{} {family} answer changed from {} to {}", service.name, list(old), list(new));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::health::monitor::MemberIndex;
    use crate::health::schedule::Report;
    use crate::metrics::Metrics;
    use crate::policy::AdminOverride;

    const ZONE: &str = "$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";
    const CONFIG: &str = "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"z.zone\"\n\n[[service]]\nname = \"www.svc.example.test.\"\nmembers = [\"192.0.2.11\", \"192.0.2.12\"]\n[service.check]\nkind = \"tcp\"\nport = 80\nfall = 2\n";

    fn monitor() -> (tempfile::TempDir, Monitor) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("z.zone"), ZONE).expect("zone");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, CONFIG).expect("config");
        let plan = crate::config::load(&path).expect("config loads");
        let monitor = Monitor::new(plan, Vec::new(), Arc::new(Metrics::new()), None);
        (dir, monitor)
    }

    /// A refused check of the primary, finished at `at`.
    fn primary_refused(monitor: &mut Monitor, at: Instant) {
        let report = Report {
            probe: monitor.members[0][0].probe,
            tag: MemberIndex::new(0, 0).tag(),
            outcome: Err("connection refused".into()),
            took: Duration::from_millis(3),
            at,
        };
        let index = monitor.locate(&report).expect("the primary's report");
        monitor.apply(report, index);
    }

    #[test]
    fn status_shows_members_answers_and_overrides_as_the_monitor_holds_them() {
        let (_dir, mut monitor) = monitor();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let started = monitor.members[0][0].health.since;
        let (primary, standby) = (monitor.members[0][0].addr, monitor.members[0][1].addr);

        let status = monitor.status_at(wall, started + Duration::from_secs(5));
        assert_eq!(status.generation, 1);
        let service = &status.services[0];
        assert_eq!(service.name, "www.svc.example.test.");
        assert_eq!((service.policy.as_str(), service.ttl), ("failover", 5));
        assert_eq!(service.answering, [primary]);
        assert!(!service.failing_open);
        let member = &service.members[0];
        assert_eq!(
            (member.address, member.state.as_str()),
            (primary, "unknown")
        );
        assert_eq!(member.since, "2027-01-15T07:59:55.000Z");
        assert!(member.last_check.is_none() && member.admin.is_none());
        assert!(status.state_file.saved && status.state_file.damaged.is_none());

        // Two refused checks (fall = 2): the primary is down, the standby answered.
        let failed = started + Duration::from_secs(6);
        primary_refused(&mut monitor, failed);
        primary_refused(&mut monitor, failed);
        let status = monitor.status_at(wall, failed + Duration::from_secs(1));
        let service = &status.services[0];
        assert_eq!(service.answering, [standby]);
        let member = &service.members[0];
        assert_eq!(member.state, "down");
        assert_eq!(member.since, "2027-01-15T07:59:59.000Z");
        assert_eq!(
            (member.consecutive_failures, member.consecutive_successes),
            (2, 0)
        );
        let last = member.last_check.as_ref().expect("a last check");
        assert_eq!(last.result, "fail");
        assert_eq!(last.error.as_deref(), Some("connection refused"));
        assert!((last.latency_ms - 3.0).abs() < 1e-9);

        // Draining the standby leaves only the down primary: every member down, failing open.
        monitor
            .set_admin("WWW.svc.example.test.", standby, Some(AdminOverride::Drain))
            .expect("an override");
        let status = monitor.status_at(wall, failed);
        let service = &status.services[0];
        assert_eq!(service.answering, [primary]);
        assert!(service.failing_open);
        assert_eq!(service.members[1].admin, Some(AdminOverride::Drain));
        assert_eq!(service.members[0].admin, None);
        // No saver runs in this test: the override is in force but not saved.
        assert!(!status.state_file.saved);
    }
}
