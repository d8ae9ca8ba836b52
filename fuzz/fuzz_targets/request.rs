//! Arbitrary bytes as a DNS request, over UDP and over TCP, through everything the server does
//! with a datagram or TCP frame after reading it: hickory's decoding, our answer function,
//! EDNS, truncation and encoding. A panic, a hang or a response that breaks an invariant
//! below is a finding, and so is a response from the pre-rendered fast path that differs by
//! one byte from the full path's.
#![no_main]

use std::path::Path;
use std::sync::{Arc, LazyLock};

use failover_dns::dns::request::respond_to_bytes;
use failover_dns::dns::wire::{MAX_UDP_PAYLOAD, Protocol};
use failover_dns::health::Monitor;
use failover_dns::dns::fast::FastPath;
use failover_dns::snapshot::Snapshot;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

static SNAPSHOT: LazyLock<Arc<Snapshot>> = LazyLock::new(|| {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz.toml");
    let plan = failover_dns::config::load(&config).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Monitor::new(plan, Vec::new(), Default::default(), None).snapshot())
});

fuzz_target!(|data: &[u8]| {
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        if let Some(fast) = FastPath::default().respond(&SNAPSHOT, data, protocol) {
            let full = respond_to_bytes(&SNAPSHOT, data, protocol);
            assert_eq!(Some(fast.bytes), full, "the fast path answers as the full path does");
        }
    }
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let Some(response) = respond_to_bytes(&SNAPSHOT, data, protocol) else {
            continue;
        };
        assert_eq!(response[..2], data[..2], "the response carries the request's ID");
        if protocol == Protocol::Udp {
            assert!(response.len() <= usize::from(MAX_UDP_PAYLOAD));
        }
        let message = Message::from_vec(&response).expect("our own response decodes");
        assert!(message.metadata.message_type == hickory_proto::op::MessageType::Response);
    }
});
