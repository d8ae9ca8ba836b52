//! `GET /watch` as a client-aware consumer meets it: a real HTTP connection to the real
//! binary's API, reading Server-Sent Events as they come, while a real backend dies.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::*;

const WWW: &str = "www.svc.example.test.";

/// One SSE event: its name, id and data.
#[derive(Debug)]
struct Sse {
    event: String,
    id: u64,
    data: serde_json::Value,
}

/// An open `/watch` stream.
struct Watch {
    reader: BufReader<TcpStream>,
}

impl Watch {
    fn open(base: &str, query: &str, last_event_id: Option<u64>) -> Self {
        let host = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).expect("connect to the API");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            stream,
            "GET /watch{query} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        )
        .expect("send");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
        }
        Self { reader }
    }

    /// The next event (comments and chunk framing skipped).
    fn next(&mut self) -> Sse {
        let (mut event, mut id, mut data) = (String::new(), 0, String::new());
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.reader.read_line(&mut line).expect("read the stream");
            assert!(read > 0, "the stream ended");
            let text = line.trim_end();
            if let Some(value) = text.strip_prefix("event: ") {
                event = value.to_string();
            } else if let Some(value) = text.strip_prefix("id: ") {
                id = value.parse().expect("numeric id");
            } else if let Some(value) = text.strip_prefix("data: ") {
                data.push_str(value);
            } else if text.is_empty() && !event.is_empty() {
                let data = serde_json::from_str(&data).expect("JSON data");
                return Sse { event, id, data };
            }
            // Anything else is chunked-encoding framing or a keep-alive comment.
        }
    }
}

fn addresses(value: &serde_json::Value) -> Vec<IpAddr> {
    value
        .as_array()
        .expect("an address list")
        .iter()
        .map(|a| a.as_str().expect("text").parse().expect("address"))
        .collect()
}

#[test]
fn watch_streams_a_snapshot_then_each_change_and_resumes_from_last_event_id() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (server, api) = start_with_api(&service_toml(WWW, &[p, s], "http", port, ""));
    let base = api.base;
    server.wait_for_members_up(2);

    // The command line's watch, running a script on each change.
    let dir = tempfile::tempdir().expect("tempdir");
    let (script, out, printed) = (
        dir.path().join("on-change.sh"),
        dir.path().join("changes"),
        dir.path().join("printed"),
    );
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$FAILOVER_DNS_SERVICE $FAILOVER_DNS_FAMILY $FAILOVER_DNS_FROM $FAILOVER_DNS_TO\" >> {}\n",
            out.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_failover-dns"))
        .args([
            "watch",
            WWW,
            "--api",
            &base,
            "--exec",
            script.to_str().expect("utf-8"),
        ])
        .stdout(std::fs::File::create(&printed).expect("stdout file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start failover-dns watch");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    wait_until(
        "watch to print the current answer",
        Duration::from_secs(10),
        || read(&printed).contains(&format!("{WWW} A [{p}]")),
    );

    let mut watch = Watch::open(&base, &format!("?service={WWW}"), None);
    // A client that asks and never reads holds up nobody.
    let _stalled = Watch::open(&base, "", None);
    let first = watch.next();
    assert_eq!(first.event, "snapshot");
    let snapshot = &first.data["services"][0];
    assert_eq!(snapshot["service"], WWW);
    assert_eq!(addresses(&snapshot["A"]), [p]);
    let serial = snapshot["serial"].as_u64().expect("serial");

    primary.kill();
    let change = watch.next();
    assert_eq!(change.event, "answer_changed");
    assert_eq!(change.data["service"], WWW);
    assert_eq!(addresses(&change.data["from"]), [p]);
    assert_eq!(addresses(&change.data["to"]), [s]);
    assert!(change.data["serial"].as_u64().expect("serial") > serial);
    assert!(change.id > first.id);
    // DNS answers the standby too.
    wait_until("DNS to answer the standby", Duration::from_secs(5), || {
        server.addresses(WWW) == [s]
    });
    // The command line printed the change and ran the script once, with what changed.
    wait_until("watch to print the change", Duration::from_secs(10), || {
        read(&printed).contains(&format!("{WWW} A [{p}] -> [{s}]"))
    });
    wait_until("the script to run", Duration::from_secs(10), || {
        !read(&out).is_empty()
    });
    assert_eq!(read(&out), format!("{WWW} A {p} {s}\n"));
    let _ = cli.kill();
    let _ = cli.wait();

    // Reconnecting with the id before the change gets the change, not a snapshot.
    let mut resumed = Watch::open(&base, "", Some(change.id - 1));
    let again = resumed.next();
    assert_eq!(
        (again.event.as_str(), again.id),
        ("answer_changed", change.id)
    );
    // An id the server never gave (another run's): a fresh snapshot.
    let mut fresh = Watch::open(&base, "", Some(change.id + 1000));
    let fresh_first = fresh.next();
    assert_eq!(fresh_first.event, "snapshot");
    assert_eq!(addresses(&fresh_first.data["services"][0]["A"]), [s]);
}
