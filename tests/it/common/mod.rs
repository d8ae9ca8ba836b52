//! Helpers for integration tests: the real `failover-dns` binary on loopback, a small DNS
//! client, and toy backends that tests start, break and kill.
//!
//! Every test gets its own random 127.x.y.z addresses, so tests run in parallel without
//! sharing ports. Nothing here sleeps a guessed time: [`wait_until`] polls with a deadline.

pub mod api;
pub mod backends;
pub mod client;
pub mod https;
pub mod server;

pub use api::*;
pub use backends::*;
pub use client::*;
pub use server::*;

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rand::distr::{Distribution, StandardUniform};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// The bundled example zone, used by most tests.
pub const ZONE: &str = include_str!("../../../zones/svc.example.test.zone");

/// Polls `condition` every 10 ms until it holds, or panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, condition: impl FnMut() -> bool) {
    wait_until_showing(what, limit, condition, String::new);
}

/// As [`wait_until`], adding `detail()` (a peer's log, say) to the panic.
pub fn wait_until_showing(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> bool,
    detail: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}\n{}",
            detail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `ready` until it holds; panics with `log()` if `child` (named `what`) exits first or
/// 20 s pass.
pub fn wait_for_start(
    child: &mut Child,
    what: &str,
    log: impl Fn() -> String,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before answering:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer within 20s:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where the environment variable names a seed, tests draw their random addresses and IDs
/// from it, to replay a failure.
pub const SEED_VARIABLE: &str = "FAILOVER_DNS_TEST_SEED";

thread_local! {
    /// Each test thread's random numbers, from a seed it prints (shown when the test fails).
    static RNG: std::cell::RefCell<SmallRng> = std::cell::RefCell::new({
        let seed = std::env::var(SEED_VARIABLE)
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("random numbers from seed {seed} (replay with {SEED_VARIABLE}={seed})");
        SmallRng::seed_from_u64(seed)
    });
}

/// A random value from this thread's seeded generator.
pub fn random<T>() -> T
where
    StandardUniform: Distribution<T>,
{
    RNG.with(|rng| rng.borrow_mut().random())
}

/// A random loopback address in 127.1.0.0–127.254.255.254, private to one test.
pub fn loopback_ip() -> IpAddr {
    let n: u32 = RNG.with(|rng| rng.borrow_mut().random_range(0x01_00_01..0xFE_FF_FF));
    IpAddr::V4(Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// A port free for TCP and UDP on every address in `ips`, as chosen by the OS for the first.
pub fn free_port(ips: &[IpAddr]) -> u16 {
    for _ in 0..100 {
        let Ok(first) = TcpListener::bind((ips[0], 0)) else {
            continue;
        };
        let Ok(port) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        let free = ips.iter().all(|ip| {
            let tcp = ip == &ips[0] || TcpListener::bind((*ip, port)).is_ok();
            tcp && UdpSocket::bind((*ip, port)).is_ok()
        });
        if free {
            return port;
        }
    }
    panic!("no free port on {ips:?}");
}

/// Runs the binary with `args` to completion, returning its status and its stdout then stderr.
pub fn run_binary(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_failover-dns"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run failover-dns");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

/// The repository root, for tests of the bundled example files.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
