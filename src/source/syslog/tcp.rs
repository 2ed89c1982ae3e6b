//! Syslog over TCP and over TLS (RFC 5425): many connections, RFC 6587 framing per frame (octet
//! counting and LF). When the queue is full a connection stops reading (the sender sees TCP
//! backpressure) instead of losing messages. One connection loop serves both transports (see
//! [`super::stream`]); a TLS connection is served once its handshake succeeded, and counts against
//! `max_connections` from its acceptance on.
//!
//! A listener is safe to expose (docs/security.md): at most `max_connections` are open (one more is
//! closed at once); an idle connection holds no buffer; a frame that was started must end within
//! `frame_timeout` (else what arrived is stored as a cut frame and the connection closed); and the
//! bytes all connections hold stay under `max_pending_bytes` (connections wait to read past it).

use super::framing::{Frame, Framer};
use super::stream::SyslogStream;
use super::{SyslogSettings, decode};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use crate::stats::Stats;
use crate::tls::Handshaker;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bytes that syslog connections hold (unfinished frames, and frames on their way into the queue),
/// across every TCP listener: a connection takes a read's worth before reading, so the total never
/// passes `max_pending_bytes`; when it is taken, connections wait (their bytes stay in the kernel).
#[derive(Debug)]
pub struct Pending {
    budget: Semaphore,
}

impl Pending {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Arc<Pending> {
        Arc::new(Pending {
            budget: Semaphore::new(bytes.min(Semaphore::MAX_PERMITS)),
        })
    }
}

/// Size of one socket read. The buffer is per worker thread, so an idle connection holds none.
const READ_SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
}

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
    pending: Arc<Pending>,
    shutdown: impl Future<Output = ()>,
    tls: Option<Handshaker>,
) {
    let mut conns = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
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
                    let max = settings.get().config.max_connections;
                    if open.load(Ordering::Relaxed) >= max {
                        // Closed at once: queueing it would hold memory for a sender we cannot serve.
                        intake.stats().limit_hit("syslog_connections");
                        if intake.stats().limit_count("syslog_connections").is_power_of_two() {
                            tracing::warn!(%peer, "syslog TCP: {max} connections are open (max_connections); closing new ones");
                        }
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let slot = Slot::take(&open);
                    let conn = Conn {
                        intake: intake.clone(),
                        live: settings.clone(),
                        pending: pending.clone(),
                        stop: stop.clone(),
                    };
                    let tls = tls.clone();
                    conns.spawn(async move {
                        let _slot = slot;
                        match tls {
                            None => conn.run(stream, peer).await,
                            // Boxed: a TLS session is large, and plain connections (10,000 idle
                            // ones, say) should not each reserve room for one in their task.
                            Some(hs) => Box::pin(async move {
                                if let Some(stream) = hs.accept(stream, peer).await {
                                    conn.run(stream, peer).await
                                }
                            })
                            .await,
                        }
                    });
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

/// One open connection, counted until dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::Relaxed);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This connection's share of [`Pending`], given back when the connection ends.
struct Charge<'a> {
    pending: &'a Pending,
    bytes: usize,
}

impl Charge<'_> {
    /// Takes a read's worth more, waiting until `deadline` (when given); false when it passed.
    async fn take_read(&mut self, deadline: Option<Instant>, stats: &Stats) -> bool {
        let n = READ_SIZE as u32;
        let permit = match self.pending.budget.try_acquire_many(n) {
            Ok(p) => p,
            Err(_) => {
                stats.limit_hit("pending_bytes");
                let wait = self.pending.budget.acquire_many(n);
                let got = match deadline {
                    Some(d) => tokio::time::timeout_at(d, wait).await.ok(),
                    None => Some(wait.await),
                };
                match got {
                    Some(Ok(p)) => p,
                    _ => return false,
                }
            }
        };
        permit.forget();
        self.bytes += READ_SIZE;
        true
    }

    /// Keeps only `bytes` of what was taken.
    fn keep(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.pending.budget.add_permits(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.pending.budget.add_permits(self.bytes);
    }
}

/// Why a connection stops.
enum End {
    /// The peer closed (or the socket failed): what is left is its last frame.
    Closed,
    /// A limit cut the unfinished frame.
    Cut(&'static str),
}

/// What a connection task shares with its listener.
struct Conn {
    intake: Intake,
    live: Arc<Live<SyslogSettings>>,
    pending: Arc<Pending>,
    /// Turns true when the listener stops: read what the kernel has, hand it over, end.
    stop: tokio::sync::watch::Receiver<bool>,
}

/// What waiting for the socket came to.
enum Wait {
    Ready(std::io::Result<()>),
    FrameTimeout,
    Stop,
}

impl Conn {
    async fn run<S: SyslogStream>(self, mut stream: S, peer: SocketAddr) {
        let Conn {
            intake,
            live,
            pending,
            mut stop,
        } = self;
        let mut framer = Framer::new(live.get().config.max_frame);
        // Given back only after the last frame is queued (below).
        let mut charge = Charge {
            pending: &pending,
            bytes: 0,
        };
        // When the unfinished frame began, and which frame that was.
        let mut began: Option<(Instant, u64)> = None;
        let mut stopping: Option<Instant> = None;
        let end = loop {
            let timeout = live.get().config.frame_timeout;
            let deadline = began.map(|(t, _)| t + timeout);
            let wait = match stopping {
                // Shutting down: read on while bytes keep coming (a sender that closed has its last
                // bytes in flight), until end of stream, a pause, or the drain time is up.
                Some(until) => {
                    let pause = DRAIN_PAUSE.min(until.saturating_duration_since(Instant::now()));
                    match tokio::time::timeout(pause, stream.ready()).await {
                        Ok(r) => Wait::Ready(r),
                        Err(_) => break End::Closed,
                    }
                }
                None => {
                    let readable = async {
                        match deadline {
                            Some(d) => match tokio::time::timeout_at(d, stream.ready()).await {
                                Ok(r) => Wait::Ready(r),
                                Err(_) => Wait::FrameTimeout,
                            },
                            None => Wait::Ready(stream.ready().await),
                        }
                    };
                    tokio::select! {
                        w = readable => w,
                        _ = stop.wait_for(|s| *s) => Wait::Stop,
                    }
                }
            };
            match wait {
                Wait::Ready(Ok(())) => {}
                Wait::Ready(Err(_)) => break End::Closed,
                Wait::FrameTimeout => break End::Cut("frame_timeout"),
                Wait::Stop => {
                    stopping = Some(Instant::now() + DRAIN_MAX);
                    continue;
                }
            }
            // Room for what this read may bring, before reading it.
            if !charge.take_read(deadline, intake.stats()).await {
                break End::Cut("frame_timeout");
            }
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let n = stream.read_now(&mut scratch[..])?;
                framer.buffer().extend_from_slice(&scratch[..n]);
                Ok::<usize, std::io::Error>(n)
            });
            match read {
                Ok(0) => break End::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    charge.keep(framer.buffer().len());
                    continue;
                }
                Err(e) => {
                    tracing::debug!(%peer, "syslog stream read failed: {e}");
                    break End::Closed;
                }
            }
            let settings = live.get();
            while let Some(frame) = framer.next_frame() {
                if submit(&intake, frame, peer, &settings).await.is_err() {
                    return;
                }
            }
            framer.shrink();
            began = match (framer.in_frame(), began) {
                (false, _) => None,
                (true, Some((t, b))) if b == framer.boundaries() => Some((t, b)),
                (true, _) => Some((Instant::now(), framer.boundaries())),
            };
            charge.keep(framer.buffer().len());
        };
        let settings = live.get();
        let last = match end {
            End::Closed => framer.finish(),
            End::Cut(limit) => {
                intake.stats().limit_hit(limit);
                tracing::debug!(%peer, "syslog TCP: unfinished frame cut by {limit}; closing the connection");
                framer.cut()
            }
        };
        if let Some(frame) = last {
            let _ = submit(&intake, frame, peer, &settings).await;
        }
        drop(charge);
    }
}

async fn submit(
    intake: &Intake,
    frame: Frame,
    peer: SocketAddr,
    settings: &SyslogSettings,
) -> Result<(), crate::pipeline::intake::Closed> {
    if frame.truncated {
        Stats::inc(&intake.stats().truncated);
    }
    let record = decode(&frame.data, peer.ip(), settings, intake.stats());
    intake.submit(record).await
}
