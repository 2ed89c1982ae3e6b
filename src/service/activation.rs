//! systemd socket activation: the sockets handed over in `LISTEN_FDS` (see log-panel-collector.socket),
//! matched to listeners by address, or by `FileDescriptorName` on the same port (`syslog` for both syslog
//! sockets, told apart by type; `syslog-udp`, `syslog-tcp`, `syslog-tls`, `otlp-grpc`, `otlp-http`,
//! `metrics`). A named
//! socket that no configured listener takes becomes an extra listener of its role. What is not handed
//! over is bound as usual.

use std::net::SocketAddr;
use std::os::fd::FromRawFd;

/// The kind of listener a socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    SyslogUdp,
    SyslogTcp,
    /// Syslog over TLS (RFC 5425).
    SyslogTls,
    OtlpGrpc,
    OtlpHttp,
    Metrics,
}

impl Role {
    /// The `FileDescriptorName=` that hands a socket to this role.
    pub fn fd_name(self) -> &'static str {
        match self {
            Role::SyslogUdp => "syslog-udp",
            Role::SyslogTcp => "syslog-tcp",
            Role::SyslogTls => "syslog-tls",
            Role::OtlpGrpc => "otlp-grpc",
            Role::OtlpHttp => "otlp-http",
            Role::Metrics => "metrics",
        }
    }

    /// Whether a handed socket's `FileDescriptorName` is meant for this role. `syslog` serves both
    /// syslog roles (a .socket unit gives all its sockets one name; the socket type tells them apart).
    pub fn takes_name(self, name: &str) -> bool {
        name == self.fd_name()
            || (name == "syslog" && matches!(self, Role::SyslogUdp | Role::SyslogTcp))
    }

    /// Datagram or stream.
    pub fn is_udp(self) -> bool {
        self == Role::SyslogUdp
    }

    /// All roles, in start order.
    pub const ALL: [Role; 6] = [
        Role::SyslogUdp,
        Role::SyslogTcp,
        Role::SyslogTls,
        Role::OtlpGrpc,
        Role::OtlpHttp,
        Role::Metrics,
    ];
}

/// A socket ready to serve.
#[derive(Debug)]
pub enum Opened {
    Udp(std::net::UdpSocket),
    Tcp(std::net::TcpListener),
}

impl Opened {
    /// The address it is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Opened::Udp(s) => s.local_addr(),
            Opened::Tcp(s) => s.local_addr(),
        }
    }
}

/// One socket handed over by the service manager.
#[derive(Debug)]
pub struct Handed {
    pub name: Option<String>,
    pub local: SocketAddr,
    pub socket: Opened,
}

/// The sockets handed over and not yet used.
#[derive(Debug, Default)]
pub struct Activated {
    pub sockets: Vec<Handed>,
}

impl Activated {
    /// Reads `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES` (none when not socket-activated).
    pub fn from_env() -> std::io::Result<Activated> {
        let mut sockets = Vec::new();
        for (fd, name) in sd_notify::listen_fds_with_names()? {
            // SAFETY: systemd passes these descriptors to this process (LISTEN_PID checked), once.
            let s = unsafe { socket2::Socket::from_raw_fd(fd) };
            let local = s.local_addr()?.as_socket().ok_or_else(|| {
                std::io::Error::other(format!("socket {fd} ({name}) is not an IP socket"))
            })?;
            s.set_nonblocking(true)?;
            let socket = match s.r#type()? {
                socket2::Type::DGRAM => Opened::Udp(s.into()),
                socket2::Type::STREAM => Opened::Tcp(s.into()),
                t => {
                    return Err(std::io::Error::other(format!(
                        "socket {fd} ({name}) has unsupported type {t:?}"
                    )));
                }
            };
            let name = (!name.is_empty() && name != "unknown").then_some(name);
            sockets.push(Handed {
                name,
                local,
                socket,
            });
        }
        Ok(Activated { sockets })
    }

    /// Takes the handed socket for `role` at `addr`: same kind, and the role's name or the address.
    pub fn take(&mut self, role: Role, addr: SocketAddr) -> Option<Opened> {
        let fits = |h: &Handed| matches!(h.socket, Opened::Udp(_)) == role.is_udp();
        let by_addr = self.sockets.iter().position(|h| fits(h) && h.local == addr);
        // A named socket on the same port stands in for the configured address (e.g. `[::]:514`
        // handed over for `0.0.0.0:514`, which could not be bound beside it anyway).
        let by_name = || {
            self.sockets.iter().position(|h| {
                fits(h)
                    && h.name.as_deref().is_some_and(|n| role.takes_name(n))
                    && h.local.port() == addr.port()
            })
        };
        let i = by_addr.or_else(by_name)?;
        Some(self.sockets.remove(i).socket)
    }

    /// Handed sockets left over after the configured listeners took theirs: the named ones become
    /// extra listeners of their role; the rest are reported and closed.
    pub fn leftovers(&mut self) -> Vec<(Role, SocketAddr, Opened)> {
        let mut out = Vec::new();
        for h in self.sockets.drain(..) {
            match Role::ALL.into_iter().find(|r| {
                h.name.as_deref().is_some_and(|n| r.takes_name(n))
                    && matches!(h.socket, Opened::Udp(_)) == r.is_udp()
            }) {
                Some(role) => out.push((role, h.local, h.socket)),
                None => tracing::warn!(
                    "socket {} handed over by systemd matches no listener (name {:?}); closing it",
                    h.local,
                    h.name
                ),
            }
        }
        out
    }
}
