//! Hot reload, shared by SIGHUP and `POST /reload`: re-read the config and every zone, validate
//! all of it beside the running plan, and hand it to the check plane only if it is whole.
//!
//! A bad file is rejected with its `file:line` error, logged and returned, and the running
//! config keeps serving untouched.
//!
//! One reload runs at a time. Requests that arrive while one runs are coalesced into a single
//! reload after it, of whatever is on disk then, and all of them get its result: the config
//! served is always the newest one asked for, and a burst of requests costs two loads, not one
//! each (a load holds a whole config and its zones in memory).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use tracing::{error, info, warn};

use crate::config::{self, ServerPlan};
use crate::error::LoadError;
use crate::health::{Control, ReloadSummary};
use crate::metrics::{Metrics, ResultLabels};

/// Why a reload was rejected; the running config keeps serving.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// The config or a zone it names is bad (`file:line: problem`).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The task reading the files panicked or was cancelled.
    #[error("reload task failed: {0}")]
    Task(String),
    /// The check plane has stopped (the server is shutting down).
    #[error("the check plane has stopped")]
    Stopped,
}

/// What a reload did, or why it was rejected.
pub type ReloadResult = Result<ReloadSummary, ReloadError>;

/// Everything a reload needs; cheap to clone into each caller.
#[derive(Clone)]
pub struct Reloader {
    path: PathBuf,
    /// The `[server]` settings bound at start-up (listen addresses, API), which only a restart
    /// changes.
    started: Arc<ServerPlan>,
    control: Control,
    metrics: Arc<Metrics>,
    /// Reload requests so far, numbered from 1.
    requested: Arc<AtomicU64>,
    /// Held while a reload runs: the newest request the last reload covered, and its result
    /// (none before the first).
    last: Arc<Mutex<(u64, Option<ReloadResult>)>>,
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
            requested: Arc::new(AtomicU64::new(0)),
            last: Arc::new(Mutex::new((0, None))),
        }
    }

    /// Loads and applies the config as it is on disk now, or joins the reload that will; on
    /// error the running config is untouched.
    pub async fn reload(&self) -> ReloadResult {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.last.lock().await;
        if let (covered, Some(result)) = &*last
            && *covered >= ticket
        {
            // A reload that began after this request covered it.
            return result.clone();
        }
        let covers = self.requested.load(Ordering::SeqCst);
        crate::systemd::reloading();
        let result = self.load_and_apply().await;
        // Ready again whatever came of it: a rejected reload keeps the running config serving.
        let status = match &result {
            Ok(summary) => format!(
                "serving {} zones and {} services (generation {})",
                summary.zones, summary.services, summary.generation
            ),
            Err(error) => format!("reload rejected, running config kept: {error}"),
        };
        crate::systemd::ready(&status);
        *last = (covers, Some(result.clone()));
        result
    }

    async fn load_and_apply(&self) -> ReloadResult {
        info!(
            "reading the config for a reload from {}",
            self.path.display()
        );
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| ReloadError::Task(e.to_string()));
        let plan = match loaded {
            Ok(Ok(plan)) => plan,
            Ok(Err(load_error)) => return Err(self.failed(load_error.into())),
            Err(error) => return Err(self.failed(error)),
        };
        self.warn_about_restart_only_settings(&plan.server);
        let Some(summary) = self.control.reload(plan).await else {
            return Err(self.failed(ReloadError::Stopped));
        };
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        info!(
            generation = summary.generation,
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

    fn failed(&self, error: ReloadError) -> ReloadError {
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "error" })
            .inc();
        error!(error = %error, "reload rejected, still serving the previous config: {error}");
        error
    }

    fn warn_about_restart_only_settings(&self, new: &ServerPlan) {
        let old = &self.started;
        for (key, changed) in [
            ("listen", old.listen != new.listen),
            (
                "tcp_idle_timeout",
                old.tcp_idle_timeout != new.tcp_idle_timeout,
            ),
            ("tcp_io_timeout", old.tcp_io_timeout != new.tcp_io_timeout),
            (
                "tcp_max_clients",
                old.tcp_max_clients != new.tcp_max_clients,
            ),
            ("http", old.http != new.http),
            ("http_token", old.http_token != new.http_token),
            (
                "http_max_clients",
                old.http_max_clients != new.http_max_clients,
            ),
            ("http_timeout", old.http_timeout != new.http_timeout),
            ("http_hosts", old.http_hosts != new.http_hosts),
            ("rate_limit", old.rate_limit != new.rate_limit),
            (
                "rate_limit_slip",
                old.rate_limit_slip != new.rate_limit_slip,
            ),
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
