//! Syslog over UDP: one datagram, one message. Each socket is read on a thread of its own, outside
//! the async scheduler, so a burst is taken off the kernel's buffer while the runtime is busy with
//! commits and TCP; a full queue drops (and counts) instead of blocking, since a blocked reader only
//! moves the loss into the kernel. The kernel's own drop counter is read back into a metric, so the
//! two places a datagram can be lost are both counted.

use super::{SyslogSettings, decode};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use crate::stats::Stats;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the reader looks up for a stop request while no datagram arrives.
const STOP_POLL: Duration = Duration::from_millis(200);
/// How often the kernel's drop counter is read back.
const DROPS_POLL: Duration = Duration::from_secs(1);

/// Binds a UDP socket with the configured receive buffer (see [`set_recv_buffer`]).
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    set_recv_buffer(&socket, addr, recv_buffer);
    Ok(socket)
}

/// Asks for `wanted` bytes of receive buffer. The kernel caps SO_RCVBUF at `net.core.rmem_max`
/// (208 KiB by default: a few milliseconds of a burst); a privileged process (CAP_NET_ADMIN) can
/// pass the cap with SO_RCVBUFFORCE, anyone else gets a warning saying how to raise it. Either
/// way the socket works; a smaller buffer only loses more in bursts.
pub fn set_recv_buffer(socket: &UdpSocket, addr: SocketAddr, wanted: usize) {
    if wanted == 0 {
        return;
    }
    let sock = socket2::SockRef::from(socket);
    let _ = sock.set_recv_buffer_size(wanted);
    // Linux reports twice what was set (the doubled value includes its bookkeeping).
    let got = |s: &socket2::SockRef<'_>| s.recv_buffer_size().unwrap_or(0) / 2;
    if got(&sock) >= wanted {
        return;
    }
    force_recv_buffer(socket, wanted);
    let have = got(&sock);
    if have < wanted {
        tracing::warn!(
            "UDP {addr}: receive buffer is {have} bytes, not the {wanted} of [syslog] udp_recv_buffer: \
             net.core.rmem_max caps it; raise it (sysctl -w net.core.rmem_max={wanted}, or the \
             sysctl.d file the Debian package installs) so bursts are not dropped by the kernel"
        );
    }
}

#[cfg(target_os = "linux")]
fn force_recv_buffer(socket: &UdpSocket, wanted: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(wanted).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a valid pointer to a live
    // c_int, on a file descriptor this socket owns; failure (no privilege) only leaves the buffer.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn force_recv_buffer(_socket: &UdpSocket, _wanted: usize) {}

/// A UDP socket's reader thread; stops (and is joined) when this is stopped or dropped.
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    /// Starts reading `socket` on a thread of its own.
    pub fn start(
        socket: UdpSocket,
        intake: Intake,
        settings: Arc<Live<SyslogSettings>>,
    ) -> std::io::Result<Reader> {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(STOP_POLL))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = match socket.local_addr() {
            Ok(a) => format!("udp-{}", a.port()),
            Err(_) => "udp".to_string(),
        };
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || serve(&socket, &intake, &settings, &flag))?;
        Ok(Reader {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one [`STOP_POLL`] plus one datagram).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Reads datagrams until `stop` is set or the pipeline closes.
fn serve(socket: &UdpSocket, intake: &Intake, settings: &Live<SyslogSettings>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let mut drops = KernelDrops::new(socket);
    let mut polled = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if polled.elapsed() >= DROPS_POLL {
            drops.update(intake.stats());
            polled = Instant::now();
        }
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!("UDP receive failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
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
            Stats::inc(&intake.stats().truncated);
        }
        let record = decode(data, peer.ip(), &settings, intake.stats());
        if intake.offer(record).is_err() {
            break;
        }
    }
    drops.update(intake.stats());
}

/// The kernel's count of datagrams this socket lost to a full receive buffer, the `drops` column
/// of /proc/net/udp (and udp6) on the socket's inode.
struct KernelDrops {
    inode: Option<u64>,
    seen: u64,
}

impl KernelDrops {
    fn new(socket: &UdpSocket) -> Self {
        KernelDrops {
            inode: socket_inode(socket),
            seen: 0,
        }
    }

    /// Adds what the kernel dropped since the last call to the daemon's metric.
    fn update(&mut self, stats: &Stats) {
        let Some(inode) = self.inode else { return };
        if let Some(now) = kernel_drops(inode)
            && now > self.seen
        {
            stats.udp_kernel_dropped.inc_by(now - self.seen);
            self.seen = now;
        }
    }
}

#[cfg(target_os = "linux")]
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

#[cfg(not(target_os = "linux"))]
fn socket_inode(_socket: &UdpSocket) -> Option<u64> {
    None
}

/// The `drops` of the socket with `inode`, from /proc/net/udp or /proc/net/udp6.
fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|table| drops_in_table(&table, inode))
}

/// Parses one /proc/net/udp table: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref
/// pointer drops`.
fn drops_in_table(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 13 && cols[9].parse::<u64>().ok() == Some(inode) {
            cols[12].parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_from_the_row_with_the_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          12: 0100007F:157A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n\
          13: 0100007F:157B 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 777 2 0000000000000000 1234\n";
        assert_eq!(drops_in_table(table, 777), Some(1234));
        assert_eq!(drops_in_table(table, 4242), Some(0));
        assert_eq!(drops_in_table(table, 5), None);
    }

    #[test]
    fn a_real_socket_is_found_in_proc_and_counts_what_it_could_not_hold() {
        let socket = bind("127.0.0.1:0".parse().unwrap(), 0).unwrap();
        let sock = socket2::SockRef::from(&socket);
        sock.set_recv_buffer_size(1).unwrap(); // the kernel's minimum, a few datagrams
        let addr = socket.local_addr().unwrap();
        let inode = socket_inode(&socket).expect("inode of a socket");
        assert_eq!(kernel_drops(inode), Some(0));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..2000 {
            tx.send_to(&[b'x'; 1000], addr).unwrap();
        }
        let dropped = kernel_drops(inode).expect("still listed");
        assert!(
            dropped > 0,
            "the kernel dropped nothing of 2000 datagrams into a tiny buffer"
        );
        let stats = Stats::default();
        let mut drops = KernelDrops::new(&socket);
        drops.update(&stats);
        assert_eq!(stats.udp_kernel_dropped.get(), dropped);
    }
}
