use super::*;
use crate::config::{CheckKind, CheckPlan, HttpCheck};
use crate::health::sockets::closed_port;

const INTERVAL: Duration = Duration::from_millis(50);
/// Longer than any wait here, so a hung check never finishes within a test.
const TIMEOUT: Duration = Duration::from_secs(30);

fn http_plan(port: u16) -> CheckPlan {
    CheckPlan {
        kind: CheckKind::Http(HttpCheck {
            scheme: "http".into(),
            path: "/".into(),
            host: None,
            expect_status: 200..=299,
            tls_verify: true,
            expect_body: None,
        }),
        port,
        interval: TIMEOUT,
        timeout: TIMEOUT,
        fast_interval: TIMEOUT,
        down_interval: TIMEOUT,
        hold: false,
        rise: 1,
        fall: 1,
    }
}

/// Collects reports until `done` says stop or 10 s pass.
async fn collect(schedule: &mut Schedule, done: impl FnMut(&[Report]) -> bool) -> Vec<Report> {
    collect_within(schedule, Duration::from_secs(10), done).await
}

/// Collects every report that arrives within `limit`.
async fn collect_for(schedule: &mut Schedule, limit: Duration) -> Vec<Report> {
    collect_within(schedule, limit, |_| false).await
}

/// Collects reports until `done` says stop or `limit` passes.
async fn collect_within(
    schedule: &mut Schedule,
    limit: Duration,
    mut done: impl FnMut(&[Report]) -> bool,
) -> Vec<Report> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&all) && tokio::time::Instant::now() < deadline {
        let mut batch = Vec::new();
        let next = schedule.next(&mut batch, 64);
        if tokio::time::timeout_at(deadline, next).await.is_ok() {
            all.append(&mut batch);
        }
    }
    all
}

#[tokio::test]
async fn a_hung_check_does_not_delay_the_others() {
    // Accepts and never answers: the HTTP check hangs until its timeout.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hung_port = hung.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
        }
    });
    // Accepts at once: the TCP check passes.
    let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let live_addr = live.local_addr().expect("addr");

    let mut schedule = Schedule::default();
    let localhost = "127.0.0.1".parse().expect("ip");
    let probe = Probe::new(
        &http_plan(hung_port),
        std::net::SocketAddr::new(localhost, hung_port),
        &mut Default::default(),
    )
    .expect("probe");
    schedule.add(1, 1, probe, TIMEOUT, TIMEOUT);
    schedule.add(
        2,
        2,
        Probe::Tcp {
            target: live_addr,
            sockets: Default::default(),
        },
        INTERVAL,
        TIMEOUT,
    );

    let reports = collect(&mut schedule, |all| {
        all.iter().filter(|r| r.probe == 2).count() >= 5
    })
    .await;
    assert!(
        reports
            .iter()
            .filter(|r| r.probe == 2)
            .all(|r| r.outcome.is_ok()),
        "{reports:?}"
    );
    assert!(
        reports.iter().filter(|r| r.probe == 2).count() >= 5,
        "the live member kept being checked: {reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.probe != 1),
        "the hung check had not timed out yet: {reports:?}"
    );
    held.abort();
}

/// When each probe reported, by the paused clock, over `limit` from now.
async fn timeline(seed: u64, probes: u64, limit: Duration) -> Vec<(u64, Duration)> {
    let (_reserved, addr) = closed_port("127.0.0.1");
    let mut schedule = Schedule::seeded(seed);
    let sockets = std::sync::Arc::default();
    for id in 0..probes {
        let probe = Probe::Tcp {
            target: addr,
            sockets: std::sync::Arc::clone(&sockets),
        };
        schedule.add(id, id, probe, Duration::from_secs(1), TIMEOUT);
    }
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < limit {
        let mut batch = Vec::new();
        let next = schedule.next(&mut batch, 64);
        if tokio::time::timeout_at(start + limit, next).await.is_ok() {
            seen.extend(batch.iter().map(|r| (r.probe, start.elapsed())));
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn first_checks_spread_and_later_ones_jitter_within_bounds_replayably() {
    let (probes, limit) = (20, Duration::from_millis(3500));
    let first = timeline(7, probes, limit).await;
    for id in 0..probes {
        let times: Vec<Duration> = first
            .iter()
            .filter(|(probe, _)| *probe == id)
            .map(|(_, at)| *at)
            .collect();
        // Within a tenth of the interval (at most FIRST_CHECK_SPREAD), then every
        // interval ±5% (a millisecond either side for the queue's tick).
        assert!(
            times[0] <= FIRST_CHECK_SPREAD + Duration::from_millis(1),
            "{id}: {times:?}"
        );
        assert_eq!(times.len(), 4, "{id}: {times:?}");
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            let (low, high) = (Duration::from_millis(949), Duration::from_millis(1051));
            assert!(
                (low..=high).contains(&gap),
                "{id}: gap {gap:?} in {times:?}"
            );
        }
    }
    let offsets: std::collections::HashSet<Duration> = first.iter().map(|(_, at)| *at).collect();
    assert!(offsets.len() > 40, "jitter spreads the checks: {offsets:?}");
    // The same seed replays the same schedule; another one does not.
    assert_eq!(timeline(7, probes, limit).await, first);
    assert_ne!(timeline(8, probes, limit).await, first);
}

#[tokio::test(start_paused = true)]
async fn checks_over_in_their_first_step_all_report_when_many_are_due_at_once() {
    // More than one round of first steps, each over at once (refused), handed out in
    // batches smaller than a round: none may be lost or doubled on the way.
    let (_reserved, addr) = closed_port("127.0.0.1");
    let mut schedule = Schedule::default();
    let probes = 3 * BEGIN_ROUND as u64 + 7;
    let sockets = std::sync::Arc::default();
    for id in 0..probes {
        let probe = Probe::Tcp {
            target: addr,
            sockets: std::sync::Arc::clone(&sockets),
        };
        // Every first check within 200 ms, the next not before 1.9 s.
        schedule.add(id, id, probe, Duration::from_secs(2), TIMEOUT);
    }
    // The clock is paused: moved past every first check at once, they are all due now.
    tokio::time::advance(Duration::from_millis(250)).await;
    let reports = collect(&mut schedule, |all| all.len() as u64 >= probes).await;
    let mut seen: Vec<u64> = reports.iter().map(|r| r.probe).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..probes).collect::<Vec<_>>(), "each probe once");
    assert!(reports.iter().all(|r| r.outcome.is_err()), "{reports:?}");
}

#[tokio::test]
async fn a_slot_reused_by_a_new_probe_serves_only_the_new_one() {
    let (_reserved, addr) = closed_port("127.0.0.1");
    let tcp = || Probe::Tcp {
        target: addr,
        sockets: Default::default(),
    };
    let mut schedule = Schedule::default();
    schedule.add(1, 10, tcp(), INTERVAL, TIMEOUT);
    let first = collect(&mut schedule, |all| !all.is_empty()).await;
    assert!(
        matches!(
            first[..],
            [Report {
                probe: 1,
                tag: 10,
                ..
            }]
        ),
        "{first:?}"
    );
    // Probe 1's next run is queued; probe 2 takes its slot, due in 100 ms at most and
    // then not for 950 ms. Were the queued entry taken for probe 2, it would run twice.
    assert_eq!(schedule.retain(|id| id != 1), 1);
    schedule.add(2, 20, tcp(), Duration::from_secs(1), TIMEOUT);
    let reports = collect_for(&mut schedule, Duration::from_millis(600)).await;
    assert!(
        matches!(
            reports[..],
            [Report {
                probe: 2,
                tag: 20,
                ..
            }]
        ),
        "{reports:?}"
    );
}

#[tokio::test]
async fn a_check_in_flight_reports_with_the_tag_its_probe_has_when_it_ends() {
    // Accepts and never answers: the HTTP check hangs until its timeout.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = hung.local_addr().expect("addr").port();
    let (accepted, mut in_flight) = tokio::sync::mpsc::channel(8);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
            let _ = accepted.send(()).await;
        }
    });
    let localhost = "127.0.0.1".parse().expect("ip");
    let probe = Probe::new(
        &http_plan(port),
        std::net::SocketAddr::new(localhost, port),
        &mut Default::default(),
    )
    .expect("probe");
    let mut schedule = Schedule::default();
    let timeout = Duration::from_millis(300);
    schedule.add(3, 30, probe, Duration::from_secs(30), timeout);
    let mut batch = Vec::new();
    tokio::select! {
        _ = in_flight.recv() => {}
        () = schedule.next(&mut batch, 64) => panic!("reported before it began: {batch:?}"),
    }
    assert!(schedule.retag(3, 31));
    assert!(!schedule.retag(4, 41), "no probe 4");
    let reports = collect(&mut schedule, |all| !all.is_empty()).await;
    assert!(
        matches!(
            reports[..],
            [Report {
                probe: 3,
                tag: 31,
                outcome: Err(_),
                ..
            }]
        ),
        "{reports:?}"
    );
    held.abort();
}

#[tokio::test]
async fn a_removed_probe_is_not_run_again() {
    let (_reserved, addr) = closed_port("127.0.0.1");
    let mut schedule = Schedule::default();
    schedule.add(
        7,
        7,
        Probe::Tcp {
            target: addr,
            sockets: Default::default(),
        },
        INTERVAL,
        TIMEOUT,
    );
    let first = collect(&mut schedule, |all| !all.is_empty()).await;
    assert!(
        matches!(
            first[..],
            [Report {
                probe: 7,
                outcome: Err(_),
                ..
            }]
        ),
        "{first:?}"
    );

    assert_eq!(schedule.retain(|id| id != 7), 1);
    assert!(!schedule.contains(7));
    let mut batch = Vec::new();
    let waited = tokio::time::timeout(INTERVAL * 6, schedule.next(&mut batch, 64)).await;
    assert!(waited.is_err(), "no report after removal: {batch:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_member_is_checked_fast_until_down_then_at_the_down_interval() {
    // A closed port: every check fails. fall 3, fast 50 ms, down 500 ms, interval 1 s.
    let (_reserved, addr) = closed_port("127.0.0.1");
    let mut schedule = Schedule::seeded(3);
    let probe = Probe::Tcp {
        target: addr,
        sockets: Default::default(),
    };
    let pacing = Pacing {
        interval: Duration::from_secs(1),
        fast: Duration::from_millis(50),
        down: Duration::from_millis(500),
        fall: 3,
        rise: 2,
        hold: false,
    };
    schedule.add_paced(1, 1, probe, pacing, TIMEOUT);
    let start = tokio::time::Instant::now();
    let mut times = Vec::new();
    while times.len() < 6 {
        let mut batch = Vec::new();
        schedule.next(&mut batch, 8).await;
        times.extend(batch.iter().map(|_| start.elapsed()));
    }
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // In doubt after the first failure: two fast re-checks; down at the third: 500 ms apart.
    let near = |gap: u128, want: u128| gap.abs_diff(want) <= want / 20 + 1;
    assert!(near(gaps[0], 50) && near(gaps[1], 50), "{gaps:?}");
    assert!(gaps[2..].iter().all(|&g| near(g, 500)), "{gaps:?}");
}
