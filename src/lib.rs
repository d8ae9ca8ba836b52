//! failover-dns: an authoritative DNS server whose service names follow member health.
pub mod config;
pub mod error;
pub mod zone;
