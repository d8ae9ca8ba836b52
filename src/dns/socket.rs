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

/// Listening sockets bound by whoever started the server and handed over at start, as
/// systemd's socket activation does (`LISTEN_FDS`; `LISTEN_PID`, when set, must be ours).
/// A `listen` (or `http`) address served from one of them is not bound again, so the
/// sockets can be bound before the server starts, by a privileged manager or by a test that
/// must not race anyone for a port.
#[derive(Debug, Default)]
pub struct Inherited {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Inherited {
    /// Takes the sockets named by `LISTEN_FDS` and removes the variables, so that nothing
    /// started later inherits them. Call it before any other thread starts (it changes the
    /// environment).
    pub fn from_env() -> Self {
        let mut fds = listenfd::ListenFd::from_env();
        let mut inherited = Self::default();
        for index in 0..fds.len() {
            if let Ok(Some(listener)) = fds.take_tcp_listener(index) {
                inherited.tcp.push(listener);
            } else if let Ok(Some(socket)) = fds.take_udp_socket(index) {
                inherited.udp.push(socket);
            } else {
                tracing::warn!(
                    index,
                    "inherited descriptor {index} is neither a UDP socket nor a TCP listener; ignored"
                );
            }
        }
        inherited
    }

    /// The inherited UDP socket bound to `addr`, if any.
    pub fn take_udp(&mut self, addr: SocketAddr) -> Option<std::net::UdpSocket> {
        let at = self
            .udp
            .iter()
            .position(|s| s.local_addr().is_ok_and(|a| a == addr))?;
        Some(self.udp.swap_remove(at))
    }

    /// The inherited TCP listener bound to `addr`, if any.
    pub fn take_tcp(&mut self, addr: SocketAddr) -> Option<std::net::TcpListener> {
        let at = self
            .tcp
            .iter()
            .position(|l| l.local_addr().is_ok_and(|a| a == addr))?;
        Some(self.tcp.swap_remove(at))
    }

    /// Warns of every inherited socket no address of the config took (it is closed).
    pub fn warn_unused(&self) {
        let udp = self.udp.iter().filter_map(|s| s.local_addr().ok());
        let tcp = self.tcp.iter().filter_map(|l| l.local_addr().ok());
        for (kind, addr) in udp.map(|a| ("UDP", a)).chain(tcp.map(|a| ("TCP", a))) {
            tracing::warn!(%addr, "an inherited {kind} socket on {addr} matches no listen or http address; closed");
        }
    }
}
