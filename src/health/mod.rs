//! The check plane: schedules probes, runs member state machines and policies, and publishes
//! a new snapshot whenever a service's answer changes.
//!
//! One task owns all health state, with no locks: it begins every check from a [`Schedule`]
//! (a check that must wait finishes as a short task bounded by its own timeout, so a slow
//! backend delays nobody else), applies their results, and takes operator commands (status,
//! overrides, reload) over a channel. The query path only ever sees the snapshots it
//! publishes, and nothing here ever waits on the query path.
//!
//! This file is the plane's face ([`Monitor`] to build it, [`Control`] to command it). Inside:
//! [`monitor`] (member health and answer selection), `running` (the task), `merge` (reloads),
//! `overrides` (operator overrides), `report` (status and events); the probes are
//! [`schedule`], [`due`], [`probe`], [`sockets`], [`tls`]; [`state`] is the rise/fall machine and
//! [`admin`] the state file.
//!
//! [`Schedule`]: schedule::Schedule

pub mod admin;
pub mod due;
mod exchange;
mod hold;
mod merge;
pub mod monitor;
mod overrides;
pub mod probe;
mod report;
mod running;
pub mod schedule;
pub mod script;
pub mod sockets;
pub mod state;
pub mod tls;

use std::net::IpAddr;

use tokio::sync::{mpsc, oneshot};

use crate::config::Plan;
use crate::policy::AdminOverride;
use crate::status::Status;
use admin::SaveTicket;
pub use monitor::Monitor;

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

/// The running check plane; dropping it stops the monitor task and, with it, every probe.
pub struct Checks {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checks {
    fn drop(&mut self) {
        self.task.abort();
    }
}
