//! DNS serving: the pure answer function, the UDP workers and the hickory-server glue.
pub mod answer;
pub mod cache;
pub mod server;
pub mod udp;
