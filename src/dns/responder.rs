//! The responder chain both transports share: the fast path ([`super::fast`]: what cannot
//! change with health, from wire data rendered at load), then over UDP the memo
//! ([`super::cache`]: responses this snapshot gave before), then the full path
//! ([`super::request::respond`]). Each step answers exactly as the full path would.
//!
//! One per UDP worker and one per TCP connection; it never blocks and holds no lock.

use std::net::SocketAddr;
use std::sync::Arc;

use super::cache::ResponseCache;
use super::fast::FastPath;
use super::request::respond;
use super::wire::{Answered, Protocol};
use super::{transfer, tsig};
use crate::snapshot::Snapshot;

/// Answers requests over one transport.
pub struct Responder {
    protocol: Protocol,
    fast: FastPath,
    /// UDP only: a TCP connection lives too short, and asks too little, for a memo to pay.
    memo: Option<ResponseCache>,
}

impl Responder {
    /// For a UDP worker: fast path, memo, full path.
    pub fn udp() -> Self {
        Self {
            protocol: Protocol::Udp,
            fast: FastPath::default(),
            memo: Some(ResponseCache::default()),
        }
    }

    /// For a TCP connection: fast path, full path.
    pub fn tcp() -> Self {
        Self {
            protocol: Protocol::Tcp,
            fast: FastPath::default(),
            memo: None,
        }
    }

    /// The response to `request` from `source` against `snapshot`; None when none is sent.
    pub fn respond(
        &mut self,
        snapshot: &Arc<Snapshot>,
        request: &[u8],
        source: SocketAddr,
    ) -> Option<Answered> {
        if let Some(answered) = self.fast.respond(snapshot, request, self.protocol) {
            return Some(answered);
        }
        // Not memoized: a signed request (its response is signed afresh) and a zone transfer
        // (who asks decides the answer).
        let memo = self
            .memo
            .as_mut()
            .filter(|_| !tsig::ends_in_tsig(request) && transfer::asked(request).is_none());
        let Some(memo) = memo else {
            return respond(snapshot, request, self.protocol, source);
        };
        // Draws the full path made outside the memo (TCP, signed requests) are not ours.
        crate::snapshot::take_draws();
        if let Some(hit) = memo.get(snapshot, request) {
            return Some(hit);
        }
        let answered = respond(snapshot, request, self.protocol, source);
        // A response with one weighted draw is kept as that draw's variant (the memo draws
        // among them); one with several (a weighted name as more than one target) is not kept.
        let answered = match crate::snapshot::take_draws() {
            (0, _) => {
                let answered = answered?;
                memo.offer(request, &answered, None);
                answered
            }
            (1, drawn) => {
                let answered = answered?;
                memo.offer(request, &answered, drawn);
                answered
            }
            _ => answered?,
        };
        Some(answered)
    }

    /// How many responses the memo holds.
    #[cfg(test)]
    fn memoized(&self) -> usize {
        self.memo.as_ref().map_or(0, ResponseCache::memoized)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;

    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;

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
        let mut responder = Responder::udp();
        let fresh = |id| {
            respond(
                &snapshot,
                &request(id, "www.svc.example.test."),
                Protocol::Udp,
                source,
            )
        };

        let first = responder.respond(&snapshot, &request(1, "www.svc.example.test."), source);
        assert_eq!(responder.memoized(), 0, "seen once: not memoized");
        let second = responder.respond(&snapshot, &request(2, "www.svc.example.test."), source);
        assert_eq!(responder.memoized(), 1, "seen twice: memoized");
        let third = responder.respond(&snapshot, &request(3, "www.svc.example.test."), source);
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
        let mut responder = Responder::udp();
        for n in 0..1000u16 {
            let name = format!("r{n}.svc.example.test.");
            let answered = responder.respond(&snapshot, &request(n, &name), source);
            assert_eq!(answered.expect("answered").rcode, ResponseCode::NXDomain);
        }
        assert_eq!(responder.memoized(), 0);
    }
}
