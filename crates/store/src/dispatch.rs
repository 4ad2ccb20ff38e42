//! Claiming outbox rows for the dispatcher (see `claim.rs` for how a claim shares the work
//! between hubs), and the reads resyncs and metrics make of the outbox.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::bundles::{BundleRow, COLUMNS};
use super::claim::{ClaimTx, Queue};
use super::outbox::OutboxRow;
use super::{Store, StoreError, audited, on_pool};
use maestro_model::StoredBundle;

const SELECT_ROWS: &str = "SELECT seq, resource_id, consumer_name, action, resource_version, created_at FROM outbox";

/// Outbox rows taken by this hub, with the current state of the bundles they name.
pub struct OutboxClaim {
    tx: ClaimTx,
    pub rows: Vec<OutboxRow>,
    /// The bundles as stored now, one per resource id; purged ones are absent.
    pub bundles: Vec<StoredBundle>,
}

/// How much is waiting to go out, for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxStats {
    pub depth: i64,
    pub oldest: Option<DateTime<Utc>>,
}

impl OutboxClaim {
    pub fn seqs(&self) -> Vec<i64> {
        self.rows.iter().map(|r| r.seq).collect()
    }

    /// The rows are done (every event acknowledged): delete them and release the claim.
    pub async fn complete(self, store: &Store) -> Result<(), StoreError> {
        self.complete_except(store, &HashSet::new()).await
    }

    /// Deletes the rows of every bundle but those `held` (not sent), whose rows stay queued
    /// for a later claim, and releases the claim.
    pub async fn complete_except(self, store: &Store, held: &HashSet<String>) -> Result<(), StoreError> {
        let seqs: Vec<i64> = self.rows.iter().filter(|r| !held.contains(&r.resource_id)).map(|r| r.seq).collect();
        self.tx.complete(store, Queue::Outbox, seqs).await
    }

    /// Gives the rows back untouched, to be claimed again.
    pub async fn release(self) {
        self.tx.release().await;
    }
}

impl Store {
    /// Claims up to `limit` of the oldest unclaimed outbox rows, with the current state of the
    /// bundles they name (read in the claim's transaction on PostgreSQL); `None` when there are
    /// none.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Option<OutboxClaim>, StoreError> {
        let Some((mut tx, rows)) = ClaimTx::take::<OutboxRow>(self, SELECT_ROWS, limit).await? else { return Ok(None) };
        let mut ids: Vec<&str> = rows.iter().map(|r| r.resource_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let bundles = match &mut tx {
            ClaimTx::Postgres(pg) => {
                let sql = format!("SELECT {COLUMNS} FROM resource_bundles WHERE id = ANY($1)");
                let found: Vec<BundleRow> = sqlx::query_as(audited(&sql)).bind(&ids).fetch_all(&mut **pg).await?;
                found.into_iter().map(StoredBundle::from).collect()
            }
            ClaimTx::Sqlite => {
                let mut found = Vec::with_capacity(ids.len());
                for id in ids {
                    match self.get_bundle(id).await {
                        Ok(bundle) => found.push(bundle),
                        Err(StoreError::NotFound(_)) => {}
                        Err(err) => return Err(err),
                    }
                }
                found
            }
        };
        Ok(Some(OutboxClaim { tx, rows, bundles }))
    }

    /// Rows waiting and the time of the oldest.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let sql = "SELECT COUNT(*), MIN(created_at) FROM outbox";
        let (depth, oldest): (i64, Option<DateTime<Utc>>) =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(OutboxStats { depth, oldest })
    }

    /// Every bundle of a consumer, deleting ones included: what a resync compares against.
    pub async fn consumer_bundles(&self, consumer: &str) -> Result<Vec<StoredBundle>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resource_bundles WHERE consumer_name = $1 ORDER BY created_at, id");
        let rows =
            on_pool!(self, pool => sqlx::query_as::<_, BundleRow>(audited(&sql)).bind(consumer).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(StoredBundle::from).collect())
    }

    /// Names of every consumer.
    pub async fn consumer_names(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT name FROM consumers ORDER BY name";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await)?)
    }

    pub async fn consumer_exists(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) FROM consumers WHERE name = $1";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(name).fetch_one(pool).await)?;
        Ok(count > 0)
    }
}
