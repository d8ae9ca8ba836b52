//! Hot reload, shared by SIGHUP and `POST /reload`: re-read the config and every zone, validate
//! all of it beside the running plan, and hand it to the check plane only if it is whole.
//!
//! A bad file is rejected with its `file:line` error, logged and returned, and the running
//! config keeps serving untouched.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::{error, info, warn};

use crate::config::{self, ServerPlan};
use crate::health::{Control, ReloadSummary};
use crate::metrics::{Metrics, ResultLabels};

/// Everything a reload needs; cheap to clone into each caller.
#[derive(Clone)]
pub struct Reloader {
    path: PathBuf,
    /// The `[server]` settings bound at start-up (listen addresses, API), which only a restart
    /// changes.
    started: Arc<ServerPlan>,
    control: Control,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// A reloader of the config at `path`, whose server settings at start-up were `started`.
    pub fn new(
        path: PathBuf,
        started: ServerPlan,
        control: Control,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            path,
            started: Arc::new(started),
            control,
            metrics,
        }
    }

    /// Loads and applies the config; on error the running config is untouched.
    pub async fn reload(&self) -> Result<ReloadSummary, String> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| format!("reload task failed: {e}"));
        let plan = match loaded {
            Ok(Ok(plan)) => plan,
            Ok(Err(load_error)) => return Err(self.failed(load_error.to_string())),
            Err(message) => return Err(self.failed(message)),
        };
        self.warn_about_restart_only_settings(&plan.server);
        let Some(summary) = self.control.reload(plan).await else {
            return Err(self.failed("the check plane has stopped".to_string()));
        };
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        info!(
            zones = summary.zones,
            services = summary.services,
            members_kept = summary.members_kept,
            members_started = summary.members_started,
            members_stopped = summary.members_stopped,
            "config reloaded from {}",
            self.path.display()
        );
        Ok(summary)
    }

    fn failed(&self, message: String) -> String {
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "error" })
            .inc();
        error!(error = %message, "reload rejected, still serving the previous config: {message}");
        message
    }

    fn warn_about_restart_only_settings(&self, new: &ServerPlan) {
        let old = &self.started;
        for (key, changed) in [
            ("listen", old.listen != new.listen),
            (
                "tcp_idle_timeout",
                old.tcp_idle_timeout != new.tcp_idle_timeout,
            ),
            ("http", old.http != new.http),
            ("http_token", old.http_token != new.http_token),
        ] {
            if changed {
                warn!(
                    key,
                    "[server] {key} changed; it takes effect at the next restart"
                );
            }
        }
    }
}
