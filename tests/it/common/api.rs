//! The HTTP API as tests use it: a config with the API on, and a small client.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

thread_local! {
    /// API listeners [`api_config`] bound, until a server whose config names them takes one.
    static HELD: std::cell::RefCell<Vec<std::net::TcpListener>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The `[server]` lines for an API on a fresh loopback address, with `token` if given, and
/// the API's base URL. The address is bound here and held for the next server this thread
/// starts with it in its config, which is handed the listener.
pub fn api_config(token: Option<&str>) -> (String, String) {
    let listener = (0..100)
        .find_map(|_| std::net::TcpListener::bind((loopback_ip(), 0)).ok())
        .expect("a loopback address for the API");
    let addr = listener.local_addr().expect("bound");
    HELD.with(|held| held.borrow_mut().push(listener));
    let token = token.map_or(String::new(), |t| format!("http_token = \"{t}\"\n"));
    (
        format!("http = \"{addr}\"\n{token}"),
        format!("http://{addr}"),
    )
}

/// Starts the binary with the example zone as svc.example.test., `services`, and an API
/// without a token on a fresh loopback address; returns it with a client of that API.
pub fn start_with_api(services: &str) -> (Server, Api) {
    let (api_lines, base) = api_config(None);
    let config = format!(
        "[server]\n{api_lines}\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{services}"
    );
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    (server, Api::new(&base))
}

/// A blocking client of the server's HTTP API.
pub struct Api {
    /// Base URL, e.g. `http://127.1.2.3:40000`.
    pub base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    /// A client of the API at `base`.
    pub fn new(base: &str) -> Self {
        Self::waiting(base, Duration::from_secs(10))
    }

    /// A client of the API at `base` that waits up to a minute for an answer (for requests
    /// that queue behind slow reloads on a busy machine).
    pub fn patient(base: &str) -> Self {
        Self::waiting(base, Duration::from_secs(60))
    }

    fn waiting(base: &str, limit: Duration) -> Self {
        Self {
            base: base.to_string(),
            client: reqwest::blocking::Client::builder()
                .timeout(limit)
                .build()
                .expect("client"),
        }
    }

    /// `GET path`: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    /// `POST path`, with `Authorization: Bearer token` if given: status code and body.
    pub fn post(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// The status of `member` of the first service.
    pub fn member(&self, member: IpAddr) -> serde_json::Value {
        let status = self.status();
        status["services"][0]["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["address"] == member.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{member} in {status}"))
    }
}

/// The held API listener whose address `config` names as `http`, if any.
pub fn take_held_api(config: &str) -> Option<std::os::fd::OwnedFd> {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        let at = held.iter().position(|l| {
            l.local_addr()
                .is_ok_and(|addr| config.contains(&format!("http = \"{addr}\"")))
        })?;
        Some(std::os::fd::OwnedFd::from(held.swap_remove(at)))
    })
}
