//! failover-dns: an authoritative DNS server whose service names follow member health.
//!
//! Two planes meet in one place. The check plane ([`health`]) probes members, runs their
//! rise/fall state machines and the service [`policy`], and publishes an immutable
//! [`snapshot::Snapshot`] whenever an answer changes. The query path ([`dns`]) loads the
//! current snapshot and answers from it with a pure function, never waiting on a check.
//!
//! [`config`] (with [`zone`]) turns files into a validated [`config::Plan`] and feeds
//! everything; [`health`] and [`policy`] make snapshots; [`dns`] and [`api`] read them;
//! [`metrics`], [`notify`] (webhooks), [`reload`] and [`status`] serve operators;
//! [`connections`] and [`limits`] bound what clients can make the server spend; [`cause`]
//! words errors for operators. No file imports one that imports it back; between top-level
//! modules, two pairs know each other by design: a [`snapshot`] carries the wire index that
//! `dns::fast::index` builds, and [`policy`] reads the member states of `health::state`. The
//! command line (`src/main.rs`, `src/cli/`) is not part of the library. README
//! "Architecture" has the picture and a table of what each module owns.

pub mod api;
pub mod cause;
pub mod config;
pub mod connections;
pub mod dns;
pub mod error;
pub mod health;
pub mod limits;
pub mod logfmt;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod reload;
pub mod snapshot;
pub mod status;
pub mod systemd;
pub mod watch;
pub mod zone;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

use crate::api::ApiState;
use crate::config::Plan;
use crate::health::Monitor;
use crate::metrics::Metrics;
use crate::reload::Reloader;

/// Why the server could not start; each names what could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signal handlers (SIGHUP, SIGTERM, SIGINT) could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
    /// A DNS listener could not be bound (the message names the address).
    #[error("{0}")]
    Dns(#[source] std::io::Error),
    /// The HTTP API could not be bound (the message names the address).
    #[error("{0}")]
    Api(#[source] std::io::Error),
}

/// Serves `plan` until SIGINT or SIGTERM, reloading it on SIGHUP; on shutdown stops accepting
/// queries, lets in-flight ones finish and returns. Listen addresses `inherited` holds a
/// socket for are served from it instead of being bound.
pub async fn run(plan: Plan, mut inherited: dns::socket::Inherited) -> Result<(), StartError> {
    // Before anything else, so a SIGHUP during start-up reloads instead of killing us.
    let mut signals = Signals::new().map_err(StartError::Signals)?;
    let metrics = Arc::new(Metrics::new());
    let (saved, damaged) = match health::admin::load(&plan.server.state_file) {
        Ok(saved) => (saved, None),
        Err(error) => (
            Vec::new(),
            Some(health::admin::recover(&plan.server.state_file, &error)),
        ),
    };
    let events = notify::start(Arc::clone(&metrics));
    let mut monitor = Monitor::new(plan.clone(), saved, Arc::clone(&metrics), Some(events));
    if let Some(damaged) = damaged {
        monitor.recover_damaged(damaged);
    }
    let (publishes, published) = tokio::sync::watch::channel(0u64);
    monitor.announce_publishes(publishes);
    let hub = Arc::new(watch::Hub::default());
    monitor.watch_with(Arc::clone(&hub));
    let cell = Arc::new(ArcSwap::from_pointee(monitor.snapshot()));
    let notify_status = Arc::new(dns::secondaries::NotifyStatus::default());
    dns::secondaries::start(
        Arc::clone(&cell),
        published,
        Arc::clone(&metrics),
        Arc::clone(&notify_status),
        plan.server.listen.clone(),
    );
    let budget = limits::Descriptors::raise_and_share(&plan);
    let listeners = dns::serve(
        &plan.server.listen,
        &mut inherited,
        dns::tcp::Limits {
            idle_timeout: plan.server.tcp_idle_timeout,
            io_timeout: plan.server.tcp_io_timeout,
            max_clients: budget.tcp_clients,
            transfers_out: plan.server.transfers_out,
        },
        dns::rrl::RateLimiter::new(plan.server.rate_limit, plan.server.rate_limit_slip),
        Arc::clone(&cell),
        Arc::clone(&metrics),
    )
    .await
    .map_err(StartError::Dns)?;
    let (control, checks) = monitor.start(Arc::clone(&cell));
    let reloader = Reloader::new(
        plan.path.clone(),
        plan.server.clone(),
        control.clone(),
        Arc::clone(&metrics),
    );
    let api = match plan.server.http {
        Some(addr) => Some(
            api::serve(
                addr,
                inherited.take_tcp(addr),
                ApiState {
                    control,
                    metrics,
                    reloader: reloader.clone(),
                    token: plan.server.http_token.clone(),
                    hosts: plan.server.http_hosts.clone().into(),
                    state_file: plan.server.state_file.clone(),
                    notify: notify_status,
                    watch: hub,
                    cell: Arc::clone(&cell),
                },
                api::Limits {
                    max_clients: budget.http_clients,
                    timeout: plan.server.http_timeout,
                },
            )
            .await
            .map_err(StartError::Api)?,
        ),
        None => None,
    };
    inherited.warn_unused();
    drop(inherited);
    info!(
        zones = plan.zones.len(),
        services = plan.services.len(),
        config = %plan.path.display(),
        "failover-dns started"
    );
    systemd::ready(&format!(
        "serving {} zones and {} services",
        plan.zones.len(),
        plan.services.len()
    ));
    loop {
        let signal = signals.next().await;
        if signal == "SIGHUP" {
            info!(signal, "reloading the config");
            let reloader = reloader.clone();
            tokio::spawn(async move { reloader.reload().await });
            continue;
        }
        info!(
            signal,
            "shutting down: no new queries, finishing those in flight"
        );
        systemd::stopping();
        drop(api);
        drop(checks);
        listeners.shutdown().await;
        return Ok(());
    }
}

/// The signals the server acts on.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.hangup.recv() => "SIGHUP",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
