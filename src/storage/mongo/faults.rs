//! Fault injection for the tests that prove a batch failed half way and retried is exact: the next
//! `n` writes succeed, the one after fails as a dropped connection would. Built only for tests (the
//! `fault-injection` feature, which the integration tests turn on); without it the hook is a no-op
//! the compiler removes.

use super::MongoBackend;
use crate::storage::StorageError;

#[cfg(feature = "fault-injection")]
impl MongoBackend {
    /// Test hook: the next `n` write operations succeed, the one after fails (as a dropped connection
    /// would), leaving a batch half written. Used to prove that a retried batch is exact.
    pub fn fail_after_writes(&self, n: i64) {
        self.fail_after
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub(super) fn step(&self) -> Result<(), StorageError> {
        let left = self.fail_after.load(std::sync::atomic::Ordering::SeqCst);
        if left < 0 {
            return Ok(());
        }
        self.fail_after
            .store(left - 1, std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Err(StorageError::Injected);
        }
        Ok(())
    }
}

#[cfg(not(feature = "fault-injection"))]
impl MongoBackend {
    /// Without fault injection: every write goes ahead.
    #[inline(always)]
    pub(super) fn step(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
