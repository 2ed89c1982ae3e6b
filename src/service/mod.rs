//! What running as a service needs around the pipeline: systemd socket activation and notifications,
//! the daemon's own log, and the metrics / health endpoints.

pub mod activation;
pub mod config;
pub mod log;
pub mod metrics;
pub mod notify;
