//! From normalized records to committed batches: the bounded queue, batch aggregation, delivery.

pub mod batch;
pub mod config;
pub mod delivery;
pub mod intake;
pub mod queue;
pub mod spool;
