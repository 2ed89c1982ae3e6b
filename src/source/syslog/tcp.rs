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

/// Accepts connections until cancelled; cancelling also ends the connections it started.
pub async fn serve(listener: TcpListener, intake: Intake, settings: Arc<Live<SyslogSettings>>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, peer, intake.clone(), settings.clone()));
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
) {
    let mut framer = Framer::new(live.get().max_frame);
    loop {
        let buf = framer.buffer();
        buf.reserve(64 * 1024);
        let n = match stream.read_buf(buf).await {
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
