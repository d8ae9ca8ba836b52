//! The process's file descriptors, shared out so that no flood of DNS or API clients can take
//! those the health checks need.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (Linux's default soft limit
//! of 1,024 is far below what a server needs). Then every member is reserved a descriptor for
//! its check, plus the check plane's socket pool and a margin for files and listeners; DNS TCP
//! and API connections are capped within what remains. This module only computes and logs:
//! the caps are enforced where connections are accepted.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tracing::{info, warn};

use crate::config::Plan;

/// Descriptors kept for everything but checks and client connections: listeners, the
/// reactor, zone and state files, webhook and log output.
const MARGIN: u64 = 128;

/// Descriptors the check plane keeps besides one per member: its pool of idle sockets.
const CHECK_POOL: u64 = 2 * 256;

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptors {
    /// The soft `RLIMIT_NOFILE` in force.
    pub limit: u64,
    /// Kept for health checks.
    pub checks: u64,
    /// Most DNS TCP connections open at once (`tcp_max_clients`, lowered to fit).
    pub tcp_clients: usize,
    /// Most API connections open at once (`http_max_clients`, lowered to fit).
    pub http_clients: usize,
}

impl Descriptors {
    /// What `plan` needs beyond the hard descriptor limit of this process, if anything: the
    /// checks' and holds' descriptors, the DNS TCP and API connections, the margin. For
    /// `check`, which says so before a start would have to lower the connection caps.
    pub fn shortfall(plan: &Plan) -> Option<(u64, u64)> {
        let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(_, hard)| hard);
        let needed = member_descriptors(plan)
            .saturating_add(CHECK_POOL)
            .saturating_add(MARGIN)
            .saturating_add(plan.server.tcp_max_clients as u64)
            .saturating_add(plan.server.http_max_clients as u64);
        (needed > hard).then_some((needed, hard))
    }

    /// Raises the soft descriptor limit to the hard one and shares it out for `plan`.
    pub fn raise_and_share(plan: &Plan) -> Self {
        let limit = raise_soft_limit();
        let members = member_descriptors(plan);
        let (tcp, http) = (plan.server.tcp_max_clients, plan.server.http_max_clients);
        let shared = share(limit, members, tcp, http);
        if shared.tcp_clients < tcp || shared.http_clients < http {
            warn!(
                limit,
                checks = shared.checks,
                tcp_max_clients = shared.tcp_clients,
                http_max_clients = shared.http_clients,
                "the descriptor limit ({limit}) cannot hold {tcp} DNS TCP and {http} API connections beside the {} kept for health checks; serving at most {} and {} (raise the hard RLIMIT_NOFILE, e.g. LimitNOFILE= in systemd)",
                shared.checks,
                shared.tcp_clients,
                shared.http_clients
            );
        } else {
            info!(
                limit,
                checks = shared.checks,
                tcp_max_clients = shared.tcp_clients,
                http_max_clients = shared.http_clients,
                "file descriptors: {limit}, {} kept for health checks",
                shared.checks
            );
        }
        shared
    }
}

/// Shares `limit` descriptors: checks first; of the rest, up to a quarter to API connections
/// and the remainder to DNS TCP, each within what is configured and at least one (so both
/// still work, however slowly, on a starved host).
fn share(limit: u64, members: u64, tcp: usize, http: usize) -> Descriptors {
    let checks = members.saturating_add(CHECK_POOL);
    let left =
        usize::try_from(limit.saturating_sub(checks).saturating_sub(MARGIN)).unwrap_or(usize::MAX);
    let http_clients = (left / 4).clamp(1, http.max(1));
    let tcp_clients = left.saturating_sub(http_clients).clamp(1, tcp.max(1));
    Descriptors {
        limit,
        checks,
        tcp_clients,
        http_clients,
    }
}

/// One descriptor per member for its checks, and a second for a member whose check holds a
/// connection open.
fn member_descriptors(plan: &Plan) -> u64 {
    plan.services
        .iter()
        .map(|s| s.members.len() as u64 * if s.check.hold { 2 } else { 1 })
        .sum()
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; the soft limit in force afterwards.
fn raise_soft_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(error) => {
            warn!(%error, soft, hard, "cannot raise the descriptor limit to the hard limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_first_and_tcp_gets_what_is_left() {
        // Plenty: the configured caps.
        let plenty = share(1_048_576, 20_000, 1000, 64);
        assert_eq!((plenty.tcp_clients, plenty.http_clients), (1000, 64));
        // 1,024 descriptors and 2 members: 1024 - 514 - 128 = 382 left, the API's 64 fit.
        let shared = share(1024, 2, 1000, 64);
        assert_eq!(shared.checks, 514);
        assert_eq!((shared.tcp_clients, shared.http_clients), (318, 64));
        // Tighter: the API gets a quarter of what is left.
        let tight = share(800, 2, 1000, 64);
        assert_eq!((tight.tcp_clients, tight.http_clients), (119, 39));
        // Starved: still one each.
        let starved = share(100, 2, 1000, 64);
        assert_eq!((starved.tcp_clients, starved.http_clients), (1, 1));
    }
}
