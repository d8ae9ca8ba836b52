//! The HTTP API: status, Prometheus metrics, admin overrides, reload and liveness.
//!
//! Read-only routes are open; every other route needs `Authorization: Bearer <token>` when a
//! token is configured (and the config refuses a non-loopback API without one). Handlers only
//! talk to the check plane through [`Control`]; none of them touches the query path.
//!
//! What a browser or a flood could do is bounded here: a request whose `Host` is not the
//! API's own address, `localhost` (on loopback) or one of `http_hosts` is refused (DNS
//! rebinding); a request other than GET/HEAD from another origin (`Origin`, or
//! `Sec-Fetch-Site: cross-site`) is refused (cross-site request forgery); at most
//! `http_max_clients` connections are open (a new one closes the oldest that is not being
//! answered, or is closed itself when all are); a client must send a
//! request's head within `http_timeout` of connecting or of the previous response, so a
//! half-sent request or an idle keep-alive connection is closed; heads are limited to
//! [`MAX_HEAD`] bytes and bodies to [`MAX_BODY`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tracing::{debug, info};

mod watch;

use crate::connections::{Admitted, Connections, after_failed_accept};
use crate::health::{AdminError, Control};
use crate::metrics::Metrics;
use crate::policy::AdminOverride;
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
    /// Names the API may be reached under besides its own address (lower case).
    pub hosts: Arc<[String]>,
    /// Where overrides are saved (named in warnings).
    pub state_file: std::path::PathBuf,
    /// What each NOTIFY target last did.
    pub notify: Arc<crate::dns::secondaries::NotifyStatus>,
    /// Answer changes, for `/watch`.
    pub watch: Arc<crate::watch::Hub>,
    /// The published snapshot, for `/watch`'s first event.
    pub cell: crate::snapshot::SnapshotCell,
}

/// How many connections the API serves at once and how long it waits for a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_clients: usize,
    /// Longest wait for a request's head, from connecting or the previous response.
    pub timeout: Duration,
}

/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;

/// Largest request body accepted; no route reads one.
pub const MAX_BODY: usize = 64 * 1024;

/// How long an override's request waits for the state file to be written before answering
/// that it is in force but not saved yet.
const SAVE_WAIT: Duration = Duration::from_secs(2);

/// The address a connection arrived at, for the `Host` check.
#[derive(Debug, Clone, Copy)]
struct LocalAddr(SocketAddr);

/// The running API server; dropping it stops it.
pub struct Api {
    task: JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the API on `addr`: on `inherited` when the listener was handed over, else bound
/// here (failing with the address named if it cannot).
pub async fn serve(
    addr: SocketAddr,
    inherited: Option<std::net::TcpListener>,
    state: ApiState,
    limits: Limits,
) -> io::Result<Api> {
    let bound = match inherited {
        Some(listener) => listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener)),
        None => TcpListener::bind(addr).await,
    };
    let listener = bound
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on http {addr}: {e}")))?;
    let metrics = Arc::clone(&state.metrics);
    let app = router(state);
    info!(%addr, "serving the HTTP API on http://{addr}");
    let task = tokio::spawn(accept(listener, app, limits, metrics));
    Ok(Api { task })
}

/// The routes and the checks every request passes.
fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route(
            "/services/{service}/members/{member}/{action}",
            post(set_admin),
        )
        .route("/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/watch", get(watch::watch))
        .merge(protected)
        .layer(middleware::from_fn_with_state(state.clone(), same_origin))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The status page: one self-contained HTML file (styles and script inline, no framework, no
/// CDN), embedded in the binary. Never framed by another site, so its buttons cannot be
/// clicked through a page that overlays them.
async fn status_page() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
        ],
        include_str!("status.html"),
    )
}

/// Accepts connections, at most `limits.max_clients` at once (a new one beyond that closes
/// the oldest one not being answered: [`Connections`]), and serves each with HTTP/1.1.
async fn accept(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let open = Connections::new(limits.max_clients);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "cannot accept an API connection");
                after_failed_accept(&error).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let Some((entry, admitted)) = open.admit() else {
            metrics.api_refused.inc();
            debug!(%peer, "closing an API connection: every one is being answered");
            continue;
        };
        if admitted == Admitted::Evicted {
            metrics.api_refused.inc();
        }
        let app = app.clone();
        tokio::spawn(async move {
            let connection = Arc::clone(&entry.connection);
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    // Busy while a request is answered: only a connection waiting for one may
                    // be closed to make room.
                    let connection = Arc::clone(&connection);
                    connection.set_idle(false);
                    request.extensions_mut().insert(LocalAddr(local));
                    let app = app.clone();
                    async move {
                        let response = app.oneshot(request.map(axum::body::Body::new)).await;
                        connection.set_idle(true);
                        response
                    }
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                served = served => if let Err(error) = served {
                    debug!(%peer, %error, "API connection ended");
                },
                () = entry.connection.evicted() => {
                    debug!(%peer, "closing the oldest waiting API connection to make room");
                }
            }
        });
    }
}

/// Refuses requests for a foreign `Host` (DNS rebinding), and requests that change something
/// sent from another origin (cross-site request forgery); see the module doc.
async fn same_origin(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let local = request.extensions().get::<LocalAddr>().map(|l| l.0);
    let headers = request.headers();
    let allowed = |host: &str| host_allowed(host, local, &state.hosts);
    if let Some(host) = headers.get(header::HOST)
        && !host.to_str().is_ok_and(allowed)
    {
        return forbidden(
            &state,
            "host",
            "this API answers only requests for its own address or a name in [server] http_hosts",
        );
    }
    let reads_only = matches!(*request.method(), Method::GET | Method::HEAD);
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site");
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        !origin
            .to_str()
            .ok()
            .and_then(|o| {
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
            })
            .is_some_and(allowed)
    });
    if !reads_only && (cross_site || foreign_origin) {
        return forbidden(
            &state,
            "origin",
            "requests from another site cannot change anything here; use the CLI or curl",
        );
    }
    let too_long = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > MAX_BODY as u64);
    if too_long {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "no route takes a body this large",
        );
    }
    next.run(request).await
}

/// A 403 with `message`, counted under `reason`.
fn forbidden(state: &ApiState, reason: &'static str, message: &str) -> Response {
    state
        .metrics
        .api_forbidden
        .get_or_create(&crate::metrics::ReasonLabels { reason })
        .inc();
    error(StatusCode::FORBIDDEN, message)
}

/// Whether `host` (a `Host` header, or an origin without its scheme: `name[:port]`) is one
/// the API may be reached under: its own address, `localhost` when that is loopback, or one
/// of `names`. The port is not compared: a proxy in front may use another.
fn host_allowed(host: &str, local: Option<SocketAddr>, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let (Ok(ip), Some(local)) = (name.parse::<IpAddr>(), local) {
        return ip == local.ip();
    }
    let loopback = local.is_some_and(|l| l.ip().is_loopback());
    (loopback && name == "localhost") || names.contains(&name)
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
        Some(mut status) => {
            status.notify = state.notify.targets();
            axum::Json(status).into_response()
        }
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
    let ticket = match state.control.set_admin(&service, member, admin).await {
        Ok(ticket) => ticket,
        Err(e @ (AdminError::UnknownService(_) | AdminError::UnknownMember { .. })) => {
            return error(StatusCode::NOT_FOUND, e.to_string());
        }
        Err(e @ AdminError::Stopped) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    };
    let saved = match ticket {
        Some(ticket) => ticket.wait(SAVE_WAIT).await,
        None => Err("the state file writer is not running".to_string()),
    };
    match saved {
        Ok(()) => axum::Json(json!({
            "service": service,
            "member": member,
            "admin": admin,
            "saved": true,
        }))
        .into_response(),
        // In force (answers moved) but not in the file: 202, and say what is at risk.
        Err(why) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "service": service,
                "member": member,
                "admin": admin,
                "saved": false,
                "warning": format!(
                    "the override is in force but not saved to {}: {why}; the server keeps retrying, and a restart before it succeeds loses the override",
                    state.state_file.display()
                ),
            })),
        )
            .into_response(),
    }
}

async fn reload(State(state): State<ApiState>) -> Response {
    match state.reloader.reload().await {
        Ok(summary) => axum::Json(summary).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
