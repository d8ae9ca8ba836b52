//! Who may transfer a zone and whom to tell of its changes, as the config says: a zone's
//! `allow_transfer`, `transfer_key` and `notify`. Data only, carried by each zone's snapshot;
//! [`super::transfer`] and [`super::secondaries`] act on it.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::LowerName;
use ipnet::IpNet;

/// Who may transfer one zone.
#[derive(Debug, Default, Clone)]
pub struct TransferPolicy {
    /// Addresses and prefixes transfers may come from; empty: nobody.
    pub allow: Vec<IpNet>,
    /// The key every transfer request must be signed with, if any.
    pub key: Option<LowerName>,
    /// Where NOTIFY is sent on every new serial.
    pub notify: Vec<SocketAddr>,
}

impl TransferPolicy {
    /// Whether a transfer may come from `source` (an IPv4-mapped IPv6 address as IPv4).
    pub fn allows(&self, source: IpAddr) -> bool {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&source))
    }
}
