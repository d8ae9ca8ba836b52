//! A per-worker memo of UDP responses for the current snapshot: the same request bytes (all
//! but the 2-byte ID) against the same snapshot always get the same response bytes, because
//! [`respond`](super::request::respond) is deterministic and reads nothing else. So a
//! repeated question costs a hash lookup and a copy instead of decoding, answering and
//! encoding.
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
//! The memo is one step of [`super::responder::Responder`]'s chain, after the fast path and
//! before the full path; this module only keeps and finds responses.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::wire::Answered;
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
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self {
            built_from: BuiltFrom::default(),
            entries: HashMap::new(),
            seen_once: vec![0; DOORKEEPER].into_boxed_slice(),
            hasher: RandomState::new(),
        }
    }
}

struct Cached {
    response: Response,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
}

/// What a memoized request is answered with.
enum Response {
    /// Always these bytes.
    One(Box<[u8]>),
    /// A `weighted` answer: one response per member that can be drawn (those seen so far), and
    /// the running sums of their weights the memo draws by, as the full path would.
    Drawn {
        sums: Arc<[u64]>,
        variants: Box<[Option<Box<[u8]>>]>,
    },
}

impl ResponseCache {
    /// The memoized response to `request` against `snapshot`, with the request's ID; a new
    /// snapshot empties the memo first.
    pub fn get(&mut self, snapshot: &Arc<Snapshot>, request: &[u8]) -> Option<Answered> {
        if self.built_from.changed_to(snapshot) {
            self.entries.clear();
        }
        let (id, key) = (request.get(..2)?, request.get(2..)?);
        let hit = self.entries.get(key)?;
        let response = match &hit.response {
            Response::One(response) => response,
            Response::Drawn { sums, variants } => {
                let drawn = crate::snapshot::draw(sums)?;
                match variants.get(drawn) {
                    Some(Some(response)) => response,
                    _ => {
                        // Not seen yet: the full path answers with this very draw.
                        crate::snapshot::force_next_draw(drawn);
                        return None;
                    }
                }
            }
        };
        let mut bytes = response.to_vec();
        bytes[..2].copy_from_slice(id);
        Some(Answered {
            bytes,
            rcode: hit.rcode,
            qtype: hit.qtype,
        })
    }

    /// Offers `answered`, the response to `request` against the snapshot of the last
    /// [`get`](Self::get): kept the second time its request is seen. `drawn`: the response
    /// holds one weighted draw, by these sums, of this index.
    pub fn offer(
        &mut self,
        request: &[u8],
        answered: &Answered,
        drawn: Option<crate::snapshot::Drawn>,
    ) {
        let Some(key) = request.get(2..) else {
            return;
        };
        if let Some((sums, index)) = &drawn
            && let Some(Cached {
                response:
                    Response::Drawn {
                        sums: kept,
                        variants,
                    },
                ..
            }) = self.entries.get_mut(key)
            && Arc::ptr_eq(kept, sums)
        {
            if let Some(slot) = variants.get_mut(*index) {
                *slot = Some(answered.bytes.clone().into_boxed_slice());
            }
            return;
        }
        let hash = self.hasher.hash_one(key);
        let slot = &mut self.seen_once[(hash % DOORKEEPER as u64) as usize];
        if *slot != hash {
            *slot = hash;
            return;
        }
        *slot = 0;
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        let bytes = answered.bytes.clone().into_boxed_slice();
        let response = match drawn {
            None => Response::One(bytes),
            Some((sums, index)) => {
                let mut variants: Box<[Option<Box<[u8]>>]> = vec![None; sums.len()].into();
                if let Some(slot) = variants.get_mut(index) {
                    *slot = Some(bytes);
                }
                Response::Drawn { sums, variants }
            }
        };
        let cached = Cached {
            response,
            rcode: answered.rcode,
            qtype: answered.qtype,
        };
        self.entries.insert(key.into(), cached);
    }

    /// How many responses are memoized.
    #[cfg(test)]
    pub fn memoized(&self) -> usize {
        self.entries.len()
    }
}
