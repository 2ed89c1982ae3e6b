//! The one door from sources into the pipeline: sanitize, filter, count, then queue in memory or,
//! with the spool on, append to the spool (which then acknowledges under its sync policy).

use super::queue::{PushAllError, PushError, QueueSender, Reservation, ReserveError};
use super::spool::Spool;
use crate::filter::Filter;
use crate::live::Live;
use crate::record::Record;
use crate::stats::{Count, Stats};
use std::sync::Arc;
use std::time::Duration;

/// Shared by every source task.
#[derive(Clone)]
pub struct Intake {
    queue: QueueSender,
    /// When on, records go here instead of the queue.
    spool: Option<Spool>,
    filter: Arc<Live<Filter>>,
    stats: Arc<Stats>,
    /// Per source and transport, when this intake belongs to one listener.
    received: Option<Count>,
}

/// The pipeline is shutting down; the record was not queued.
#[derive(Debug, thiserror::Error)]
#[error("the pipeline is shut down")]
pub struct Closed;

/// Why [`Intake::submit_all`] queued nothing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitAllError {
    #[error("the queue is full; retry later")]
    Full,
    #[error("the request's records are more than the whole queue holds")]
    TooLarge,
    #[error("the pipeline is shut down")]
    Closed,
}

impl Intake {
    /// Joins the pieces.
    pub fn new(queue: QueueSender, filter: Arc<Live<Filter>>, stats: Arc<Stats>) -> Self {
        Intake {
            queue,
            spool: None,
            filter,
            stats,
            received: None,
        }
    }

    /// The same intake, appending to the spool instead of queueing in memory.
    pub fn with_spool(self, spool: Spool) -> Self {
        Intake {
            spool: Some(spool),
            ..self
        }
    }

    /// The same intake, counting what it receives under this source and transport.
    pub fn for_source(&self, source: &'static str, transport: &'static str) -> Self {
        Intake {
            received: Some(self.stats.received_counter(source, transport)),
            ..self.clone()
        }
    }

    /// Counters for sources to bump.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The counters, to keep beyond this intake.
    pub fn stats_handle(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The queue, for depth readings.
    pub fn queue(&self) -> &QueueSender {
        &self.queue
    }

    fn prepare(&self, mut record: Record) -> Option<Record> {
        Stats::inc(&self.stats.received);
        if let Some(c) = &self.received {
            c.inc();
        }
        record.sanitize();
        if self.filter.get().accepts(&record) {
            Some(record)
        } else {
            Stats::inc(&self.stats.filtered);
            None
        }
    }

    /// Queues a record, waiting while the queue is full (backpressure for stream sources).
    pub async fn submit(&self, record: Record) -> Result<(), Closed> {
        let Some(record) = self.prepare(record) else {
            return Ok(());
        };
        if let Some(spool) = &self.spool {
            return spool.submit(&record).await.map_err(|_| Closed);
        }
        self.queue.push(record).await.map_err(|_| Closed)
    }

    /// Queues the records of one request that the filters accept, all or none, waiting up to `wait`
    /// for room. Returns how many the filters refused.
    pub async fn submit_all(
        &self,
        records: Vec<Record>,
        wait: Duration,
    ) -> Result<usize, SubmitAllError> {
        let total = records.len();
        let kept: Vec<Record> = records
            .into_iter()
            .filter_map(|r| self.prepare(r))
            .collect();
        let refused = total - kept.len();
        if kept.is_empty() {
            return Ok(refused);
        }
        if let Some(spool) = &self.spool {
            return match spool.submit_all(&kept, wait).await {
                Ok(true) => Ok(refused),
                Ok(false) => Err(SubmitAllError::Full),
                Err(_) => Err(SubmitAllError::Closed),
            };
        }
        match self.queue.push_all(kept, wait).await {
            Ok(()) => Ok(refused),
            Err(PushAllError::Full) => Err(SubmitAllError::Full),
            Err(PushAllError::Closed) => Err(SubmitAllError::Closed),
        }
    }

    /// Starts taking in the records of one request (OTLP): each is filtered and takes its queue
    /// bytes as it is mapped, so a request is never expanded past the room the queue has.
    pub fn request(&self) -> RequestIntake {
        RequestIntake {
            intake: self.clone(),
            reservation: self.queue.reservation(),
            refused: 0,
        }
    }

    /// Queues a record if there is room now; a full queue drops it and counts the drop (UDP).
    pub fn offer(&self, record: Record) -> Result<(), Closed> {
        let Some(record) = self.prepare(record) else {
            return Ok(());
        };
        let pushed = match &self.spool {
            Some(spool) => match spool.offer(&record) {
                Ok(true) => Ok(()),
                Ok(false) => Err(PushError::Full(record)),
                Err(_) => Err(PushError::Closed(record)),
            },
            None => self.queue.try_push(record),
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(PushError::Full(_)) => {
                if self.stats.udp_dropped.inc().is_multiple_of(10000) {
                    tracing::warn!(
                        dropped_total = self.stats.snapshot().udp_dropped,
                        "queue full: dropping UDP messages (the database is not keeping up or is down)"
                    );
                }
                Ok(())
            }
            Err(PushError::Closed(_)) => Err(Closed),
        }
    }
}

/// The records of one request on their way in: all are queued by [`RequestIntake::commit`], or none
/// (dropping it gives their queue bytes back).
pub struct RequestIntake {
    intake: Intake,
    reservation: Reservation,
    refused: usize,
}

/// What [`RequestIntake::offer`] could not take now.
pub enum Offer {
    /// Taken (or refused by the filters).
    Taken,
    /// Its bytes are not free now: wait with [`RequestIntake::wait_for`].
    Wait(Record),
}

impl RequestIntake {
    /// Filters one record and takes its bytes if they are free now.
    pub fn offer(&mut self, record: Record) -> Result<Offer, SubmitAllError> {
        let Some(record) = self.intake.prepare(record) else {
            self.refused += 1;
            return Ok(Offer::Taken);
        };
        match self.reservation.try_add(record) {
            Ok(None) => Ok(Offer::Taken),
            Ok(Some(record)) => Ok(Offer::Wait(record)),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until `deadline` for the bytes of a record that [`RequestIntake::offer`] handed back.
    pub async fn wait_for(
        &mut self,
        record: Record,
        deadline: tokio::time::Instant,
    ) -> Result<(), SubmitAllError> {
        self.reservation
            .add(record, deadline)
            .await
            .map_err(SubmitAllError::from)
    }

    /// Queues every record taken (with the spool on: appends them and waits, until `deadline` for
    /// room, until they are durable under the sync policy); returns how many the filters refused.
    /// The deadline is the request's one, shared with the waits for queue bytes, so a request waits
    /// `queue_wait` in all, not once for the queue and once more for the spool.
    pub async fn commit(mut self, deadline: tokio::time::Instant) -> Result<usize, SubmitAllError> {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(spool) = &self.intake.spool else {
            self.reservation.commit()?;
            return Ok(self.refused);
        };
        // The queue bytes stay taken until the records are in the spool.
        let records = self.reservation.take_records();
        if records.is_empty() {
            return Ok(self.refused);
        }
        match spool.submit_all(&records, wait).await {
            Ok(true) => Ok(self.refused),
            Ok(false) => Err(SubmitAllError::Full),
            Err(_) => Err(SubmitAllError::Closed),
        }
    }
}

impl From<ReserveError> for SubmitAllError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::TooLarge => SubmitAllError::TooLarge,
            ReserveError::Full => SubmitAllError::Full,
            ReserveError::Closed => SubmitAllError::Closed,
        }
    }
}
