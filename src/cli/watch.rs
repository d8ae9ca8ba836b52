//! `failover-dns watch`: follows `GET /watch` and prints each service's answers, then each
//! change as it happens; with `--exec`, runs a command on each change with what changed in its
//! environment. Reconnects with `Last-Event-ID` when the stream drops, so no change is missed
//! while the server keeps it in its history.

use std::time::Duration;

use anyhow::Context;

/// Follows the watch stream of the API at `api` for `services` (all when empty), forever.
pub async fn watch(api: &str, services: &[String], exec: Option<&str>) -> anyhow::Result<()> {
    let mut query: Vec<String> = services
        .iter()
        .map(|s| format!("service={}", s.replace('%', "%25").replace('&', "%26")))
        .collect();
    let url = format!("{}/watch", api.trim_end_matches('/'));
    if !query.is_empty() {
        query.sort();
    }
    let url = if query.is_empty() {
        url
    } else {
        format!("{url}?{}", query.join("&"))
    };
    let client = reqwest::Client::new();
    let mut last_id: Option<u64> = None;
    let mut connected_once = false;
    loop {
        let mut request = client.get(&url).header("accept", "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                connected_once = true;
                follow(response, &mut last_id, exec).await;
                eprintln!("watch: the stream ended; reconnecting");
            }
            Ok(response) => anyhow::bail!("the API answered {} for {url}", response.status()),
            Err(error) if !connected_once => {
                return Err(error).with_context(|| format!("cannot reach the API at {url}"));
            }
            Err(error) => eprintln!("watch: {error}; reconnecting"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads events from `response` until it ends, printing each and running `exec` on changes.
async fn follow(mut response: reqwest::Response, last_id: &mut Option<u64>, exec: Option<&str>) {
    let mut buffer = String::new();
    let (mut event, mut id, mut data) = (String::new(), None::<u64>, String::new());
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(value) = line.strip_prefix("event:") {
                event = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("id:") {
                id = value.trim().parse().ok();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            } else if line.is_empty() && !event.is_empty() {
                if id.is_some() {
                    *last_id = id;
                }
                handle(&event, &data, exec).await;
                event.clear();
                data.clear();
            }
        }
    }
}

/// Prints one event, and for a change runs `exec`.
async fn handle(event: &str, data: &str, exec: Option<&str>) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
        return;
    };
    let list = |v: &serde_json::Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    match event {
        "snapshot" => {
            for service in value["services"].as_array().into_iter().flatten() {
                println!(
                    "{} A [{}] AAAA [{}] serial {}",
                    service["service"].as_str().unwrap_or_default(),
                    list(&service["A"]),
                    list(&service["AAAA"]),
                    service["serial"]
                );
            }
        }
        "answer_changed" => {
            let service = value["service"].as_str().unwrap_or_default();
            let family = value["family"].as_str().unwrap_or_default();
            let (from, to) = (list(&value["from"]), list(&value["to"]));
            let reason = value["reason"].as_str().unwrap_or_default();
            println!(
                "{service} {family} [{from}] -> [{to}] serial {} ({reason})",
                value["serial"]
            );
            if let Some(command) = exec {
                run(command, service, family, &from, &to, &value).await;
            }
        }
        _ => {}
    }
}

/// Runs `command` (split on spaces, no shell) with the change in its environment.
async fn run(
    command: &str,
    service: &str,
    family: &str,
    from: &str,
    to: &str,
    value: &serde_json::Value,
) {
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return;
    };
    let status = tokio::process::Command::new(program)
        .args(words)
        .env("FAILOVER_DNS_SERVICE", service)
        .env("FAILOVER_DNS_FAMILY", family)
        .env("FAILOVER_DNS_FROM", from)
        .env("FAILOVER_DNS_TO", to)
        .env("FAILOVER_DNS_SERIAL", value["serial"].to_string())
        .env(
            "FAILOVER_DNS_REASON",
            value["reason"].as_str().unwrap_or_default(),
        )
        .status()
        .await;
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("watch: {command} exited with {status}"),
        Err(error) => eprintln!("watch: cannot run {command}: {error}"),
    }
}
