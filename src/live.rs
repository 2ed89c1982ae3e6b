//! Settings that a reload (SIGHUP) replaces while the pipeline runs: readers take the current value
//! per message or batch, so nothing has to stop for a new filter, mapping or batch size.

use std::sync::{Arc, RwLock};

/// A value readers see whole, old or new, never half replaced.
#[derive(Debug)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// A shared cell holding `value`.
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Live(RwLock::new(Arc::new(value))))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value with one shared with another cell.
    pub fn set_arc(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    /// Replaces the value for all later readers.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
    }
}
