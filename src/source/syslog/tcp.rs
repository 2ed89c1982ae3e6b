//! Syslog over TCP: many connections, RFC 6587 framing per frame. When the queue is full a
//! connection stops reading (the sender sees TCP backpressure) instead of losing messages.

use super::framing::Framer;
use super::{SyslogSettings, decode};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use crate::stats::Stats;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// On shutdown, a connection reads on until the sender pauses this long...
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
/// ...or this long in all (the listener's stop waits 5 s).
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// Accepts connections until `shutdown` resolves; then every connection stops reading (after what
/// the kernel has already received), hands over the frames it read, and `serve` returns once they
/// all have. Cancelling the task instead ends the connections at once.
pub async fn serve(
    listener: TcpListener,
    intake: Intake,
    settings: Arc<Live<SyslogSettings>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut conns = JoinSet::new();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                drop(listener);
                let _ = stop_tx.send(true);
                while conns.join_next().await.is_some() {}
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, peer, intake.clone(), settings.clone(), stop.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!("TCP accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    intake: Intake,
    live: Arc<Live<SyslogSettings>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut framer = Framer::new(live.get().max_frame);
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let buf = framer.buffer();
        buf.reserve(64 * 1024);
        let read = if let Some(until) = stopping {
            // Shutting down: read on while bytes keep coming (a sender that closed has its last
            // bytes in flight), until end of stream, a pause, or the drain time is up.
            let pause =
                DRAIN_PAUSE.min(until.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(pause, stream.read_buf(buf)).await {
                Ok(r) => r,
                Err(_) => Ok(0),
            }
        } else {
            tokio::select! {
                r = stream.read_buf(buf) => r,
                _ = stop.wait_for(|s| *s) => {
                    stopping = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    continue;
                }
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(%peer, "TCP read failed: {e}");
                0
            }
        };
        let settings = live.get();
        if n == 0 {
            if let Some(frame) = framer.finish() {
                let _ = intake
                    .submit(decode(&frame.data, peer.ip(), &settings, intake.stats()))
                    .await;
            }
            return;
        }
        while let Some(frame) = framer.next_frame() {
            if frame.truncated {
                Stats::inc(&intake.stats().truncated);
            }
            let record = decode(&frame.data, peer.ip(), &settings, intake.stats());
            if intake.submit(record).await.is_err() {
                return;
            }
        }
    }
}
