//! The integration tests, in one binary (built and linked once): each module starts the real
//! `failover-dns` binary, or the library's request path, on loopback and talks to it over real
//! sockets; `common` holds the helpers they share.

mod common;

mod api;
mod checks;
mod cli;
mod corpus;
mod dns;
mod failover;
mod hardening;
mod hold;
mod knot;
mod page;
mod policies;
mod request_path;
mod systemd;
mod transfer;
mod watch;
