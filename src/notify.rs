//! Failover events to webhooks: every change of a service's answer is POSTed as JSON to each
//! `[[notify.webhook]]`, with a timeout per attempt and retries with backoff.
//!
//! The check plane hands events over a bounded queue and never waits: a slow or dead webhook
//! delays only its own deliveries, never a check or a DNS answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::WebhookPlan;
use crate::metrics::{Metrics, ResultLabels};

/// Events waiting for delivery before new ones are dropped (with a warning).
pub const QUEUE: usize = 1024;

/// One change of the addresses a service answers for one address family.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerChange {
    /// Always `answer_changed`.
    pub event: &'static str,
    /// The service name.
    pub service: String,
    /// `A` or `AAAA`.
    pub family: &'static str,
    /// The addresses answered before.
    pub from: Vec<IpAddr>,
    /// The addresses answered now.
    pub to: Vec<IpAddr>,
    /// True when every member is down and all are answered.
    pub failing_open: bool,
    /// What caused it, e.g. `member 192.0.2.10 is down: connection refused`.
    pub reason: String,
    /// The zone's SOA serial after the change.
    pub serial: u32,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
}

/// An event with the webhooks configured when it happened.
pub type Delivery = (Arc<[WebhookPlan]>, AnswerChange);

/// Starts the task that delivers events; send them on the returned queue.
pub fn start(metrics: Arc<Metrics>) -> mpsc::Sender<Delivery> {
    let (sender, mut queue) = mpsc::channel::<Delivery>(QUEUE);
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                warn!(%error, "cannot build the webhook HTTP client; failover events will only be logged");
                return;
            }
        };
        while let Some((hooks, event)) = queue.recv().await {
            let body = match serde_json::to_vec(&event) {
                Ok(body) => Arc::new(body),
                Err(_) => continue,
            };
            for hook in hooks.iter() {
                tokio::spawn(deliver(
                    client.clone(),
                    hook.clone(),
                    Arc::clone(&body),
                    Arc::clone(&metrics),
                ));
            }
        }
    });
    sender
}

/// POSTs `body` to `hook`, retrying after 0.5 s, 1 s, 2 s, … until a 2xx or out of retries.
async fn deliver(
    client: reqwest::Client,
    hook: WebhookPlan,
    body: Arc<Vec<u8>>,
    metrics: Arc<Metrics>,
) {
    let mut last_error = String::new();
    for attempt in 0..=hook.retries {
        if attempt > 0 {
            let backoff = Duration::from_millis(500) * 2u32.saturating_pow(attempt - 1).min(64);
            tokio::time::sleep(backoff).await;
        }
        let sent = client
            .post(&hook.url)
            .timeout(hook.timeout)
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                debug!(url = %hook.url, attempt, "failover event delivered");
                metrics
                    .webhooks
                    .get_or_create(&ResultLabels { result: "ok" })
                    .inc();
                return;
            }
            Ok(response) => last_error = format!("HTTP {}", response.status().as_u16()),
            Err(error) => last_error = crate::cause::root_cause(&error),
        }
    }
    metrics
        .webhooks
        .get_or_create(&ResultLabels { result: "error" })
        .inc();
    warn!(url = %hook.url, error = %last_error, attempts = hook.retries + 1, "cannot deliver failover event to {}: {last_error}", hook.url);
}
