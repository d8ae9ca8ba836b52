//! A per-worker memo of UDP responses for the current snapshot: the same request bytes (all
//! but the 2-byte ID) against the same snapshot always get the same response bytes, because
//! [`respond`] is deterministic and reads nothing else. So a repeated question costs a hash
//! lookup and a copy instead of decoding, answering and encoding.
//!
//! Exactly identical by construction: the key is the whole request after the ID (flags,
//! question with its case, EDNS), and the memo is emptied whenever the snapshot changes. It
//! holds the snapshot it belongs to, so a new snapshot can never reuse the old one's address.
//! Bounded: when full it starts again empty.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::server::{Answered, Protocol, respond};
use crate::snapshot::Snapshot;

/// Most responses kept per worker (at about 100 bytes each, a few MB at most).
const CAPACITY: usize = 16_384;

/// One worker's memo.
#[derive(Default)]
pub struct ResponseCache {
    snapshot: Option<Arc<Snapshot>>,
    entries: HashMap<Box<[u8]>, Cached>,
}

struct Cached {
    response: Box<[u8]>,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
}

impl ResponseCache {
    /// What [`respond`] answers to `request` over UDP against `snapshot`, from the memo when
    /// this snapshot has answered the same request before.
    pub fn respond(
        &mut self,
        snapshot: &Arc<Snapshot>,
        request: &[u8],
        source: SocketAddr,
    ) -> Option<Answered> {
        if !self
            .snapshot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, snapshot))
        {
            self.entries.clear();
            self.snapshot = Some(Arc::clone(snapshot));
        }
        let (Some(id), Some(key)) = (request.get(..2), request.get(2..)) else {
            return respond(snapshot, request, Protocol::Udp, source);
        };
        if let Some(hit) = self.entries.get(key) {
            let mut bytes = hit.response.to_vec();
            bytes[..2].copy_from_slice(id);
            return Some(Answered {
                bytes,
                rcode: hit.rcode,
                qtype: hit.qtype,
            });
        }
        let answered = respond(snapshot, request, Protocol::Udp, source)?;
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        let cached = Cached {
            response: answered.bytes.clone().into_boxed_slice(),
            rcode: answered.rcode,
            qtype: answered.qtype,
        };
        self.entries.insert(key.into(), cached);
        Some(answered)
    }
}
