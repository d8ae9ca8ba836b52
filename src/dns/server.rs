//! Listeners and hickory glue: turns requests into [`Query`]s, answers them from the current
//! snapshot, and encodes the result (EDNS, truncation to the client's buffer over UDP).
//!
//! Socket handling, TCP framing and idle timeouts are hickory-server's. This module never waits
//! on the check plane: it loads the current snapshot and answers.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, info};

use super::answer::{Query, Question, answer};
use crate::snapshot::SnapshotCell;

/// Largest UDP payload we send, whatever the client offers: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on common paths.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Bytes buffered per TCP connection for responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Answers every request from the snapshot current when it arrives.
pub struct Handler {
    cell: SnapshotCell,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let snapshot = self.cell.load_full();
        let questions: Vec<Question<'_>> = request
            .queries
            .queries()
            .iter()
            .map(|q| Question {
                name: q.name(),
                qtype: q.query_type(),
                qclass: q.query_class(),
            })
            .collect();
        let query = Query {
            op_code: request.metadata.op_code,
            questions: &questions,
            edns_version: request.edns.as_ref().map(Edns::version),
        };
        let response = answer(&snapshot, &query);

        // RFC 6891 §7: a request with OPT gets OPT back, offering our own buffer size; the
        // response is cut to the smaller of the two buffers.
        let edns = request.edns.as_ref().map(|client| {
            let mut edns = Edns::new();
            edns.set_max_payload(client.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = response.authoritative;
        metadata.response_code = response.rcode;
        let message = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            response.answers.iter().map(AsRef::as_ref),
            response.authority.iter().map(AsRef::as_ref),
            std::iter::empty(),
            response.additional.iter().map(AsRef::as_ref),
        );
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, src = %request.src(), "cannot send response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// Binds UDP and TCP on every address and starts serving from `cell`. Fails, naming the
/// address, if any cannot be bound, so a misconfigured server never half-starts.
pub async fn serve(
    listen: &[SocketAddr],
    tcp_idle_timeout: Duration,
    cell: SnapshotCell,
) -> io::Result<Server<Handler>> {
    let mut server = Server::new(Handler { cell });
    for addr in listen {
        let context =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
        let udp = UdpSocket::bind(addr).await.map_err(context)?;
        let tcp = TcpListener::bind(addr).await.map_err(context)?;
        info!(%addr, "serving DNS on {addr} over UDP and TCP");
        server.register_socket(udp);
        server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
    }
    Ok(server)
}
