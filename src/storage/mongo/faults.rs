//! Fault injection for the tests that prove a batch failed half way and retried is exact: the next
//! `n` writes succeed, the one after fails as a dropped connection would. Built only for tests (the
//! `fault-injection` feature, which the integration tests turn on); without it the hook is a no-op
//! the compiler removes.

use super::MongoBackend;
use crate::storage::StorageError;
use bson::Document;

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

    /// Test hook: a row whose message is `text` is refused as data the way an unordered
    /// `insert_many` refuses a document (the others land, the error is permanent), which the
    /// wire-compatible stand-in cannot do by itself (it enforces no validator or size limit).
    pub fn refuse_messages_with(&self, text: Option<&str>) {
        *self.refuse.lock().expect("lock") = text.map(str::to_string);
    }

    /// Splits off the rows [`MongoBackend::refuse_messages_with`] refuses.
    pub(super) fn refused(&self, coll: &str, docs: Vec<Document>) -> (Vec<Document>, bool) {
        let poison = self.refuse.lock().expect("lock").clone();
        match poison {
            Some(p) if coll == "log_panel_log" => {
                let (keep, refused): (Vec<Document>, Vec<Document>) = docs
                    .into_iter()
                    .partition(|d| d.get_str("message") != Ok(p.as_str()));
                (keep, !refused.is_empty())
            }
            _ => (docs, false),
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
impl MongoBackend {
    /// Without fault injection: every write goes ahead.
    #[inline(always)]
    pub(super) fn step(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Without fault injection: nothing is refused.
    #[inline(always)]
    pub(super) fn refused(&self, _coll: &str, docs: Vec<Document>) -> (Vec<Document>, bool) {
        (docs, false)
    }
}
