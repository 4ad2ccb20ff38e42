//! The policy outbox: which consumers' agents are due their plugin policies again.
//!
//! A policy change (create, replace, delete) queues a row for every consumer the policy matched
//! before or matches after; a change of a consumer's labels queues one for that consumer. The
//! rows are written in the transaction of the change, like a bundle's outbox row, so a change
//! the API acknowledged is pushed even if its hub dies right after answering. The transport's
//! dispatcher claims them (`FOR UPDATE SKIP LOCKED` on PostgreSQL), sends each consumer one
//! update read from the database at that moment, and deletes the rows once the broker has
//! acknowledged it. Several rows for one consumer become one update.

use chrono::{DateTime, Utc};

use super::claim::{ClaimTx, Queue};
use super::{Store, StoreError};

/// Why a consumer's agent is due its policies again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushReason {
    /// A policy that matched it before or matches it now was created, replaced or deleted.
    Policy,
    /// Its labels changed: plugins see them, and label selectors may now pick other policies.
    Labels,
}

impl PushReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PushReason::Policy => "policy",
            PushReason::Labels => "labels",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PolicyPushRow {
    pub seq: i64,
    pub consumer_name: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

pub(crate) const INSERT_PUSH: &str =
    "INSERT INTO policy_outbox (consumer_name, reason, created_at) VALUES ($1, $2, $3)";

/// Policy-outbox rows taken by this hub; [`PolicyPushClaim::consumers`] names each consumer once.
pub struct PolicyPushClaim {
    tx: ClaimTx,
    pub rows: Vec<PolicyPushRow>,
}

impl PolicyPushClaim {
    /// The consumers to send an update to, each once, in the order first queued.
    pub fn consumers(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.rows.iter().filter(|r| seen.insert(r.consumer_name.as_str())).map(|r| r.consumer_name.clone()).collect()
    }

    /// Every update was acknowledged: delete the rows and release the claim.
    pub async fn complete(self, store: &Store) -> Result<(), StoreError> {
        let seqs = self.rows.iter().map(|r| r.seq).collect();
        self.tx.complete(store, Queue::PolicyOutbox, seqs).await
    }

    /// Gives the rows back untouched, to be claimed again.
    pub async fn release(self) {
        self.tx.release().await;
    }
}

const SELECT_PUSHES: &str = "SELECT seq, consumer_name, reason, created_at FROM policy_outbox";

impl Store {
    /// Claims up to `limit` of the oldest unclaimed policy pushes; `None` when there are none.
    pub async fn claim_policy_pushes(&self, limit: i64) -> Result<Option<PolicyPushClaim>, StoreError> {
        let claimed = ClaimTx::take::<PolicyPushRow>(self, SELECT_PUSHES, limit).await?;
        Ok(claimed.map(|(tx, rows)| PolicyPushClaim { tx, rows }))
    }

    /// Policy pushes waiting (for the metrics and tests).
    pub async fn policy_pushes_queued(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM policy_outbox";
        Ok(super::on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }
}
