//! What the syslog connection loop needs of a stream, so one loop serves TCP and TLS: wait until a
//! read may bring bytes, then read what is there without waiting, into a buffer the loop shares per
//! worker thread (an idle connection holds none).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A connection the syslog loop reads from.
pub trait SyslogStream: Send {
    /// Waits until a read may bring bytes or the end of the stream.
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is there now: `Ok(0)` at the end, `WouldBlock` when nothing is.
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

impl SyslogStream for TcpStream {
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.readable()
    }

    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_read(buf)
    }
}

/// Notes that the poll asked to be polled again (tokio-rustls does when it holds more bytes).
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl SyslogStream for TlsStream<TcpStream> {
    async fn ready(&mut self) -> io::Result<()> {
        // Records already received and not yet read need no new bytes from the socket.
        let (tcp, session) = self.get_mut();
        let buffered = session
            .process_new_packets()
            .map(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
            .unwrap_or(true);
        if buffered {
            return Ok(());
        }
        tcp.readable().await
    }

    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        // A handful of turns: tokio-rustls asks for another when it decrypted a record that held
        // no application data (a key update, a ticket) and more bytes may be buffered.
        for _ in 0..8 {
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut *self).poll_read(&mut cx, &mut rb) {
                Poll::Ready(Ok(())) => return Ok(rb.filled().len()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending if flag.0.swap(false, Ordering::Relaxed) => continue,
                Poll::Pending => break,
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }
}
