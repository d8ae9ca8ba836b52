//! failover-dns: an authoritative DNS server whose service names follow member health.
//!
//! Two planes meet in one place. The check plane ([`health`]) probes members, runs their
//! rise/fall state machines and the service [`policy`], and publishes an immutable
//! [`snapshot::Snapshot`] whenever an answer changes. The query path ([`dns`]) loads the
//! current snapshot and answers from it with a pure function, never waiting on a check.

pub mod config;
pub mod dns;
pub mod error;
pub mod health;
pub mod policy;
pub mod snapshot;
pub mod zone;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tracing::info;

use crate::config::Plan;
use crate::health::Monitor;

/// Serves `plan` until SIGINT or SIGTERM, then stops accepting queries and returns.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let monitor = Monitor::new(plan.clone());
    let cell = Arc::new(ArcSwap::from_pointee(monitor.snapshot()));
    let mut server = dns::server::serve(
        &plan.server.listen,
        plan.server.tcp_idle_timeout,
        Arc::clone(&cell),
    )
    .await?;
    let checks = monitor.start(cell);
    info!(
        zones = plan.zones.len(),
        services = plan.services.len(),
        config = %plan.path.display(),
        "failover-dns started"
    );
    tokio::select! {
        result = server.block_until_done() => result?,
        signal = shutdown_signal() => {
            info!(signal, "shutting down");
            drop(checks);
            server.shutdown_gracefully().await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
