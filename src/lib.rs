//! failover-dns: an authoritative DNS server whose service names follow member health.
pub mod config;
pub mod error;
pub mod health;
pub mod policy;
pub mod snapshot;
pub mod zone;
