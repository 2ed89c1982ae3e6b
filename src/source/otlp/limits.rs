//! The limits both OTLP listeners keep, so that no number of requests or connections takes more
//! memory than configured (docs/security.md): open connections per listener, requests handled at
//! once per listener, and one decode budget shared by both listeners.

use crate::stats::Stats;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory that requests being decoded may take together, in KiB permits.
#[derive(Debug)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    kib: usize,
}

/// A share of the [`DecodeBudget`], given back when dropped.
pub struct DecodeShare(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Why a share was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareError {
    /// More than the whole budget: the request can never be decoded.
    TooLarge,
    /// Not free before the deadline.
    Busy,
}

impl DecodeBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Arc<Self> {
        let kib = (bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(DecodeBudget {
            permits: Arc::new(Semaphore::new(kib)),
            kib,
        })
    }

    /// Takes `bytes` of the budget, waiting until `deadline`.
    pub async fn take(
        &self,
        bytes: usize,
        deadline: tokio::time::Instant,
    ) -> Result<DecodeShare, ShareError> {
        let kib = bytes.div_ceil(1024);
        if kib > self.kib {
            return Err(ShareError::TooLarge);
        }
        let n = u32::try_from(kib).map_err(|_| ShareError::TooLarge)?;
        match tokio::time::timeout_at(deadline, self.permits.clone().acquire_many_owned(n)).await {
            Ok(Ok(p)) => Ok(DecodeShare(Some(p))),
            _ => Err(ShareError::Busy),
        }
    }
}

/// Open connections of one listener.
#[derive(Debug, Default)]
pub struct Connections(AtomicUsize);

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct ConnSlot(Arc<Connections>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// How many are open.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Accepts the next connection that fits under `max`; connections over it are closed at once and
/// counted as `limit`.
pub async fn accept(
    listener: &TcpListener,
    open: &Arc<Connections>,
    max: usize,
    stats: &Stats,
    limit: &'static str,
) -> std::io::Result<(TcpStream, ConnSlot)> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning.
                tracing::warn!("TCP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.0.fetch_add(1, Ordering::Relaxed) >= max {
            open.0.fetch_sub(1, Ordering::Relaxed);
            stats.limit_hit(limit);
            if stats.limit_count(limit).is_power_of_two() {
                tracing::warn!(%peer, "{max} connections are open ({limit}); closing new ones");
            }
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        return Ok((stream, ConnSlot(open.clone())));
    }
}

/// A listener with its connection limit, for servers that take a stream of connections (gRPC).
pub struct Limited {
    pub listener: TcpListener,
    pub open: Arc<Connections>,
    pub settings: Arc<crate::live::Live<super::OtlpSettings>>,
    pub stats: Arc<Stats>,
}

impl Limited {
    /// The next connection under `max_connections`.
    pub async fn next(&mut self) -> std::io::Result<Counted<TcpStream>> {
        let max = self.settings.get().config.max_connections;
        accept(
            &self.listener,
            &self.open,
            max,
            &self.stats,
            "otlp_connections",
        )
        .await
        .map(|(stream, slot)| Counted::new(stream, slot))
    }
}

impl crate::tls::incoming::Accept for Limited {
    type Io = Counted<TcpStream>;

    async fn accept(&mut self) -> (Self::Io, std::net::SocketAddr) {
        loop {
            if let Ok(c) = self.next().await {
                let peer =
                    c.io.peer_addr()
                        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                return (c, peer);
            }
        }
    }
}

/// A connection that frees its slot when it closes (for servers that own their connections).
pub struct Counted<T> {
    pub io: T,
    _slot: ConnSlot,
}

impl<T> Counted<T> {
    /// `io`, holding `slot` while it lives.
    pub fn new(io: T, slot: ConnSlot) -> Self {
        Counted { io, _slot: slot }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Counted<TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
