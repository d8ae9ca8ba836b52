//! DNS serving: the pure answer function, the UDP workers, the TCP connections, and the
//! request handling both share.
pub mod answer;
pub mod cache;
pub mod fast;
pub mod rrl;
pub mod server;
pub mod tcp;
pub mod udp;
pub mod wire;
