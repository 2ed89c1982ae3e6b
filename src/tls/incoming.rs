//! TLS handshakes for the listeners. [`Handshaker`] runs one (with a timeout, counted and logged
//! when refused) on a connection a listener accepted under its own limits; [`TlsIncoming`] runs
//! them concurrently for a server that takes a stream of connections (tonic), so a slow or silent
//! client holds up nobody. Both servers get TLS from tokio-rustls without a TLS layer of their own.

use super::TlsHandle;
use super::reload::Alpn;
use crate::stats::Stats;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once per [`TlsIncoming`]; further connections wait in the backlog.
const MAX_HANDSHAKES: usize = 1024;

/// Runs handshakes with the material current when each one starts.
#[derive(Clone)]
pub struct Handshaker {
    tls: Arc<TlsHandle>,
    alpn: Alpn,
    stats: Arc<Stats>,
}

impl Handshaker {
    /// Handshakes for a listener speaking `alpn`, counting refusals in `stats`.
    pub fn new(tls: Arc<TlsHandle>, alpn: Alpn, stats: Arc<Stats>) -> Self {
        Handshaker { tls, alpn, stats }
    }

    /// The TLS session on `io`, or `None` (counted in `tls_refused`, logged) when the client is
    /// refused or does not finish within [`HANDSHAKE_TIMEOUT`].
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        peer: SocketAddr,
    ) -> Option<TlsStream<S>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.config(self.alpn));
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                Stats::inc(&self.stats.tls_refused);
                tracing::info!(%peer, "TLS handshake refused: {e}");
                None
            }
            Err(_) => {
                Stats::inc(&self.stats.tls_refused);
                tracing::info!(%peer, "TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

/// Where a [`TlsIncoming`] takes its connections from (a listener with its connection limit).
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next accepted connection and its peer.
    fn accept(&mut self) -> impl Future<Output = (Self::Io, SocketAddr)> + Send;
}

/// Established TLS connections of one listener; dropping it stops accepting.
pub struct TlsIncoming<S> {
    rx: mpsc::Receiver<(TlsStream<S>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl<S> Drop for TlsIncoming<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsIncoming<S> {
    /// Starts accepting from `source`, each handshake in a task of its own.
    pub fn new<A: Accept<Io = S>>(mut source: A, handshaker: Handshaker) -> TlsIncoming<S> {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
            let mut handshakes = tokio::task::JoinSet::new();
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (io, peer) = tokio::select! {
                    accepted = source.accept() => accepted,
                    Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
                    _ = tx.closed() => return,
                };
                let (tx, hs) = (tx.clone(), handshaker.clone());
                handshakes.spawn(async move {
                    let _slot = slot;
                    if let Some(stream) = hs.accept(io, peer).await {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        TlsIncoming { rx, task }
    }
}

impl<S> tokio_stream::Stream for TlsIncoming<S> {
    type Item = Result<TlsStream<S>, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|o| o.map(|(s, _)| Ok(s)))
    }
}
