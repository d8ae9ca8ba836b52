//! Response rate limiting (RRL) for UDP, as Knot, NSD and BIND do it: each client network
//! (/24 for IPv4, /56 for IPv6) gets at most `rate_limit` responses a second; beyond that,
//! every `rate_limit_slip`-th response is sent truncated (TC set, no records, so a real client
//! retries over TCP, which is never limited) and the rest are dropped. A spoofed flood then
//! cannot use the server as an amplifier, and a real client behind a busy network still gets
//! its answers over TCP.
//!
//! The counts live in one fixed table of atomic buckets shared by every UDP worker (a client's
//! queries spread over workers by source port), indexed by a keyed hash of the network, so
//! the memory is fixed whatever the number of sources, and an attacker cannot aim at another
//! network's bucket. Two networks that share a bucket share its budget. Written by hand: no
//! crate offers a lock-free fixed-memory limiter keyed this way, and the check costs one hash
//! and one atomic operation per response.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::dns::wire::TC;

/// Buckets in the table: 2 MiB, far more than the networks active in any second.
const BUCKETS: usize = 1 << 18;

/// The shared table of per-network response counts.
pub struct RateLimiter {
    /// Responses a second per network.
    limit: u32,
    /// Every Nth limited response is sent truncated; 0: none.
    slip: u32,
    /// Each bucket: the second it counts (high 32 bits) and the count (low 32 bits).
    buckets: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    started: Instant,
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: send it.
    Send,
    /// Over it: send it truncated instead.
    Slip,
    /// Over it: send nothing.
    Drop,
}

impl RateLimiter {
    /// A limiter of `limit` responses a second per network, or None when `limit` is 0 (off).
    pub fn new(limit: u32, slip: u32) -> Option<Self> {
        if limit == 0 {
            return None;
        }
        Some(Self {
            limit,
            slip,
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            started: Instant::now(),
        })
    }

    /// The current second on the limiter's clock, for [`RateLimiter::admit`] (read once a
    /// batch).
    pub fn second(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Counts one response to `client` in `second`; `limited` is the worker's count of
    /// limited responses so far, which decides the slips.
    pub fn admit(&self, client: IpAddr, second: u32, limited: &mut u64) -> Verdict {
        let bucket = &self.buckets[self.bucket(client)];
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (at, count) = ((current >> 32) as u32, current as u32);
            let next = if at == second {
                if count >= self.limit {
                    break;
                }
                current + 1
            } else {
                u64::from(second) << 32 | 1
            };
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Verdict::Send,
                Err(actual) => current = actual,
            }
        }
        *limited = limited.wrapping_add(1);
        if self.slip != 0 && limited.is_multiple_of(u64::from(self.slip)) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    fn bucket(&self, client: IpAddr) -> usize {
        let network: u128 = match client {
            IpAddr::V4(v4) => 1 << 64 | u128::from(u32::from(v4) >> 8),
            IpAddr::V6(v6) => {
                // An IPv4-mapped address is the IPv4 client it stands for.
                match v6.to_ipv4_mapped() {
                    Some(v4) => 1 << 64 | u128::from(u32::from(v4) >> 8),
                    None => 2 << 64 | (u128::from(v6) >> 72),
                }
            }
        };
        (self.hasher.hash_one(network) as usize) % BUCKETS
    }
}

/// `response` cut to its header and question, with TC set and no records: what a limited
/// client gets instead of the answer. None if the question cannot be found (then nothing is
/// sent).
pub fn truncated(response: &[u8]) -> Option<Vec<u8>> {
    let header = response.get(..12)?;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let mut end = 12;
    if questions > 0 {
        // One question (responses with more carry none): its name, uncompressed (see
        // `dns::request`: a request whose first name is compressed gets FORMERR without one).
        loop {
            let length = usize::from(*response.get(end)?);
            if length == 0 {
                end += 1;
                break;
            }
            if length > 63 {
                return None;
            }
            end += 1 + length;
        }
        end += 4;
    }
    let mut cut = response.get(..end)?.to_vec();
    cut[2] |= TC;
    cut[4..6].copy_from_slice(&questions.min(1).to_be_bytes());
    cut[6..12].fill(0);
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_gets_its_limit_a_second_and_every_slip_th_response_beyond_it_truncated() {
        let limiter = RateLimiter::new(5, 2).expect("on");
        let client: IpAddr = "192.0.2.10".parse().expect("ip");
        let neighbour: IpAddr = "192.0.2.200".parse().expect("ip");
        let mut limited = 0;
        let verdicts: Vec<Verdict> = (0..9)
            .map(|i| limiter.admit(if i % 2 == 0 { client } else { neighbour }, 7, &mut limited))
            .collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Send, Send, Send, Send, Send, Drop, Slip, Drop, Slip]
        );
        // Another network has its own budget; the next second starts afresh.
        let elsewhere: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(limiter.admit(elsewhere, 7, &mut limited), Send);
        assert_eq!(limiter.admit(client, 8, &mut limited), Send);
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_56() {
        let limiter = RateLimiter::new(1, 0).expect("on");
        let mut limited = 0;
        let a: IpAddr = "2001:db8:0:ff::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:0:ee::2".parse().expect("ip");
        assert_eq!(limiter.admit(a, 1, &mut limited), Verdict::Send);
        assert_eq!(limiter.admit(b, 1, &mut limited), Verdict::Drop);
        assert!(RateLimiter::new(0, 2).is_none(), "0 turns it off");
    }

    #[test]
    fn a_truncated_response_keeps_header_and_question_only() {
        // ID, flags (QR AA), 1 question, 1 answer; "a." A IN; then an answer record.
        let response = [
            0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 0xC0, 12, 0, 1,
            0, 1, 0, 0, 0, 5, 0, 4, 192, 0, 2, 1,
        ];
        let cut = truncated(&response).expect("cut");
        assert_eq!(
            cut,
            [
                0x12, 0x34, 0x86, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1
            ]
        );
        assert_eq!(truncated(&response[..14]), None);
    }
}
