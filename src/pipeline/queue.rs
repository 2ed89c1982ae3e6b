//! The bounded queue between sources and delivery. Its cap is in bytes of records held, counted from
//! the moment a record is queued until its batch is committed, so a stalled database stops intake
//! (TCP backpressure, UDP drops) instead of growing memory.

use super::config::BatchCap;
use crate::record::Record;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

struct Shared {
    budget: Semaphore,
    cap: u32,
    records: AtomicUsize,
    bytes: AtomicUsize,
}

/// A record with the queue bytes it holds.
#[derive(Debug)]
pub struct Queued {
    pub record: Record,
    weight: u32,
}

/// Why a record was not queued.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("queue is full")]
    Full(Record),
    #[error("queue is closed")]
    Closed(Record),
}

/// Why [`QueueSender::push_all`] queued nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushAllError {
    #[error("queue is full")]
    Full,
    #[error("queue is closed")]
    Closed,
}

/// The producer side; clone one per source.
#[derive(Clone)]
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
}

/// The consumer side, read by delivery.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Queued>,
    /// Records received past a batch's byte cap: the next batch starts with them.
    carry: VecDeque<Queued>,
    shared: Arc<Shared>,
}

/// What [`QueueReceiver::next_batch_or_idle`] found.
pub enum Next {
    Batch(Vec<Record>, Ticket),
    Idle,
    Closed,
}

/// Bytes a batch holds in the queue; give them back with [`Ticket::release`] once it is committed.
#[must_use = "release the ticket after the batch is written"]
pub struct Ticket {
    shared: Arc<Shared>,
    weight: usize,
    records: usize,
}

/// A queue that holds at most `cap_bytes` of records.
pub fn bounded(cap_bytes: usize) -> (QueueSender, QueueReceiver) {
    let cap = cap_bytes.min(u32::MAX as usize) as u32;
    let shared = Arc::new(Shared {
        budget: Semaphore::new(cap as usize),
        cap,
        records: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    (
        QueueSender {
            tx,
            shared: shared.clone(),
        },
        QueueReceiver {
            rx,
            carry: VecDeque::new(),
            shared,
        },
    )
}

impl Shared {
    fn weight_of(&self, r: &Record) -> u32 {
        r.weight().min(self.cap as usize) as u32
    }

    fn account(&self, weight: u32) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(weight as usize, Ordering::Relaxed);
    }
}

impl QueueSender {
    /// Waits for room, then queues (TCP and OTLP: the wait is the backpressure).
    pub async fn push(&self, record: Record) -> Result<(), PushError> {
        let weight = self.shared.weight_of(&record);
        match self.shared.budget.acquire_many(weight).await {
            Ok(p) => p.forget(),
            Err(_) => return Err(PushError::Closed(record)),
        }
        self.send(record, weight)
    }

    /// Queues only if there is room now (UDP: a full queue means a counted drop).
    pub fn try_push(&self, record: Record) -> Result<(), PushError> {
        let weight = self.shared.weight_of(&record);
        match self.shared.budget.try_acquire_many(weight) {
            Ok(p) => p.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(PushError::Full(record)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PushError::Closed(record)),
        }
        self.send(record, weight)
    }

    /// Queues all records or none: waits up to `wait` for room for all of them (OTLP: an exporter
    /// that is told "unavailable" retries the whole request, so a partial enqueue would duplicate).
    pub async fn push_all(&self, records: Vec<Record>, wait: Duration) -> Result<(), PushAllError> {
        let weights: Vec<u32> = records.iter().map(|r| self.shared.weight_of(r)).collect();
        let total = weights
            .iter()
            .map(|&w| w as u64)
            .sum::<u64>()
            .min(self.shared.cap as u64) as u32;
        match tokio::time::timeout(wait, self.shared.budget.acquire_many(total)).await {
            Ok(Ok(p)) => p.forget(),
            Ok(Err(_)) => return Err(PushAllError::Closed),
            Err(_) => return Err(PushAllError::Full),
        }
        // Clamping to the cap may have taken fewer permits than the weights add up to: give the
        // difference back by holding the first records' weights lower.
        let mut unpaid = weights.iter().map(|&w| w as u64).sum::<u64>() - total as u64;
        for (record, mut weight) in records.into_iter().zip(weights) {
            let cut = unpaid.min(weight as u64) as u32;
            weight -= cut;
            unpaid -= cut as u64;
            self.shared.account(weight);
            if self.tx.send(Queued { record, weight }).is_err() {
                return Err(PushAllError::Closed);
            }
        }
        Ok(())
    }

    /// An empty reservation: records join it one at a time, each taking its bytes of the queue as
    /// it comes, and are queued together by [`Reservation::commit`] (OTLP: a request is expanded
    /// only as far as the queue has room for it, never past the cap).
    pub fn reservation(&self) -> Reservation {
        Reservation {
            tx: self.clone(),
            items: Vec::new(),
            taken: 0,
        }
    }

    fn send(&self, record: Record, weight: u32) -> Result<(), PushError> {
        self.shared.account(weight);
        self.tx.send(Queued { record, weight }).map_err(|e| {
            self.shared.budget.add_permits(weight as usize);
            PushError::Closed(e.0.record)
        })
    }

    /// Records and bytes queued or in flight.
    pub fn depth(&self) -> (usize, usize) {
        self.depth_gauge().depth()
    }

    /// The byte cap.
    pub fn capacity(&self) -> usize {
        self.shared.cap as usize
    }

    /// A handle that reads the depth without keeping the queue open.
    pub fn depth_gauge(&self) -> QueueDepth {
        QueueDepth(self.shared.clone())
    }
}

/// Why a record could not join a [`Reservation`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReserveError {
    /// The reservation would hold more than the whole queue: it can never be queued.
    #[error("more than the whole queue")]
    TooLarge,
    /// No room came before the deadline.
    #[error("queue is full")]
    Full,
    #[error("queue is closed")]
    Closed,
}

/// Records that hold queue bytes but are not queued yet; dropping it gives the bytes back.
pub struct Reservation {
    tx: QueueSender,
    items: Vec<(Record, u32)>,
    taken: u64,
}

impl Reservation {
    /// Bytes taken so far.
    pub fn bytes(&self) -> u64 {
        self.taken
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no record joined.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a record if its bytes are free now (`Ok(None)`); hands it back when they are not
    /// (`Ok(Some(record))`, to wait for with [`Reservation::add`]).
    pub fn try_add(&mut self, record: Record) -> Result<Option<Record>, ReserveError> {
        let weight = record.weight();
        if self.taken + weight as u64 > self.tx.shared.cap as u64 {
            return Err(ReserveError::TooLarge);
        }
        let weight = weight as u32;
        match self.tx.shared.budget.try_acquire_many(weight) {
            Ok(p) => p.forget(),
            Err(tokio::sync::TryAcquireError::NoPermits) => return Ok(Some(record)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(ReserveError::Closed),
        }
        self.taken += weight as u64;
        self.items.push((record, weight));
        Ok(None)
    }

    /// Adds a record, waiting until `deadline` for its bytes.
    pub async fn add(&mut self, record: Record, deadline: Instant) -> Result<(), ReserveError> {
        let weight = record.weight();
        if self.taken + weight as u64 > self.tx.shared.cap as u64 {
            return Err(ReserveError::TooLarge);
        }
        let weight = weight as u32;
        match tokio::time::timeout_at(deadline, self.tx.shared.budget.acquire_many(weight)).await {
            Ok(Ok(p)) => p.forget(),
            Ok(Err(_)) => return Err(ReserveError::Closed),
            Err(_) => return Err(ReserveError::Full),
        }
        self.taken += weight as u64;
        self.items.push((record, weight));
        Ok(())
    }

    /// The records held, leaving their bytes taken until the reservation is dropped (for a caller
    /// that stores them elsewhere, such as the spool).
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.items)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// Queues every record held, in order.
    pub fn commit(mut self) -> Result<(), ReserveError> {
        for (record, weight) in std::mem::take(&mut self.items) {
            self.taken -= weight as u64;
            self.tx.shared.account(weight);
            if self.tx.tx.send(Queued { record, weight }).is_err() {
                self.tx.shared.budget.add_permits(weight as usize);
                return Err(ReserveError::Closed);
            }
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.taken > 0 {
            self.tx.shared.budget.add_permits(self.taken as usize);
        }
    }
}

/// Reads how much the queue holds (for metrics), without being a sender.
#[derive(Clone)]
pub struct QueueDepth(Arc<Shared>);

impl QueueDepth {
    /// Records and bytes queued or in flight.
    pub fn depth(&self) -> (usize, usize) {
        (
            self.0.records.load(Ordering::Relaxed),
            self.0.bytes.load(Ordering::Relaxed),
        )
    }
}

impl QueueReceiver {
    /// Up to `max` records: waits for the first, then collects until `max` or `max_delay` after it.
    /// `None` once every sender is gone and the queue is empty.
    #[cfg(test)]
    pub async fn next_batch(
        &mut self,
        max: usize,
        max_delay: Duration,
    ) -> Option<(Vec<Record>, Ticket)> {
        loop {
            match self
                .next_batch_or_idle(BatchCap::records(max), max_delay, Duration::from_secs(3600))
                .await
            {
                Next::Batch(records, ticket) => return Some((records, ticket)),
                Next::Idle => continue,
                Next::Closed => return None,
            }
        }
    }

    /// Up to `cap` (at least one record): waits for the first, then collects until the cap or
    /// `max_delay` after it; returns [`Next::Idle`] when nothing arrived within `idle`, so the caller
    /// can show it is alive (the watchdog) and pick up new settings.
    pub async fn next_batch_or_idle(
        &mut self,
        cap: BatchCap,
        max_delay: Duration,
        idle: Duration,
    ) -> Next {
        let max = cap.records;
        let mut items: Vec<Queued> = Vec::with_capacity(max.min(8192));
        let mut weight = 0;
        while !cap.full(items.len(), weight) {
            let Some(q) = self.carry.pop_front() else {
                break;
            };
            weight += q.weight as usize;
            items.push(q);
        }
        if items.is_empty() {
            match tokio::time::timeout(idle, self.rx.recv_many(&mut items, max)).await {
                Err(_) => return Next::Idle,
                Ok(0) => return Next::Closed,
                Ok(_) => {}
            }
            weight = self.cut(&mut items, 0, cap.bytes);
        }
        let deadline = Instant::now() + max_delay;
        while !cap.full(items.len(), weight) && self.carry.is_empty() {
            let room = max - items.len();
            let from = items.len();
            match tokio::time::timeout_at(deadline, self.rx.recv_many(&mut items, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            weight += self.cut(&mut items, from, cap.bytes - weight);
        }
        let ticket = Ticket {
            shared: self.shared.clone(),
            weight,
            records: items.len(),
        };
        Next::Batch(items.into_iter().map(|q| q.record).collect(), ticket)
    }

    /// Keeps `items[from..]` up to the record whose weight reaches `room`, moves the rest to the
    /// carry (in order, so records keep their order across batches), and returns the kept weight.
    fn cut(&mut self, items: &mut Vec<Queued>, from: usize, room: usize) -> usize {
        let mut kept = 0;
        for (i, q) in items[from..].iter().enumerate() {
            kept += q.weight as usize;
            if kept >= room {
                self.carry.extend(items.drain(from + i + 1..));
                break;
            }
        }
        kept
    }
}

impl Ticket {
    /// Frees the batch's bytes for new records.
    pub fn release(self) {
        self.shared
            .records
            .fetch_sub(self.records, Ordering::Relaxed);
        self.shared.bytes.fetch_sub(self.weight, Ordering::Relaxed);
        self.shared.budget.add_permits(self.weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Level;

    fn rec(n: usize) -> Record {
        Record::sample(Level::Info, "t", "x".repeat(n))
    }

    /// Takes the next batch (up to 10 records) and releases it: how many records it had.
    async fn take(rx: &mut QueueReceiver) -> usize {
        let (b, t) = rx.next_batch(10, Duration::from_millis(1)).await.unwrap();
        t.release();
        b.len()
    }

    #[tokio::test]
    async fn full_queue_refuses_then_accepts_after_release() {
        let (tx, mut rx) = bounded(4096);
        tx.try_push(rec(1000)).unwrap();
        tx.try_push(rec(1000)).unwrap();
        tx.try_push(rec(1000)).unwrap();
        assert!(matches!(tx.try_push(rec(1000)), Err(PushError::Full(_))));
        let (batch, ticket) = rx.next_batch(10, Duration::from_millis(1)).await.unwrap();
        assert_eq!(batch.len(), 3);
        // Still full until the batch is committed.
        assert!(matches!(tx.try_push(rec(1000)), Err(PushError::Full(_))));
        ticket.release();
        tx.try_push(rec(1000)).unwrap();
        assert_eq!(tx.depth().0, 1);
    }

    #[tokio::test]
    async fn push_waits_for_room() {
        let (tx, mut rx) = bounded(2048);
        tx.push(rec(1500)).await.unwrap();
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move { tx2.push(rec(1500)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert_eq!(take(&mut rx).await, 1);
        waiter.await.unwrap().unwrap();
        drop(tx);
        assert_eq!(take(&mut rx).await, 1);
        assert!(rx.next_batch(10, Duration::from_millis(1)).await.is_none());
    }

    #[tokio::test]
    async fn push_all_is_all_or_nothing() {
        let (tx, mut rx) = bounded(4096);
        tx.push_all(vec![rec(1000), rec(1000)], Duration::from_millis(10))
            .await
            .unwrap();
        let err = tx
            .push_all(vec![rec(1000), rec(1000)], Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!(err, PushAllError::Full);
        assert_eq!(tx.depth().0, 2, "nothing of the refused request was queued");
        assert_eq!(take(&mut rx).await, 2);
        // Larger than the whole cap: still accepted once the queue is empty.
        tx.push_all(vec![rec(3000), rec(3000)], Duration::from_millis(10))
            .await
            .unwrap();
        assert_eq!(take(&mut rx).await, 2);
        assert_eq!(tx.depth(), (0, 0));
    }

    #[tokio::test]
    async fn a_reservation_takes_bytes_as_it_grows_and_gives_them_back_when_dropped() {
        let (tx, mut rx) = bounded(8192);
        let mut r = tx.reservation();
        assert!(r.try_add(rec(2000)).unwrap().is_none());
        assert!(r.try_add(rec(2000)).unwrap().is_none());
        assert_eq!(r.len(), 2);
        // The bytes are taken: a plain push must wait.
        assert!(matches!(tx.try_push(rec(5000)), Err(PushError::Full(_))));
        assert_eq!(
            r.try_add(rec(7000)).unwrap_err(),
            ReserveError::TooLarge,
            "more than the whole queue"
        );
        let mut other = tx.reservation();
        assert!(other.try_add(rec(4500)).unwrap().is_some(), "no room now");
        drop(r);
        tx.try_push(rec(5000)).unwrap();
        assert_eq!(take(&mut rx).await, 1);
        let mut r = tx.reservation();
        assert!(r.try_add(rec(3000)).unwrap().is_none());
        let held = tx.reservation();
        drop(held);
        let deadline = Instant::now() + Duration::from_millis(20);
        r.add(rec(3000), deadline).await.unwrap();
        let mut other = tx.reservation();
        assert_eq!(
            other
                .add(rec(3000), Instant::now() + Duration::from_millis(20))
                .await,
            Err(ReserveError::Full)
        );
        r.commit().unwrap();
        assert_eq!(take(&mut rx).await, 2);
        assert_eq!(tx.depth(), (0, 0));
    }

    #[tokio::test]
    async fn record_larger_than_cap_still_passes() {
        let (tx, mut rx) = bounded(2048);
        tx.push(rec(1 << 20)).await.unwrap();
        let (b, t) = rx.next_batch(10, Duration::from_millis(1)).await.unwrap();
        assert_eq!(b[0].message.len(), 1 << 20);
        t.release();
    }

    #[tokio::test]
    async fn batches_are_cut_at_the_byte_cap_in_order_and_release_what_they_hold() {
        let (tx, mut rx) = bounded(1 << 20);
        for i in 0..10 {
            tx.try_push(Record::sample(
                Level::Info,
                "t",
                format!("{i}{}", "x".repeat(999)),
            ))
            .unwrap();
        }
        let one = rec(1000).weight();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while seen.len() < 10 {
            // 2.5 records' weight: each batch takes the record that crosses it, so three.
            let next = rx
                .next_batch_or_idle(
                    BatchCap {
                        records: 100,
                        bytes: one * 5 / 2,
                    },
                    Duration::from_millis(1),
                    Duration::from_millis(50),
                )
                .await;
            let Next::Batch(b, t) = next else {
                panic!("records are queued")
            };
            assert_eq!(t.weight, b.iter().map(Record::weight).sum::<usize>());
            sizes.push(b.len());
            seen.extend(b.iter().map(|r| r.message[..1].to_string()));
            t.release();
        }
        assert_eq!(sizes, [3, 3, 3, 1]);
        let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(seen, want, "order kept across the carry");
        assert_eq!(tx.depth(), (0, 0), "every byte given back");
        drop(tx);
        assert!(rx.next_batch(10, Duration::from_millis(1)).await.is_none());
    }
}
