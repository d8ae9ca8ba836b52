//! A small DNS client: requests, exchanges over UDP or TCP, what a response says, and the
//! malformed packets the wire tests send.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::random;

/// How a query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// A fresh TCP connection with two-byte length framing.
    Tcp,
}

/// A plain query for `name`/`qtype`, RD clear, with EDNS.
pub fn request(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(random(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    message.metadata.recursion_desired = false;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message
}

/// Sends `message` and returns the raw response, or None on timeout (1 s) or error.
pub fn exchange_raw(server: SocketAddr, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let timeout = Some(Duration::from_secs(1));
    match transport {
        Transport::Udp => {
            let bind: SocketAddr = if server.is_ipv4() {
                "127.0.0.1:0".parse().ok()?
            } else {
                "[::1]:0".parse().ok()?
            };
            let socket = UdpSocket::bind(bind).ok()?;
            socket.set_read_timeout(timeout).ok()?;
            socket.send_to(bytes, server).ok()?;
            let mut buf = vec![0u8; 65535];
            let (len, _) = socket.recv_from(&mut buf).ok()?;
            buf.truncate(len);
            Some(buf)
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(1)).ok()?;
            stream.set_read_timeout(timeout).ok()?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            stream.write_all(&framed).ok()?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).ok()?;
            Some(buf)
        }
    }
}

/// Sends `message`, returning the parsed response if one arrives and matches its ID.
pub fn exchange(server: SocketAddr, message: &Message, transport: Transport) -> Option<Message> {
    let raw = exchange_raw(server, &message.to_vec().ok()?, transport)?;
    let response = Message::from_vec(&raw).ok()?;
    (response.metadata.id == message.metadata.id).then_some(response)
}

/// Queries `name`/`qtype`, or None when no answer arrives.
pub fn try_query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
) -> Option<Message> {
    exchange(server, &request(name, qtype), transport)
}

/// Queries `name`/`qtype`, panicking when no answer arrives.
pub fn query(server: SocketAddr, name: &str, qtype: RecordType, transport: Transport) -> Message {
    try_query(server, name, qtype, transport)
        .unwrap_or_else(|| panic!("no answer from {server} for {name} {qtype} over {transport:?}"))
}

/// The A and AAAA addresses in a response's answer section, in order.
pub fn addresses(response: &Message) -> Vec<IpAddr> {
    response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

/// The response code of a response.
pub fn rcode(response: &Message) -> ResponseCode {
    response.metadata.response_code
}

/// A header with `qdcount` questions and nothing else.
pub fn header(qdcount: u16) -> Vec<u8> {
    let mut out = vec![0x12, 0x34, 0, 0];
    out.extend_from_slice(&qdcount.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out
}

/// Packets that must neither crash nor stall the server: each gets FORMERR or nothing.
pub fn malformed_packets() -> Vec<(&'static str, Vec<u8>)> {
    let valid = request("www.svc.example.test.", RecordType::A)
        .to_vec()
        .expect("encode");
    let mut packets = vec![
        ("empty", vec![]),
        ("short header", vec![0; 5]),
        ("all ones header", vec![0xff; 12]),
        ("600 bytes of 0xab", vec![0xab; 600]),
        ("64 KiB of zeros", vec![0; 65_507]),
    ];
    for (what, cut) in [("cut in the name", 13), ("cut in the question", 20)] {
        packets.push((what, valid[..cut].to_vec()));
    }
    packets.push(("cut in the OPT record", valid[..valid.len() - 1].to_vec()));

    let mut self_pointer = header(1);
    self_pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    packets.push(("compression pointer to itself", self_pointer));
    let mut two_pointer_loop = header(1);
    two_pointer_loop.extend_from_slice(&[1, b'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]);
    packets.push(("two compression pointers in a loop", two_pointer_loop));
    let mut forward_pointer = header(1);
    forward_pointer.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    packets.push(("compression pointer past the end", forward_pointer));

    let mut many_labels = header(1);
    for _ in 0..200 {
        many_labels.extend_from_slice(&[1, b'a']);
    }
    many_labels.extend_from_slice(&[0, 0, 1, 0, 1]);
    packets.push(("a 400-byte name of 200 labels", many_labels));
    let mut long_label = header(1);
    long_label.push(63);
    long_label.extend_from_slice(&[b'x'; 63]);
    long_label.push(0x7f); // a label length over 63 that is not a pointer
    long_label.extend_from_slice(&[b'y'; 20]);
    packets.push(("a label length of 127", long_label));
    let mut huge_counts = header(0xffff);
    huge_counts[6..12].copy_from_slice(&[0xff; 6]);
    huge_counts.extend_from_slice(&valid[12..]);
    packets.push(("65535 in every count", huge_counts));
    packets
}
