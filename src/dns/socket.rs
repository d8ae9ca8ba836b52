//! Socket setup shared by the UDP and TCP listeners.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// An unbound socket for `addr`. An IPv6 address gets IPv6 only, over UDP and TCP alike, so
/// `0.0.0.0:53` and `[::]:53` can be listed side by side (Linux would otherwise let `[::]`
/// take IPv4 too, and the second bind fail).
pub fn socket_for(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}
