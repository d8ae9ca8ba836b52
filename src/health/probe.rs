//! Probes: one health check of one member, over TCP or HTTP(S).
//!
//! A probe only reports what happened; the caller bounds it with the check's timeout, so a
//! hung backend costs one task its timeout and nothing else.

use std::error::Error;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use crate::config::{CheckKind, CheckPlan};

/// A ready-to-run check of one member.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Healthy when the connection is accepted.
    Tcp(SocketAddr),
    /// Healthy when `GET url` answers a status in `expect`.
    Http {
        /// Client with redirects and connection reuse off, so every check is a fresh connection.
        client: reqwest::Client,
        /// The URL requested.
        url: String,
        /// Statuses that count as healthy.
        expect: RangeInclusive<u16>,
    },
}

impl Probe {
    /// Prepares the check `check` of the member at `addr`.
    pub fn new(check: &CheckPlan, addr: IpAddr) -> Result<Self, String> {
        let target = SocketAddr::new(addr, check.port);
        let http = match &check.kind {
            CheckKind::Tcp => return Ok(Probe::Tcp(target)),
            CheckKind::Http(http) => http,
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .no_proxy()
            .user_agent(concat!(
                "failover-dns/",
                env!("CARGO_PKG_VERSION"),
                " health check"
            ))
            .danger_accept_invalid_certs(!http.tls_verify);
        let authority = match &http.host {
            // Connect to the member's address but send its name, for Host and TLS SNI.
            Some(host) => {
                builder = builder.resolve(host, target);
                format!("{host}:{}", check.port)
            }
            None => target.to_string(),
        };
        let client = builder
            .build()
            .map_err(|e| format!("cannot build HTTP client: {}", root_cause(&e)))?;
        Ok(Probe::Http {
            client,
            url: format!("{}://{authority}{}", http.scheme, http.path),
            expect: http.expect_status.clone(),
        })
    }

    /// Runs the check once; `Err` says why it failed in a few words.
    pub async fn run(&self) -> Result<(), String> {
        match self {
            Probe::Tcp(target) => tokio::net::TcpStream::connect(target)
                .await
                .map(drop)
                .map_err(|e| describe_io(&e)),
            Probe::Http {
                client,
                url,
                expect,
            } => {
                let response = client.get(url).send().await.map_err(|e| root_cause(&e))?;
                let status = response.status().as_u16();
                if expect.contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
        }
    }
}

/// The innermost cause of an error, which is the part an operator can act on
/// ("connection refused", not "error sending request for url").
/// The innermost error of a chain, in words an operator reads in a log.
pub fn root_cause(error: &(dyn Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<io::Error>() {
        Some(io_error) => describe_io(io_error),
        None => cause.to_string(),
    }
}

fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_string(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
        io::ErrorKind::UnexpectedEof => "connection closed before a response".to_string(),
        _ => error.to_string(),
    }
}
