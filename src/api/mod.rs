//! The HTTP API: status, Prometheus metrics, admin overrides, reload and liveness.
//!
//! Read-only routes are open; every other route needs `Authorization: Bearer <token>` when a
//! token is configured (and the config refuses a non-loopback API without one). Handlers only
//! talk to the check plane through [`Control`]; none of them touches the query path.

pub mod client;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::health::admin::AdminOverride;
use crate::health::{AdminError, Control};
use crate::metrics::Metrics;
use crate::reload::Reloader;

/// What every handler may use.
#[derive(Clone)]
pub struct ApiState {
    /// The running check plane.
    pub control: Control,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Reloads the config.
    pub reloader: Reloader,
    /// The bearer token non-GET requests need, if any.
    pub token: Option<String>,
}

/// The running API server; dropping it stops it.
pub struct Api {
    task: JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` (failing with the address named if it cannot) and serves the API on it.
pub async fn serve(addr: SocketAddr, state: ApiState) -> io::Result<Api> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on http {addr}: {e}")))?;
    let protected = Router::new()
        .route(
            "/services/{service}/members/{member}/{action}",
            post(set_admin),
        )
        .route("/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .merge(protected)
        .with_state(state);
    info!(%addr, "serving the HTTP API on http://{addr}");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the HTTP API stopped");
        }
    });
    Ok(Api { task })
}

/// A JSON error body with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn require_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|p| same_secret(p.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "this route needs Authorization: Bearer <http_token>",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status(State(state): State<ApiState>) -> Response {
    match state.control.status().await {
        Some(status) => axum::Json(status).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the check plane has stopped",
        ),
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn set_admin(
    State(state): State<ApiState>,
    Path((service, member, action)): Path<(String, String, String)>,
) -> Response {
    let admin = match action.as_str() {
        "drain" => Some(AdminOverride::Drain),
        "force-up" => Some(AdminOverride::ForceUp),
        "auto" => None,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown action {action:?}; use drain, force-up or auto"),
            );
        }
    };
    let Ok(member) = member.parse::<IpAddr>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{member:?} is not an IP address"),
        );
    };
    let service = if service.ends_with('.') {
        service
    } else {
        format!("{service}.")
    };
    match state.control.set_admin(&service, member, admin).await {
        Ok(()) => axum::Json(json!({
            "service": service,
            "member": member,
            "admin": admin,
        }))
        .into_response(),
        Err(e @ (AdminError::UnknownService(_) | AdminError::UnknownMember { .. })) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ AdminError::NotSaved { .. }) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e @ AdminError::Stopped) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn reload(State(state): State<ApiState>) -> Response {
    match state.reloader.reload().await {
        Ok(summary) => axum::Json(summary).into_response(),
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, message),
    }
}
