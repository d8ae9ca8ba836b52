//! The status page in a real browser: headless Chromium, driven over the DevTools protocol
//! (`--remote-debugging-pipe`: JSON messages ending in NUL on descriptors 3 and 4, so no
//! WebSocket client is needed), opens `GET /`, and the open page — never reloaded — must show
//! the services, members and states, then a member going down after its backend is killed.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use serde_json::{Value, json};

use crate::common::*;

const WWW: &str = "www.svc.example.test.";

/// Headless Chromium with one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    to_browser: std::fs::File,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let (ours_read, browser_write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        let (browser_read, ours_write): (OwnedFd, OwnedFd) = nix::unistd::pipe().expect("pipe");
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless=new",
                "--remote-debugging-pipe",
                // Tests run as root in CI containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                // Containers often have a small /dev/shm, where Chromium would crash.
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1100,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .fd_mappings(vec![
                FdMapping {
                    parent_fd: browser_read,
                    child_fd: 3,
                },
                FdMapping {
                    parent_fd: browser_write,
                    child_fd: 4,
                },
            ])
            .expect("descriptors");
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("chromium: {e}; the status page test needs it (apt-get install -y chromium)")
        });
        let (sender, from_browser) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(ours_read));
            let mut message = Vec::new();
            while matches!(reader.read_until(0, &mut message), Ok(n) if n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && sender.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        Self {
            child,
            to_browser: std::fs::File::from(ours_write),
            from_browser,
            next_id: 0,
            session: None,
            _profile: profile,
        }
    }

    /// Sends `method` (to the page once one is open) and waits for its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no reply from chromium to {method}"));
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Opens `url` in a new page and talks to that page from now on.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": url }));
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_string(),
        );
    }

    /// The value of `expression` in the page.
    fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    /// The text the page shows.
    fn text(&mut self) -> String {
        self.evaluate("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Polls until `condition` holds for the page's text, or panics showing it.
    fn wait_for_text(&mut self, what: &str, mut condition: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if condition(&text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the page as it is.
    fn screenshot(&mut self) -> Vec<u8> {
        use data_encoding::BASE64;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        BASE64
            .decode(shot["data"].as_str().expect("data").as_bytes())
            .expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state badge of `member` as the page shows it.
fn badge(browser: &mut Browser, member: IpAddr) -> String {
    let expression = format!(
        "(document.querySelector('tr[data-member=\"{member}\"] .badge') || {{}}).textContent || ''"
    );
    browser
        .evaluate(&expression)
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_status_page_shows_services_and_members_and_follows_a_failure_without_a_reload() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (server, api) = start_with_api(&service_toml(WWW, &[p, s], "http", port, ""));
    server.wait_for_members_up(2);

    let mut browser = Browser::start();
    browser.open(&format!("{}/", api.base));
    browser.wait_for_text("the service and both members up", |text| {
        text.contains(WWW)
            && text.contains(&p.to_string())
            && text.contains(&s.to_string())
            && text.contains("policy failover")
    });
    assert_eq!(badge(&mut browser, p), "up");
    assert_eq!(badge(&mut browser, s), "up");
    // The page is marked so a reload would be seen: the same document must show the change.
    browser.evaluate("window.notReloaded = true");

    primary.kill();
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    while badge(&mut browser, p) != "down" {
        assert!(
            Instant::now() < deadline,
            "the page never showed {p} down:\n{}",
            browser.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(browser.evaluate("window.notReloaded === true"), json!(true));
    browser.wait_for_text("the answer change in the event list", |text| {
        text.contains(&format!("{p} → {s}"))
    });
    // The page's buttons work: Force up on the dead primary moves the answer back to it.
    browser.evaluate(&format!(
        "document.querySelector('tr[data-member=\"{p}\"] button[aria-label^=\"Force up\"]').click()"
    ));
    server.wait_for_answer(WWW, &[p], Duration::from_secs(10));
    browser.wait_for_text("the override", |text| text.contains("force-up"));
    if let Ok(path) = std::env::var("STATUS_PAGE_SCREENSHOT") {
        std::fs::write(&path, browser.screenshot()).expect("write screenshot");
    }
    // The page serves itself only: never inside another site's frame.
    let (code, _) = api.get("/");
    assert_eq!(code, 200);
}
