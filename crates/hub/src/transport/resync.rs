//! Resync in both directions, as Maestro does it.
//!
//! - An agent's `spec.resync_request` lists the resource versions it holds. The hub answers with
//!   every bundle of that consumer that is newer, unknown to the agent, or being deleted, and
//!   with a delete for each resource the agent holds that the hub no longer has.
//! - The hub sends `status.resync_request` with its status hashes when it starts serving and
//!   after each reconnect to the broker; agents re-send every status whose hash differs.
//!
//! A spec resync request costs the hub every bundle of the consumer, so requests are gated per
//! consumer ([`Resync::request_spec_resync`]): one answer at a time, at least [`MIN_GAP`]
//! apart; requests arriving meanwhile are merged into one waiting request (the union of what
//! they list, the highest version of each) and counted as coalesced. A flood of requests costs
//! at most one answer per consumer per [`MIN_GAP`] on each hub.
//!
//! Lists are split into batches under the configured entry and byte limits. Every event goes out
//! encoded with its consumer's codecs when codecs are in force, like the dispatcher's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::codec::Codecs;
use super::dispatcher::{publish_bundle, publish_gone};
use super::error::DispatchError;
use super::metrics::TransportMetrics;
use super::mqtt::MqttLink;
use super::wire::{self, EventAction, ResourceVersionList, StatusHash, StatusHashList};
use maestro_plugins::Subject;
use maestro_store::Store;
use maestro_store::status::Unconfirmed;

/// Bounds on one resync message (Maestro caps 1000 entries; MQTT brokers cap packet sizes).
#[derive(Debug, Clone, Copy)]
pub struct ResyncLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for ResyncLimits {
    fn default() -> Self {
        ResyncLimits { max_entries: 1000, max_bytes: 256 * 1024 }
    }
}

/// Shortest time between two answers to one consumer's spec resync requests.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// Per consumer with an answer under way: the merged request to answer next, if any came.
type Waiting = HashMap<String, Option<Held>>;

/// What one or more resync requests of an agent list. Merging must never make the hub skip a
/// bundle the agent lacks, nor miss a delete the agent needs: a bundle counts as held only if
/// every merged request listed it (at the lowest version listed), and every id any request
/// listed is a candidate for a delete (at the highest). Batches of one large request merge
/// the same way: their bundles are re-sent, as each batch's answer did before.
#[derive(Debug, Default)]
pub struct Held {
    requests: u32,
    listed: HashMap<String, Listed>,
}

#[derive(Debug)]
struct Listed {
    times: u32,
    min: i64,
    max: i64,
}

impl Held {
    fn of(list: &ResourceVersionList) -> Held {
        let mut held = Held::default();
        held.add(list);
        held
    }

    fn add(&mut self, list: &ResourceVersionList) {
        self.requests += 1;
        for v in &list.resource_versions {
            let entry = self.listed.entry(v.resource_id.clone()).or_insert(Listed {
                times: 0,
                min: v.resource_version,
                max: v.resource_version,
            });
            entry.times += 1;
            entry.min = entry.min.min(v.resource_version);
            entry.max = entry.max.max(v.resource_version);
        }
    }

    /// The version the agent surely holds, if every request listed it.
    fn held_by_all(&self, listed: &Listed) -> Option<i64> {
        (listed.times >= self.requests).then_some(listed.min)
    }
}

pub struct Resync {
    /// Consumers whose spec resync is being answered (see the module doc).
    pub spec_requests: Mutex<Waiting>,
    pub store: Arc<Store>,
    pub link: Arc<MqttLink>,
    pub metrics: TransportMetrics,
    pub source: String,
    pub limits: ResyncLimits,
    pub ack_timeout: std::time::Duration,
    pub codecs: Codecs,
}

impl Resync {
    /// Takes an agent's `spec.resync_request`: answered now, or merged into the one waiting for
    /// this consumer's current answer to end (see the module doc). Never blocks the caller.
    pub fn request_spec_resync(self: &Arc<Self>, consumer: String, held: &ResourceVersionList) {
        {
            let mut waiting = self.spec_requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(next) = waiting.get_mut(&consumer) {
                match next {
                    Some(merged) => {
                        self.metrics.resync("spec_coalesced");
                        merged.add(held);
                    }
                    None => *next = Some(Held::of(held)),
                }
                return;
            }
            waiting.insert(consumer.clone(), None);
        }
        let resync = self.clone();
        let first = Held::of(held);
        // Answering publishes and awaits acks, which needs the link's incoming side to keep
        // moving: answer beside it.
        tokio::spawn(async move { resync.serve_spec_resyncs(consumer, first).await });
    }

    /// Answers `held`, then each merged request that came meanwhile, [`MIN_GAP`] apart.
    async fn serve_spec_resyncs(&self, consumer: String, mut held: Held) {
        loop {
            let started = tokio::time::Instant::now();
            if let Err(err) = self.answer_spec_resync(&consumer, &held).await {
                tracing::warn!(consumer, error = %err, "could not answer a resync request; the agent asks again on reconnect");
            }
            tokio::time::sleep_until(started + MIN_GAP).await;
            let mut waiting = self.spec_requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match waiting.get_mut(&consumer).and_then(Option::take) {
                Some(next) => held = next,
                None => {
                    waiting.remove(&consumer);
                    return;
                }
            }
        }
    }

    /// Answers what one or more `spec.resync_request`s of an agent list; returns how many
    /// events were sent.
    async fn answer_spec_resync(&self, consumer: &str, held: &Held) -> Result<usize, DispatchError> {
        let mut listed: HashMap<&str, &Listed> = held.listed.iter().map(|(id, l)| (id.as_str(), l)).collect();
        let mut pending = Vec::new();
        let subject = self.subject(consumer).await?;
        for bundle in self.store.consumer_bundles(consumer).await? {
            let entry = listed.remove(bundle.id.as_str());
            let agent_version = entry.and_then(|l| held.held_by_all(l));
            let newer = agent_version.is_none_or(|v| bundle.version > v);
            if newer || bundle.is_deleting() {
                let action = if entry.is_some() { EventAction::Update } else { EventAction::Create };
                pending.push(
                    publish_bundle(&self.link, &self.source, &bundle, action, &self.codecs, &subject)
                        .await
                        .inspect_err(|err| self.count_encode_failure(err))?,
                );
            }
        }
        // What the agent holds and the hub does not is gone from the hub: tell the agent to
        // delete it, at the highest version listed (an agent ignores an older delete).
        for (resource_id, entry) in listed {
            let sent = publish_gone(&self.link, &self.source, consumer, resource_id, entry.max, &self.codecs, &subject)
                .await
                .inspect_err(|err| self.count_encode_failure(err))?;
            pending.push(sent);
        }
        let sent = pending.len();
        for (ack, label) in pending {
            ack.wait(self.ack_timeout).await?;
            self.metrics.sent(label);
        }
        self.metrics.resync("spec_answered");
        tracing::info!(consumer, sent, "answered an agent's resync request");
        Ok(sent)
    }

    /// Sends `status.resync_request` to every consumer's agent, with the hashes of the
    /// statuses the hub holds for it.
    pub async fn request_status_resync(&self) -> Result<usize, DispatchError> {
        let consumers = self.store.consumer_names().await?;
        let mut sent = 0;
        for consumer in &consumers {
            let hashes = self.store.status_hashes(consumer).await?;
            let subject = self.subject(consumer).await?;
            sent += self.send_status_resync(consumer, &subject, hashes).await?;
        }
        self.metrics.resync("status_requested");
        tracing::info!(consumers = consumers.len(), messages = sent, "asked agents to resync statuses");
        Ok(sent)
    }

    /// Asks one consumer's agent again for what it has not confirmed (see `confirm.rs`): the
    /// status of each bundle, listed with an empty hash so that any status differs, and for a
    /// bundle being deleted the delete itself (an agent answers a delete of a bundle it no
    /// longer holds with `Deleted`).
    pub async fn ask_again(&self, consumer: &str, bundles: &[Unconfirmed]) -> Result<usize, DispatchError> {
        let subject = self.subject(consumer).await?;
        let mut sent = 0;
        for bundle in bundles.iter().filter(|b| b.deleting) {
            let stored = match self.store.get_bundle(&bundle.id).await {
                Ok(stored) => stored,
                Err(maestro_store::StoreError::NotFound(_)) => continue,
                Err(err) => return Err(err.into()),
            };
            let codecs = &self.codecs;
            let (ack, label) = publish_bundle(&self.link, &self.source, &stored, EventAction::Delete, codecs, &subject)
                .await
                .inspect_err(|e| self.count_encode_failure(e))?;
            ack.wait(self.ack_timeout).await?;
            self.metrics.sent(label);
            sent += 1;
        }
        let hashes = bundles.iter().map(|b| (b.id.clone(), String::new())).collect();
        sent += self.send_status_resync(consumer, &subject, hashes).await?;
        self.metrics.resync("confirm_requested");
        tracing::info!(consumer, bundles = bundles.len(), "asked an agent again for what it has not confirmed");
        Ok(sent)
    }

    /// One consumer's `status.resync_request`, in batches under the limits.
    async fn send_status_resync(
        &self,
        consumer: &str,
        subject: &Subject,
        hashes: Vec<(String, String)>,
    ) -> Result<usize, DispatchError> {
        let hashes: Vec<StatusHash> =
            hashes.into_iter().map(|(resource_id, status_hash)| StatusHash { resource_id, status_hash }).collect();
        let topic = wire::source_events_topic(&self.source, consumer);
        let mut sent = 0;
        for batch in wire::batches(&hashes, self.limits.max_entries, self.limits.max_bytes) {
            let event = wire::status_resync_event(&self.source, consumer, &StatusHashList { status_hashes: batch });
            let message = self.encode(subject, "", wire::encode(&event)).await?;
            self.link.publish(&topic, message).await?.wait(self.ack_timeout).await?;
            self.metrics.sent("status.resync");
            sent += 1;
        }
        Ok(sent)
    }

    /// The consumer as codec policies select it; nothing is read without codecs in force.
    async fn subject(&self, consumer: &str) -> Result<Subject, DispatchError> {
        if !self.codecs.active() {
            return Ok(Subject::default());
        }
        Ok(super::consumer_subject(&self.store, consumer).await?)
    }

    fn count_encode_failure(&self, err: &DispatchError) {
        if matches!(err, DispatchError::Encode { .. }) {
            self.metrics.encode_failures.inc();
        }
    }

    async fn encode(
        &self,
        subject: &Subject,
        resource_id: &str,
        message: wire::MqttMessage,
    ) -> Result<wire::MqttMessage, DispatchError> {
        self.codecs.encode(subject, message).await.map_err(|failure| {
            self.metrics.encode_failures.inc();
            DispatchError::Encode { id: resource_id.to_string(), failure }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::wire::ResourceVersion;

    fn list(entries: &[(&str, i64)]) -> ResourceVersionList {
        ResourceVersionList {
            resource_versions: entries
                .iter()
                .map(|(id, v)| ResourceVersion { resource_id: id.to_string(), resource_version: *v })
                .collect(),
        }
    }

    #[test]
    fn merged_requests_count_a_bundle_held_only_if_every_request_listed_it() {
        let mut held = Held::of(&list(&[("a", 3), ("b", 1)]));
        assert_eq!(held.held_by_all(&held.listed["a"]), Some(3));
        // The agent restarted with nothing: "send me everything" must not be lost in the merge.
        held.add(&list(&[]));
        assert_eq!(held.held_by_all(&held.listed["a"]), None);
        held.add(&list(&[("a", 5)]));
        let a = &held.listed["a"];
        assert_eq!((a.min, a.max), (3, 5), "deletes go at the highest version listed");
    }
}
