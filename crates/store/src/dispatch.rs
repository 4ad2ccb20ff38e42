//! Claiming outbox rows for the dispatcher, so that several hubs on one PostgreSQL database
//! share the work without processing a row twice.
//!
//! On PostgreSQL a claim is a transaction that locks its rows (`FOR UPDATE SKIP LOCKED`: other
//! hubs skip them) and is held while the events are published and acknowledged; completing it
//! deletes the rows and commits. A hub that dies mid-way loses its connection, PostgreSQL
//! rolls the transaction back, and the rows are there for the next claim, another hub's
//! included. SQLite serves one hub, whose single dispatcher reads the rows without locks.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Postgres;

use super::bundles::{BundleRow, COLUMNS};
use super::outbox::OutboxRow;
use super::{Db, Store, StoreError, audited, on_pool};
use maestro_model::StoredBundle;

const SELECT_ROWS: &str = "SELECT seq, resource_id, consumer_name, action, resource_version, created_at FROM outbox";

enum ClaimTx {
    Postgres(sqlx::Transaction<'static, Postgres>),
    Sqlite,
}

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
        match self.tx {
            ClaimTx::Postgres(mut tx) => {
                sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)").bind(&seqs).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            ClaimTx::Sqlite => {
                let _turn = store.write_turn().await;
                let Db::Sqlite(pool) = &store.db else { return Ok(()) };
                let mut tx = pool.begin().await?;
                for seq in seqs {
                    sqlx::query("DELETE FROM outbox WHERE seq = $1").bind(seq).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Gives the rows back untouched, to be claimed again.
    pub async fn release(self) {
        if let ClaimTx::Postgres(tx) = self.tx {
            let _ = tx.rollback().await;
        }
    }
}

impl Store {
    /// Claims up to `limit` of the oldest unclaimed outbox rows; `None` when there are none.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Option<OutboxClaim>, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let sql = format!("{SELECT_ROWS} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED");
                let rows: Vec<OutboxRow> = sqlx::query_as(audited(&sql)).bind(limit).fetch_all(&mut *tx).await?;
                if rows.is_empty() {
                    let _ = tx.rollback().await;
                    return Ok(None);
                }
                let mut ids: Vec<&str> = rows.iter().map(|r| r.resource_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                let sql = format!("SELECT {COLUMNS} FROM resource_bundles WHERE id = ANY($1)");
                let bundles: Vec<BundleRow> = sqlx::query_as(audited(&sql)).bind(&ids).fetch_all(&mut *tx).await?;
                Ok(Some(OutboxClaim {
                    tx: ClaimTx::Postgres(tx),
                    rows,
                    bundles: bundles.into_iter().map(StoredBundle::from).collect(),
                }))
            }
            Db::Sqlite(pool) => {
                let sql = format!("{SELECT_ROWS} ORDER BY seq LIMIT $1");
                let rows: Vec<OutboxRow> = sqlx::query_as(audited(&sql)).bind(limit).fetch_all(pool).await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let mut ids: Vec<&str> = rows.iter().map(|r| r.resource_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut bundles = Vec::with_capacity(ids.len());
                for id in ids {
                    match self.get_bundle(id).await {
                        Ok(bundle) => bundles.push(bundle),
                        Err(StoreError::NotFound(_)) => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(Some(OutboxClaim { tx: ClaimTx::Sqlite, rows, bundles }))
            }
        }
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
