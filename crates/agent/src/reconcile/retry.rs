//! The one retry scheduler of the reconciler, keyed by bundle (after kube-runtime's
//! scheduler): failed writes, versions a hook holds back and unfinished deletes ask to be looked
//! at again after a delay; the reconciler's loop takes the next one due. A bundle is scheduled
//! at most once: asking again while a retry is due keeps the earlier one.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// First wait before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait before retry number `attempt` (from 1).
pub(super) fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(10));
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Bundles due for another look, by deadline.
#[derive(Debug, Default)]
pub(super) struct Retries {
    due: BTreeMap<(Instant, u64), String>,
    by_id: HashMap<String, (Instant, u64)>,
    seq: u64,
}

impl Retries {
    /// Schedules `id` after `delay`; false (and nothing changes) if it is scheduled already.
    pub(super) fn schedule(&mut self, id: &str, delay: Duration) -> bool {
        if self.by_id.contains_key(id) {
            return false;
        }
        self.seq += 1;
        let key = (Instant::now() + delay, self.seq);
        self.due.insert(key, id.to_owned());
        self.by_id.insert(id.to_owned(), key);
        true
    }

    pub(super) fn is_scheduled(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The next bundle due, once its time comes; never, while nothing is scheduled. Safe to
    /// drop at any await: an entry leaves only when it is returned.
    pub(super) async fn next(&mut self) -> String {
        loop {
            let Some((&key, _)) = self.due.iter().next() else {
                return std::future::pending().await;
            };
            tokio::time::sleep_until(key.0).await;
            if let Some(id) = self.due.remove(&key) {
                self.by_id.remove(&id);
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_quarter_second_up_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(50), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn the_earliest_retry_comes_first_and_a_bundle_is_scheduled_once() {
        let mut retries = Retries::default();
        assert!(retries.schedule("slow", Duration::from_millis(300)));
        assert!(retries.schedule("fast", Duration::from_millis(30)));
        assert!(!retries.schedule("fast", Duration::from_millis(1)), "asking again keeps the earlier retry");
        assert!(retries.is_scheduled("fast"));
        let started = Instant::now();
        assert_eq!(retries.next().await, "fast");
        assert!(started.elapsed() >= Duration::from_millis(30), "not before its time");
        assert!(!retries.is_scheduled("fast"));
        assert!(retries.schedule("fast", Duration::from_millis(600)), "once taken it can be scheduled again");
        assert_eq!(retries.next().await, "slow");
        assert_eq!(retries.next().await, "fast");
        let nothing = tokio::time::timeout(Duration::from_millis(50), retries.next()).await;
        assert!(nothing.is_err(), "with nothing scheduled, nothing comes");
    }
}
