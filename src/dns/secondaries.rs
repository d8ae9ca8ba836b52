//! NOTIFY to secondaries (RFC 1996): whenever a zone's serial changes, each of its `notify`
//! targets is told, with the zone's SOA, AA set, and signed with the zone's `transfer_key`
//! when it has one, so a secondary pulls the change at once instead of at its next refresh.
//!
//! One task per target, fed the zone's latest serial through a watch channel: changes that
//! happen while a NOTIFY is in flight are coalesced into one more NOTIFY of the latest serial,
//! so a flapping member cannot flood a secondary. A NOTIFY is retried with back-off until the
//! target answers or [`TRIES`] are spent; each outage of a target is logged once. Nothing
//! here is waited on by the check plane or the query path: they publish snapshots, and this
//! module reads them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::LowerName;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{info, warn};

use super::compose::Composer;
use super::tsig::{self, Signer};
use super::wire::{AA, ANSWER, lower_wire};
use crate::metrics::{Metrics, NotifyLabels};
use crate::snapshot::{Snapshot, SnapshotCell};
use crate::status::NotifyTargetStatus;

/// Sends per NOTIFY before giving up on that serial (RFC 1996 §3.6 suggests retrying "a few"
/// times).
pub const TRIES: u32 = 5;
/// The wait for an answer to the first try; doubled for each next one (1, 2, 4, 8, 16 s).
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// NOTIFY's opcode.
const NOTIFY: u8 = 4;

/// The last result of each target, for `/status`.
#[derive(Debug, Default)]
pub struct NotifyStatus(Mutex<HashMap<(String, SocketAddr), NotifyTargetStatus>>);

impl NotifyStatus {
    /// Every target's status, by zone and target.
    pub fn targets(&self) -> Vec<NotifyTargetStatus> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut targets: Vec<NotifyTargetStatus> = map.values().cloned().collect();
        targets.sort_by(|a, b| (&a.zone, &a.target).cmp(&(&b.zone, &b.target)));
        targets
    }

    fn set(&self, zone: &str, target: SocketAddr, serial: u32, result: &'static str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            (zone.to_string(), target),
            NotifyTargetStatus {
                zone: zone.to_string(),
                target: target.to_string(),
                serial,
                result: result.to_string(),
                at: tsig::now(),
            },
        );
    }
}

/// Starts sending NOTIFY for the snapshots published into `cell`, woken by `published`,
/// from the first of `listen`'s addresses of each target's family (so a secondary that takes
/// NOTIFY only from its primary's address, as BIND does by default, sees the address it
/// transfers from), or from any when DNS listens on a wildcard address.
pub fn start(
    cell: SnapshotCell,
    mut published: watch::Receiver<u64>,
    metrics: Arc<Metrics>,
    status: Arc<NotifyStatus>,
    listen: Vec<SocketAddr>,
) {
    tokio::spawn(async move {
        // One serial channel per (zone, target), its task holding the receiver.
        let mut targets: HashMap<(LowerName, SocketAddr), watch::Sender<Arc<Snapshot>>> =
            HashMap::new();
        loop {
            let snapshot = cell.load_full();
            let mut wanted = Vec::new();
            for zone in &snapshot.zones {
                for &target in &zone.transfer.notify {
                    wanted.push((zone.data.origin_key.clone(), target));
                }
            }
            targets.retain(|key, _| wanted.contains(key));
            for key in wanted {
                match targets.get(&key) {
                    Some(sender) => {
                        sender.send_if_modified(|current| {
                            let changed =
                                serial_of(current, &key.0) != serial_of(&snapshot, &key.0);
                            if changed {
                                *current = Arc::clone(&snapshot);
                            }
                            changed
                        });
                    }
                    None => {
                        // A new target (at start or after a reload) is told the current serial.
                        let (sender, receiver) = watch::channel(Arc::clone(&snapshot));
                        let source = listen
                            .iter()
                            .find(|a| a.is_ipv4() == key.1.is_ipv4())
                            .map(|a| SocketAddr::new(a.ip(), 0));
                        tokio::spawn(target_task(
                            key.0.clone(),
                            key.1,
                            source,
                            receiver,
                            Arc::clone(&metrics),
                            Arc::clone(&status),
                        ));
                        targets.insert(key, sender);
                    }
                }
            }
            if published.changed().await.is_err() {
                return; // The check plane is gone.
            }
        }
    });
}

fn serial_of(snapshot: &Snapshot, zone: &LowerName) -> Option<u32> {
    snapshot
        .zones
        .iter()
        .find(|z| &z.data.origin_key == zone)
        .map(|z| z.serial())
}

/// Tells `target` of each new serial of `zone`, until the zone or target leaves the config.
async fn target_task(
    zone: LowerName,
    target: SocketAddr,
    source: Option<SocketAddr>,
    mut serials: watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    status: Arc<NotifyStatus>,
) {
    let bind: SocketAddr = source.unwrap_or_else(|| {
        if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        }
    });
    let name = zone.to_string();
    let labels = NotifyLabels {
        zone: name.clone(),
        target: target.to_string(),
    };
    let mut failing = false;
    loop {
        let snapshot = Arc::clone(&serials.borrow_and_update());
        if let Some(serial) = serial_of(&snapshot, &zone) {
            status.set(&name, target, serial, "sending");
            let answered = match UdpSocket::bind(bind).await {
                Ok(socket) => notify(&socket, &snapshot, &zone, target, &metrics, &labels).await,
                Err(error) => {
                    warn!(%target, %error, "cannot open a socket to send NOTIFY");
                    false
                }
            };
            if answered {
                status.set(&name, target, serial, "answered");
                if failing {
                    info!(zone = %name, %target, serial, "secondary {target} answers NOTIFY for {name} again");
                }
                failing = false;
            } else {
                status.set(&name, target, serial, "failed");
                metrics.notify_failed.get_or_create(&labels).inc();
                if !failing {
                    warn!(zone = %name, %target, serial, tries = TRIES, "secondary {target} did not answer NOTIFY for {name} serial {serial} after {TRIES} tries; it will pull at its next refresh");
                }
                failing = true;
            }
        }
        if serials.changed().await.is_err() {
            return;
        }
    }
}

/// Sends one NOTIFY for `zone` as `snapshot` holds it, retrying with back-off; true once the
/// target answers it (any response with its ID and opcode: RFC 1996 §4.7 asks only that).
async fn notify(
    socket: &UdpSocket,
    snapshot: &Snapshot,
    zone: &LowerName,
    target: SocketAddr,
    metrics: &Metrics,
    labels: &NotifyLabels,
) -> bool {
    let Some(zone) = snapshot.zones.iter().find(|z| &z.data.origin_key == zone) else {
        return false;
    };
    let id: u16 = rand::random();
    let [id0, id1] = id.to_be_bytes();
    let mut question = lower_wire(&zone.data.origin);
    question.extend_from_slice(&[0, 6, 0, 1]); // SOA, IN
    let mut message = Composer::new([id0, id1, (NOTIFY << 3) | AA, 0], 512, 0);
    if message.question(&question).is_err() || message.record(ANSWER, &zone.soa).is_err() {
        return false;
    }
    let mut message = message.finish();
    if let Some(key) = zone
        .transfer
        .key
        .as_ref()
        .and_then(|name| snapshot.keys.get(name))
    {
        Signer::for_request(Arc::clone(key), tsig::now()).sign(&mut message, id);
    }
    let mut wait = FIRST_WAIT;
    let mut buffer = [0u8; 4096];
    for _ in 0..TRIES {
        metrics.notify_sent.get_or_create(labels).inc();
        if socket.send_to(&message, target).await.is_err() {
            tokio::time::sleep(wait).await;
            wait *= 2;
            continue;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await {
                Ok(Ok((len, from))) if from == target && answers(&buffer[..len], id) => {
                    return true;
                }
                Ok(_) => continue, // Not its answer: keep waiting until the deadline.
                Err(_) => break,
            }
        }
        wait *= 2;
    }
    false
}

/// Whether `response` is a response to our NOTIFY `id`.
fn answers(response: &[u8], id: u16) -> bool {
    response.len() >= 12
        && response[..2] == id.to_be_bytes()
        && response[2] & 0x80 != 0
        && (response[2] >> 3) & 0x0F == NOTIFY
}
