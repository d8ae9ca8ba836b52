//! A per-worker memo of UDP responses for the current snapshot: the same request bytes (all
//! but the 2-byte ID) against the same snapshot always get the same response bytes, because
//! [`respond`] is deterministic and reads nothing else. So a repeated question costs a hash
//! lookup and a copy instead of decoding, answering and encoding.
//!
//! Exactly identical by construction: the key is the whole request after the ID (flags,
//! question with its case, EDNS), and the memo is emptied whenever the snapshot changes. It
//! holds the snapshot it belongs to, so a new snapshot can never reuse the old one's address.
//! Bounded: when full it starts again empty.
//!
//! A response is memoized the second time its request is seen (a "doorkeeper", as in
//! TinyLFU): in a flood of names never asked twice, as random-subdomain attacks send, each
//! miss costs one hash instead of two copies, an insertion and, every 16k queries, an
//! eviction of everything.
//!
//! Before the memo, [`crate::dns::fast`] answers what cannot change with health (static
//! records, NODATA, NXDOMAIN) from wire data rendered at load: in a large zone most names are
//! asked too rarely for the memo to hold them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::request::respond;
use super::wire::{Answered, Protocol};
use crate::dns::fast::FastPath;
use crate::snapshot::{BuiltFrom, Snapshot};

/// Most responses kept per worker (at about 100 bytes each, a few MB at most).
const CAPACITY: usize = 16_384;

/// Requests remembered as seen once (fingerprints, one per slot; a collision only delays
/// or hastens one memoization).
const DOORKEEPER: usize = 65_536;

/// One worker's memo.
pub struct ResponseCache {
    /// The snapshot every memoized response was answered from.
    built_from: BuiltFrom,
    entries: HashMap<Box<[u8]>, Cached>,
    /// Hashes of requests answered once and not memoized yet, by `hash % DOORKEEPER`.
    seen_once: Box<[u64]>,
    /// Keyed per process, as `HashMap`'s own: requests are chosen by whoever sends them.
    hasher: RandomState,
    /// Answers that cannot change, served before the memo is consulted.
    fast: FastPath,
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self {
            built_from: BuiltFrom::default(),
            entries: HashMap::new(),
            seen_once: vec![0; DOORKEEPER].into_boxed_slice(),
            hasher: RandomState::new(),
            fast: FastPath::default(),
        }
    }
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
        if self.built_from.changed_to(snapshot) {
            self.entries.clear();
        }
        if let Some(answered) = self.fast.respond(snapshot, request, Protocol::Udp) {
            return Some(answered);
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
        let hash = self.hasher.hash_one(key);
        let slot = &mut self.seen_once[(hash % DOORKEEPER as u64) as usize];
        if *slot != hash {
            *slot = hash;
            return Some(answered);
        }
        *slot = 0;
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

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;

    use super::*;

    fn request(id: u16, name: &str) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii(name).expect("name"),
            RecordType::A,
        ));
        message.to_vec().expect("encodes")
    }

    #[test]
    fn a_request_is_memoized_the_second_time_and_answered_alike_from_the_memo() {
        let snapshot = Arc::new(crate::dns::answer::tests::snapshot());
        let source = "127.0.0.1:5300".parse().expect("addr");
        let mut cache = ResponseCache::default();
        let fresh = |id| {
            respond(
                &snapshot,
                &request(id, "www.svc.example.test."),
                Protocol::Udp,
                source,
            )
        };

        let first = cache.respond(&snapshot, &request(1, "www.svc.example.test."), source);
        assert_eq!(cache.entries.len(), 0, "seen once: not memoized");
        let second = cache.respond(&snapshot, &request(2, "www.svc.example.test."), source);
        assert_eq!(cache.entries.len(), 1, "seen twice: memoized");
        let third = cache.respond(&snapshot, &request(3, "www.svc.example.test."), source);
        for (id, answered) in [(1, first), (2, second), (3, third)] {
            let answered = answered.expect("answered");
            assert_eq!(
                answered.bytes,
                fresh(id).expect("answered").bytes,
                "ID {id}"
            );
        }
    }

    #[test]
    fn names_asked_once_are_not_memoized() {
        let snapshot = Arc::new(crate::dns::answer::tests::snapshot());
        let source = "127.0.0.1:5300".parse().expect("addr");
        let mut cache = ResponseCache::default();
        for n in 0..1000u16 {
            let name = format!("r{n}.svc.example.test.");
            let answered = cache.respond(&snapshot, &request(n, &name), source);
            assert_eq!(answered.expect("answered").rcode, ResponseCode::NXDomain);
        }
        assert_eq!(cache.entries.len(), 0);
    }
}
