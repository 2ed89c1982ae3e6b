//! Sources: turn bytes from the network into [`crate::record::Record`]s and hand them to the
//! [`crate::pipeline::intake::Intake`]. They know nothing of databases.

pub mod otlp;
pub mod syslog;
