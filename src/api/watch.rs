//! `GET /watch[?service=NAME…]`: Server-Sent Events for client-aware consumers. First an
//! `event: snapshot` with every watched service's current answers and its zone's serial, then
//! one `event: answer_changed` per change (the webhook's JSON), each with an increasing `id:`.
//! A client that reconnects with `Last-Event-ID` gets what it missed from the hub's history,
//! or a fresh snapshot when that is gone. A comment every 15 s keeps idle connections open;
//! a client that falls [`crate::watch::BUFFER`] events behind is dropped, never waited for.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use hickory_proto::rr::{LowerName, Name, RData};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use super::ApiState;
use crate::notify::AnswerChange;
use crate::snapshot::Snapshot;
use crate::watch::Numbered;

/// How often an idle stream carries a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One service in a snapshot event.
#[derive(Serialize)]
struct Watched {
    service: String,
    serial: u32,
    #[serde(rename = "A")]
    a: Vec<IpAddr>,
    #[serde(rename = "AAAA")]
    aaaa: Vec<IpAddr>,
}

/// The services `query` names (`service=…`, repeatable), lower-cased and absolute; empty: all.
fn watched(query: Option<&str>) -> Vec<LowerName> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("service="))
        .filter_map(|name| {
            let name = percent_decode(name)?;
            let mut name = Name::from_ascii(&name).ok()?;
            name.set_fqdn(true);
            Some(LowerName::new(&name))
        })
        .collect()
}

/// `%XX`-decoded `text` (`+` as a space), if it is valid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Every service of `snapshot` that `names` selects, with its answers and zone serial.
fn current(snapshot: &Snapshot, names: &[LowerName]) -> Vec<Watched> {
    let mut services = Vec::new();
    for zone in &snapshot.zones {
        for (name, records) in &zone.services {
            if !names.is_empty() && !names.contains(name) {
                continue;
            }
            let addresses = |records: &[hickory_proto::rr::Record]| -> Vec<IpAddr> {
                records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    })
                    .collect()
            };
            services.push(Watched {
                service: name.to_string(),
                serial: zone.serial(),
                a: addresses(&records.a),
                aaaa: addresses(&records.aaaa),
            });
        }
    }
    services.sort_by(|x, y| x.service.cmp(&y.service));
    services
}

fn change_event((id, change): &Numbered) -> Event {
    Event::default()
        .event("answer_changed")
        .id(id.to_string())
        .json_data(change.as_ref())
        .unwrap_or_else(|_| Event::default().comment("unencodable event"))
}

fn selected(names: &[LowerName], change: &AnswerChange) -> bool {
    names.is_empty()
        || Name::from_ascii(&change.service)
            .is_ok_and(|name| names.contains(&LowerName::new(&name)))
}

pub(super) async fn watch(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let names = watched(query.as_deref());
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let subscription = state.watch.subscribe(last_seen);
    let mut first: Vec<Event> = Vec::new();
    match subscription.missed {
        Some(missed) => first.extend(
            missed
                .iter()
                .filter(|e| selected(&names, &e.1))
                .map(change_event),
        ),
        None => {
            let snapshot = state.cell.load_full();
            let services = current(&snapshot, &names);
            let serials: HashMap<&str, u32> = services
                .iter()
                .map(|s| (s.service.as_str(), s.serial))
                .collect();
            let data = serde_json::json!({ "event": "snapshot", "services": services });
            first.push(
                Event::default()
                    .event("snapshot")
                    .id(subscription.last_id.to_string())
                    .data(data.to_string()),
            );
            // A change published just before its snapshot: sent after this one.
            let recent = state.watch.subscribe(Some(0)).missed.unwrap_or_default();
            first.extend(
                recent
                    .iter()
                    .filter(|e| e.0 <= subscription.last_id && selected(&names, &e.1))
                    .filter(|e| {
                        serials
                            .get(e.1.service.as_str())
                            .is_some_and(|s| e.1.serial > *s)
                    })
                    .map(change_event),
            );
        }
    }
    let live = live(subscription.receiver, names);
    let events = stream::iter(first.into_iter().map(Ok)).chain(live);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The events from `receiver` for `names`, until the client falls too far behind.
fn live(
    receiver: tokio::sync::broadcast::Receiver<Numbered>,
    names: Vec<LowerName>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((receiver, names), |(mut receiver, names)| async move {
        loop {
            match receiver.recv().await {
                Ok(event) if selected(&names, &event.1) => {
                    return Some((Ok(change_event(&event)), (receiver, names)));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    info!(
                        missed,
                        "dropping a /watch client that fell {missed} events behind; it may reconnect with Last-Event-ID"
                    );
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_read_from_a_repeated_query_parameter() {
        let names = watched(Some(
            "service=www.example.test.&x=1&service=db%2Eexample.test",
        ));
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["www.example.test.", "db.example.test."]);
        assert!(watched(None).is_empty());
    }
}
