//! A client of the HTTP API, for the `status`, `drain` and `undrain` commands, and the table
//! `status` prints.

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::{Context, bail};

use crate::status::Status;

/// Fetches `GET {api}/status`.
pub async fn status(api: &str) -> anyhow::Result<Status> {
    let url = format!("{}/status", api.trim_end_matches('/'));
    let response = reqwest::get(&url)
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let response = check(response).await?;
    let bytes = response.bytes().await.context("cannot read /status")?;
    serde_json::from_slice(&bytes).context("cannot parse /status")
}

/// Sets an override with `POST {api}/services/{service}/members/{member}/{action}`; the
/// server's warning when it is in force but not saved yet.
pub async fn set_admin(
    api: &str,
    token: Option<&str>,
    service: &str,
    member: IpAddr,
    action: &str,
) -> anyhow::Result<Option<String>> {
    let url = format!(
        "{}/services/{service}/members/{member}/{action}",
        api.trim_end_matches('/')
    );
    let mut request = reqwest::Client::new().post(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
    let body = check(response).await?.text().await.unwrap_or_default();
    Ok(serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("warning")?.as_str().map(str::to_string)))
}

fn unreachable(url: &str, error: &reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach the API at {url}: {}; is the server running with [server] http set?",
        crate::health::probe::root_cause(error)
    )
}

/// The response if it is a success, else its JSON `error` as the error.
async fn check(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(body);
    bail!("the API answered {status}: {message}")
}

/// A table of every service and member, one line per member.
pub fn render_table(status: &Status) -> String {
    let mut rows = vec![
        [
            "SERVICE",
            "ANSWERING",
            "MEMBER",
            "STATE",
            "ADMIN",
            "SINCE",
            "LAST CHECK",
        ]
        .map(String::from),
    ];
    for service in &status.services {
        let answering = service
            .answering
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
            + if service.failing_open {
                " (failing open)"
            } else {
                ""
            };
        for (i, member) in service.members.iter().enumerate() {
            let last = match &member.last_check {
                None => "-".to_string(),
                Some(check) => match &check.error {
                    None => format!("{} {:.1}ms", check.result, check.latency_ms),
                    Some(error) => format!("{}: {error}", check.result),
                },
            };
            rows.push([
                if i == 0 {
                    service.name.clone()
                } else {
                    String::new()
                },
                if i == 0 {
                    answering.clone()
                } else {
                    String::new()
                },
                member.address.to_string(),
                member.state.clone(),
                member.admin.map_or("-".to_string(), |a| a.to_string()),
                member.since.clone(),
                last,
            ]);
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:width$}  ", width = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}
