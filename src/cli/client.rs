//! The command line's client of the HTTP API, for the `status`, `drain` and `undrain` commands.

use std::net::IpAddr;

use anyhow::{Context, bail};
use failover_dns::cause::root_cause;
use failover_dns::status::Status;

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
        root_cause(error)
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
