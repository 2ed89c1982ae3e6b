//! Syslog over UDP: one datagram, one message. A full queue drops (and counts) instead of blocking,
//! since a blocked UDP reader only moves the loss into the kernel.

use super::{SyslogSettings, decode};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Binds a non-blocking UDP socket with the configured receive buffer.
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if recv_buffer > 0 {
        // The kernel caps this at net.core.rmem_max; a smaller buffer is not an error.
        let _ = socket.set_recv_buffer_size(recv_buffer);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Reads datagrams until the task is cancelled or the pipeline closes.
pub async fn serve(socket: UdpSocket, intake: Intake, settings: Arc<Live<SyslogSettings>>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("UDP receive failed: {e}");
                continue;
            }
        };
        let settings = settings.get();
        let mut data = &buf[..n];
        while let [rest @ .., b'\n' | b'\0' | b'\r'] = data {
            data = rest;
        }
        let max_frame = settings.config.max_frame;
        if n > max_frame {
            data = &data[..data.len().min(max_frame)];
            crate::stats::Stats::inc(&intake.stats().truncated);
        }
        let record = decode(data, peer.ip(), &settings, intake.stats());
        if intake.offer(record).is_err() {
            return;
        }
    }
}
