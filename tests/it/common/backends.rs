//! Toy members and receivers that tests start, break and kill: HTTP backends, a backend that
//! accepts and never answers, and a webhook receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;

/// Serves every connection accepted on `addr` with `handle`, each on a thread of its own, for
/// as long as the test runs: a member whose behaviour a test writes in a few lines.
pub fn serve_each(addr: SocketAddr, handle: impl Fn(TcpStream) + Clone + Send + 'static) {
    let listener =
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind test server {addr}: {e}"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(stream));
        }
    });
}

/// A toy HTTP backend: answers every request with the current status, closes the connection.
/// [`HttpBackend::kill`] closes the listener, so connections are refused as when a process dies.
pub struct HttpBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpBackend {
    /// Starts answering 200 on `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind backend {addr}: {e}"));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, stop) = (Arc::clone(&status), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let status = status.load(Ordering::SeqCst);
                        std::thread::spawn(move || respond(stream, status));
                    }
                }
            })
        };
        Self {
            addr,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// Makes every later response answer `status`.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Closes the listener: new connections are refused from now on.
    pub fn kill(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.shut();
    }
}

fn respond(stream: TcpStream, status: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" || line == "\n" {
            break;
        }
        line.clear();
    }
    let mut writer = &stream;
    let _ = write!(
        writer,
        "HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// A backend that accepts TCP connections (the kernel completes the handshake) but never
/// reads or answers: a hung process.
pub struct HungBackend {
    _listener: TcpListener,
}

impl HungBackend {
    /// Starts hanging on `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        Self {
            _listener: TcpListener::bind(addr)
                .unwrap_or_else(|e| panic!("bind hung backend {addr}: {e}")),
        }
    }
}

/// A webhook target: records every POST body and answers each with the next of `statuses`
/// (then 200).
pub struct WebhookReceiver {
    /// Its URL.
    pub url: String,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    _thread: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts listening on a fresh loopback address.
    pub fn start(statuses: &[u16]) -> Self {
        let ip = loopback_ip();
        let listener = TcpListener::bind((ip, 0)).expect("bind webhook receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut statuses = std::collections::VecDeque::from(statuses.to_vec());
        let thread = {
            let bodies = Arc::clone(&bodies);
            std::thread::spawn(move || {
                for stream in listener.incoming().take(100).flatten() {
                    let status = statuses.pop_front().unwrap_or(200);
                    if let Some(body) = read_request_body(&stream) {
                        bodies.lock().expect("lock").push(body);
                    }
                    let mut writer = &stream;
                    let _ = write!(
                        writer,
                        "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            })
        };
        Self {
            url,
            bodies,
            _thread: thread,
        }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

fn read_request_body(stream: &TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).ok()? > 0 {
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}
