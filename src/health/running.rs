//! The check-plane task: takes reports from the schedule and commands from the API, applies
//! them to the monitor, and publishes snapshots (at most one per [`PUBLISH_GAP`]).
//!
//! It must never wait on a check, the disk or the query path: every check runs in the
//! schedule, every save in the saver, and publishing is one atomic swap.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tracing::error;

use super::admin::Saver;
use super::monitor::{MemberIndex, Monitor};
use super::probe::{self, Probe};
use super::schedule::{Pacing, Report, Schedule};
use super::{Checks, Command, Control};
use crate::snapshot::SnapshotCell;

/// Most reports applied at a time.
const REPORT_BATCH: usize = 4096;

/// Least time between two snapshots published for check results. A snapshot is rebuilt whole
/// (2.5-5.4 ms measured at 10,000 services), so when many members change together (start-up,
/// a switch dying) their changes are published together: the first change after a quiet
/// spell is published at once, later ones wait at most this long.
const PUBLISH_GAP: Duration = Duration::from_millis(10);

/// The monitor task's state: the monitor plus the probes it runs.
pub(super) struct Running {
    pub(super) monitor: Monitor,
    pub(super) schedule: Schedule,
    /// Sockets and HTTP clients for new probes; started afresh on reload (running probes keep
    /// theirs).
    pub(super) clients: probe::Clients,
    pub(super) cell: SnapshotCell,
    /// When the last snapshot was published.
    pub(super) published: tokio::time::Instant,
    /// Whether answers changed since then.
    pub(super) unpublished: bool,
}

impl Running {
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(REPORT_BATCH);
        let publish_due = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(publish_due);
        let failback_due = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(failback_due);
        loop {
            let next_failback = self.monitor.next_failback();
            if let Some(at) = next_failback {
                let at = tokio::time::Instant::from_std(at);
                if failback_due.is_elapsed() || failback_due.deadline() != at {
                    failback_due.as_mut().reset(at);
                }
            }
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
                () = &mut failback_due, if next_failback.is_some() => {
                    if self.monitor.failbacks_due(Instant::now()) && !self.unpublished {
                        self.unpublished = true;
                        publish_due.as_mut().reset(self.published + PUBLISH_GAP);
                    }
                }
                Some(command) = commands.recv() => self.command(command),
                else => return,
            }
            if self.unpublished && tokio::time::Instant::now() >= self.published + PUBLISH_GAP {
                self.publish();
            }
        }
    }

    /// Applies one report; true when an answer changed.
    pub(super) fn apply(&mut self, report: Report) -> bool {
        match self.monitor.locate(&report) {
            Some(index) => self.monitor.apply(report, index),
            None => false, // from a probe stopped by a reload
        }
    }

    pub(super) fn publish(&mut self) {
        let mut snapshot = self.monitor.snapshot();
        snapshot.carry_journal_from(&self.cell.load());
        self.cell.store(Arc::new(snapshot));
        if let Some(publishes) = &self.monitor.publishes {
            publishes.send_modify(|count| *count = count.wrapping_add(1));
        }
        self.published = tokio::time::Instant::now();
        self.unpublished = false;
    }

    pub(super) fn command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.monitor.status_at(SystemTime::now(), Instant::now()));
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

    pub(super) fn schedule_probe(&mut self, id: u64, s: usize, m: usize) {
        let service = &self.monitor.plan.services[s];
        let addr = self.monitor.members[s][m].addr;
        let target = self.monitor.members[s][m].check_target;
        match Probe::new(&service.check, target, &mut self.clients) {
            Ok(probe) => {
                let check = &service.check;
                let tag = MemberIndex::new(s, m).tag();
                let pacing = Pacing {
                    interval: check.interval,
                    fast: check.fast_interval,
                    down: check.down_interval,
                    fall: check.fall,
                    rise: check.rise,
                    hold: check.hold,
                };
                self.monitor.members[s][m].held =
                    self.schedule
                        .add_paced(id, tag, probe, pacing, check.timeout);
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

impl Monitor {
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
        let self_max_scripts = self.plan.server.max_scripts;
        let mut running = Running {
            monitor: self,
            schedule: Schedule::default(),
            clients: probe::Clients::new(self_max_scripts),
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
}
