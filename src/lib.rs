//! log-panel-collector: syslog and OTLP in, django-log-panel records out.
//!
//! The pipeline, in module order: [`source`] turns bytes into [`record::Record`]s, the
//! [`pipeline`] queues, batches and delivers them, and a [`storage::Backend`] writes each batch in
//! one transaction. [`collector::Collector`] wires it together for the binary and for tests.

pub mod collector;
pub mod config;
pub mod context;
pub mod filter;
pub mod live;
pub mod loadgen;
pub mod pipeline;
pub mod record;
pub mod retention;
pub mod security;
pub mod service;
pub mod settings;
pub mod source;
pub mod stats;
pub mod storage;
pub mod tls;
