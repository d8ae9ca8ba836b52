//! DNS serving: the pure answer function and the listeners that feed it.
pub mod answer;
pub mod server;
