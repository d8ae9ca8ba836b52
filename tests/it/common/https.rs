//! A toy HTTPS backend with a self-signed certificate made when it starts, which records the
//! server name (SNI) and `Host` header of every request it answers.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The TLS server name (SNI) the client sent.
    pub server_name: Option<String>,
    /// The `Host` header.
    pub host: Option<String>,
    /// Whether the TLS session was resumed rather than set up with a full handshake.
    pub resumed: bool,
}

/// Answers every HTTPS request with 200, presenting a certificate for `names` signed by itself.
pub struct HttpsBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpsBackend {
    /// Starts on `addr` with a self-signed certificate for `names`.
    pub fn start(addr: SocketAddr, names: &[&str]) -> Self {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
        let key =
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key.into())
            .expect("server config");
        let config = Arc::new(config);
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind https backend {addr}: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let seen = Arc::clone(&seen);
            // Lives as long as the test process, like the listener it owns.
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (config, seen) = (Arc::clone(&config), Arc::clone(&seen));
                    std::thread::spawn(move || answer(stream, config, &seen));
                }
            });
        }
        Self { addr, seen }
    }

    /// What every answered request sent so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

fn answer(stream: TcpStream, config: Arc<rustls::ServerConfig>, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut host = None;
    {
        let mut reader = BufReader::new(&mut tls);
        let mut line = String::new();
        // A client that rejects the certificate ends here, with an error or nothing read.
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("host")
            {
                host = Some(value.trim().to_string());
            }
            line.clear();
        }
    }
    if host.is_none() {
        return;
    }
    let seen_now = Seen {
        server_name: tls.conn.server_name().map(str::to_string),
        host,
        resumed: tls.conn.handshake_kind() != Some(rustls::HandshakeKind::Full),
    };
    seen.lock().expect("seen").push(seen_now);
    let _ = write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
