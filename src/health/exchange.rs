//! Checks that hold a short conversation with the member: tcp `send`/`expect` (HAProxy's
//! `tcp-check send` and `expect string`) and `kind = "dns"` (keepalived's `DNS_CHECK`).
//!
//! Each reports only what happened; the caller bounds it with the check's timeout. Replies are
//! read up to a fixed size, so a member that talks forever costs one bounded buffer.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::state::Failure;
use crate::cause::describe_io;

/// Most reply bytes searched for `expect`.
const EXPECT_WINDOW: usize = 64 * 1024;

/// A tcp check with `send` and `expect`.
#[derive(Debug)]
pub struct TcpExpect {
    /// Where to connect.
    pub target: SocketAddr,
    /// Written once connected.
    pub send: Option<Vec<u8>>,
    /// Looked for in the reply.
    pub expect: Vec<u8>,
}

impl TcpExpect {
    /// Connects, writes `send`, and reads until `expect` appears.
    pub async fn run(&self) -> Result<(), Failure> {
        let mut stream = TcpStream::connect(self.target)
            .await
            .map_err(|e| describe_io(&e))?;
        if let Some(send) = &self.send {
            stream.write_all(send).await.map_err(|e| describe_io(&e))?;
        }
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if contains(&reply, &self.expect) {
                return Ok(());
            }
            if reply.len() >= EXPECT_WINDOW {
                return Err(self.unexpected(&reply, "in the first 64 KiB"));
            }
            match stream.read(&mut buffer).await {
                Ok(0) => return Err(self.unexpected(&reply, "before the connection closed")),
                Ok(n) => reply.extend_from_slice(&buffer[..n]),
                Err(e) => return Err(describe_io(&e)),
            }
        }
    }

    fn unexpected(&self, reply: &[u8], when: &str) -> Failure {
        let expect = String::from_utf8_lossy(&self.expect);
        if reply.is_empty() {
            return format!("expected {expect:?}, got nothing {when}").into();
        }
        let got: String = String::from_utf8_lossy(reply)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        format!("expected {expect:?}, got {got:?}").into()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A `kind = "dns"` check.
#[derive(Debug)]
pub struct DnsProbe {
    /// The member's DNS server.
    pub target: SocketAddr,
    /// The name asked.
    pub query: Name,
    /// The type asked.
    pub qtype: RecordType,
    /// The response code that counts as healthy.
    pub expect_rcode: ResponseCode,
}

impl DnsProbe {
    /// Asks over UDP (again over TCP if the answer is truncated) and checks the response code.
    pub async fn run(&self) -> Result<(), Failure> {
        let id: u16 = rand::random();
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(self.query.clone(), self.qtype));
        let request = message
            .to_vec()
            .map_err(|e| Failure::from(format!("cannot encode the query: {e}")))?;
        let mut response = self.over_udp(id, &request).await?;
        if response.metadata.truncation {
            response = self.over_tcp(id, &request).await?;
        }
        let rcode = response.metadata.response_code;
        if rcode == self.expect_rcode {
            Ok(())
        } else {
            Err(format!(
                "rcode {}, expected {}",
                rcode_name(rcode),
                rcode_name(self.expect_rcode)
            )
            .into())
        }
    }

    async fn over_udp(&self, id: u16, request: &[u8]) -> Result<Message, Failure> {
        let local: SocketAddr = if self.target.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| describe_io(&e))?;
        socket
            .connect(self.target)
            .await
            .map_err(|e| describe_io(&e))?;
        socket.send(request).await.map_err(|e| describe_io(&e))?;
        let mut buffer = vec![0u8; 4096];
        // Datagrams that are not the answer (another ID, garbage) are skipped; the check's
        // timeout bounds the wait.
        loop {
            let n = socket
                .recv(&mut buffer)
                .await
                .map_err(|e| describe_io(&e))?;
            if let Some(response) = answer_to(id, &buffer[..n]) {
                return Ok(response);
            }
        }
    }

    async fn over_tcp(&self, id: u16, request: &[u8]) -> Result<Message, Failure> {
        let mut stream = TcpStream::connect(self.target)
            .await
            .map_err(|e| describe_io(&e))?;
        let length = u16::try_from(request.len()).map_err(|_| Failure::from("query too long"))?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(request);
        stream
            .write_all(&framed)
            .await
            .map_err(|e| describe_io(&e))?;
        let length = stream.read_u16().await.map_err(|e| describe_io(&e))?;
        let mut buffer = vec![0u8; usize::from(length)];
        stream
            .read_exact(&mut buffer)
            .await
            .map_err(|e| describe_io(&e))?;
        answer_to(id, &buffer).ok_or_else(|| "a TCP response that is not the answer".into())
    }
}

/// A response code as `dig` and the config write it.
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// `bytes` as the response to query `id`, if it is one.
fn answer_to(id: u16, bytes: &[u8]) -> Option<Message> {
    let message = Message::from_vec(bytes).ok()?;
    (message.metadata.id == id && message.metadata.message_type == MessageType::Response)
        .then_some(message)
}
