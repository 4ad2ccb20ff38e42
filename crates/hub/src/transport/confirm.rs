//! What the hub asks again for when an agent's answer may have been lost.
//!
//! Agents' statuses reach the hubs through one shared subscription. A broker delivers each
//! message to one member of the group, and a member that may not read the topic (a client
//! that learnt the group's name and joined it: Mosquitto's ACL file checks deliveries, not
//! subscriptions) takes its share and drops it. A lost status of a new version leaves the hub
//! showing the old one; a lost `Deleted` leaves the bundle deleting for good.
//!
//! So the hub does not wait for the next periodic status resync: every change an agent has not
//! confirmed within [`Confirm::after`] (a bundle without a status of its current version, or a
//! delete without its `Deleted`) is asked for again, per consumer: a `status.resync_request`
//! listing just those bundles, and the delete again for those being deleted. A consumer that
//! confirmed something since its last ask is asked again at the next sweep; one that stays
//! silent is asked after twice the wait, up to [`MAX_BACKOFF`] times it, so an agent that is
//! away for a day costs its queue a few messages an hour.
//!
//! The window this bounds: a lost answer is asked for between `after` and `1.5 × after` after
//! the change (the sweep runs every `after / 2`), and again every sweep while answers come.
//! The broker hands each answer to the members of the group in turn: with `k` foreign members,
//! at least one answer in `k + 1` reaches a hub, so `n` lost statuses of a consumer take about
//! `log n / log((k + 1) / k)` asks, `after / 2` apart. Every hub runs the sweep.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::mqtt::ConnectionState;
use super::resync::Resync;
use maestro_store::status::Unconfirmed;

/// The longest wait between two asks of one consumer, in multiples of `after`.
pub const MAX_BACKOFF: u32 = 8;

/// Most bundles looked at per sweep (oldest change first).
const SWEEP_LIMIT: i64 = 5000;

/// The sweep of one hub.
pub struct Confirm {
    pub resync: Arc<Resync>,
    /// How long a change may go unconfirmed before the hub asks again.
    pub after: Duration,
}

/// When a consumer that was asked may be asked again.
#[derive(Debug, Clone, Copy)]
struct Asked {
    /// Asks in a row that confirmed nothing.
    times: u32,
    next: Instant,
    /// How many bundles were unconfirmed at the last ask.
    pending: usize,
}

impl Confirm {
    /// Sweeps every `after / 2` while connected, until the link goes away.
    pub async fn run(self, mut state: watch::Receiver<ConnectionState>) {
        let period = (self.after / 2).max(Duration::from_millis(500));
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut asked: HashMap<String, Asked> = HashMap::new();
        loop {
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = ticker.tick() => {
                    if state.borrow().connected {
                        self.sweep(&mut asked).await;
                    }
                }
            }
        }
    }

    async fn sweep(&self, asked: &mut HashMap<String, Asked>) {
        let before = chrono::Utc::now() - chrono::Duration::from_std(self.after).unwrap_or_default();
        let pending = match self.resync.store.unconfirmed(before, SWEEP_LIMIT).await {
            Ok(pending) => pending,
            Err(err) => return tracing::warn!(error = %err, "cannot read unconfirmed bundles; trying again later"),
        };
        let by_consumer = group(pending);
        asked.retain(|consumer, _| by_consumer.contains_key(consumer));
        let now = Instant::now();
        for (consumer, bundles) in by_consumer {
            let previous = asked.get(&consumer).copied();
            // An agent that confirmed some since the last ask is answering: no backing off.
            let times = previous.filter(|a| bundles.len() >= a.pending).map_or(0, |a| a.times);
            if previous.is_some_and(|a| a.next > now) && times > 0 {
                continue;
            }
            if let Err(err) = self.resync.ask_again(&consumer, &bundles).await {
                tracing::warn!(consumer, error = %err, "cannot ask an agent again; trying at the next sweep");
                continue;
            }
            let next = now + backoff(self.after, times);
            asked.insert(consumer, Asked { times: times + 1, next, pending: bundles.len() });
        }
    }
}

/// The wait after a consumer was asked `times` times before: `after`, doubling, at most
/// [`MAX_BACKOFF`] times it.
fn backoff(after: Duration, times: u32) -> Duration {
    after * 2u32.saturating_pow(times).min(MAX_BACKOFF)
}

fn group(pending: Vec<Unconfirmed>) -> BTreeMap<String, Vec<Unconfirmed>> {
    let mut by_consumer: BTreeMap<String, Vec<Unconfirmed>> = BTreeMap::new();
    for bundle in pending {
        by_consumer.entry(bundle.consumer_name.clone()).or_default().push(bundle);
    }
    by_consumer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_back_off_from_the_wait_to_a_bounded_multiple_of_it() {
        let after = Duration::from_secs(30);
        let waits: Vec<u64> = [0, 1, 2, 3, 4, 40].map(|n| backoff(after, n).as_secs()).to_vec();
        assert_eq!(waits, [30, 60, 120, 240, 240, 240]);
    }

    #[test]
    fn unconfirmed_bundles_are_grouped_per_consumer() {
        let bundle =
            |id: &str, consumer: &str| Unconfirmed { id: id.into(), consumer_name: consumer.into(), deleting: false };
        let groups = group(vec![bundle("a", "c1"), bundle("b", "c2"), bundle("c", "c1")]);
        let ids: Vec<(&str, Vec<&str>)> =
            groups.iter().map(|(c, b)| (c.as_str(), b.iter().map(|b| b.id.as_str()).collect())).collect();
        assert_eq!(ids, [("c1", vec!["a", "c"]), ("c2", vec!["b"])]);
    }
}
