//! The request path in-process (`respond_to_bytes`: hickory's decoding, our answer, EDNS,
//! truncation, encoding) over the fuzz seeds, every fuzz finding kept in
//! `fuzz/regressions/`, the malformed packets of the wire tests, and every one-byte cut and
//! one-bit flip of the seeds. The invariants are the fuzz target's.

use std::fs;
use std::path::Path;

use crate::common::*;
use failover_dns::dns::request::respond_to_bytes;
use failover_dns::dns::wire::{MAX_UDP_PAYLOAD, Protocol};
use failover_dns::health::Monitor;
use failover_dns::snapshot::Snapshot;
use hickory_proto::op::{Message, MessageType};

fn snapshot() -> Snapshot {
    let plan = failover_dns::config::load(&repo_root().join("fuzz/fuzz.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    Monitor::new(plan, Vec::new(), Default::default(), None).snapshot()
}

/// Every file in `dir`, as bytes.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| fs::read(e.ok()?.path()).ok())
        .collect()
}

/// Panics if the response to `input` breaks an invariant; returns whether there was one.
fn check(snapshot: &Snapshot, input: &[u8]) -> bool {
    let mut answered = false;
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let Some(response) = respond_to_bytes(snapshot, input, protocol) else {
            continue;
        };
        answered = true;
        assert_eq!(response[..2], input[..2], "ID echoed for {input:02x?}");
        if protocol == Protocol::Udp {
            assert!(
                response.len() <= usize::from(MAX_UDP_PAYLOAD),
                "{input:02x?}"
            );
        }
        let message = Message::from_vec(&response)
            .unwrap_or_else(|e| panic!("our response to {input:02x?} does not decode: {e}"));
        assert_eq!(message.metadata.message_type, MessageType::Response);
    }
    answered
}

#[test]
fn seeds_findings_and_malformed_packets_keep_the_invariants() {
    let snapshot = snapshot();
    let seeds = files(&repo_root().join("fuzz/seeds/request"));
    assert!(
        seeds.len() >= 10,
        "the fuzz seeds are in fuzz/seeds/request"
    );
    let answered = seeds.iter().filter(|seed| check(&snapshot, seed)).count();
    assert_eq!(answered, seeds.len(), "every seed is a well-formed query");
    for finding in files(&repo_root().join("fuzz/regressions/request")) {
        check(&snapshot, &finding);
    }
    for (_, packet) in malformed_packets() {
        check(&snapshot, &packet);
    }
}

#[test]
fn every_cut_and_bit_flip_of_the_seeds_keeps_the_invariants() {
    let snapshot = snapshot();
    let mut cases = 0;
    for seed in files(&repo_root().join("fuzz/seeds/request")) {
        for cut in 0..seed.len() {
            check(&snapshot, &seed[..cut]);
            cases += 1;
        }
        for byte in 0..seed.len() {
            for bit in 0..8 {
                let mut flipped = seed.clone();
                flipped[byte] ^= 1 << bit;
                check(&snapshot, &flipped);
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "{cases} cases");
}
