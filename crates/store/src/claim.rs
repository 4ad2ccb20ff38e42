//! Claims on the queue tables (`outbox`, `policy_outbox`), so that several hubs on one
//! PostgreSQL database share the work without processing a row twice.
//!
//! On PostgreSQL a claim is a transaction that locks its rows (`FOR UPDATE SKIP LOCKED`: other
//! hubs skip them) and is held while the events are published and acknowledged; completing it
//! deletes the rows and commits. A hub that dies mid-way loses its connection, PostgreSQL rolls
//! the transaction back, and the rows are there for the next claim, another hub's included.
//! SQLite serves one hub, whose single dispatcher reads the rows without locks.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Postgres};

use super::{Db, Store, StoreError, audited};

/// A queue table: its rows are keyed by `seq` and leave only by [`ClaimTx::complete`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Queue {
    Outbox,
    PolicyOutbox,
}

impl Queue {
    fn delete_any(self) -> &'static str {
        match self {
            Queue::Outbox => "DELETE FROM outbox WHERE seq = ANY($1)",
            Queue::PolicyOutbox => "DELETE FROM policy_outbox WHERE seq = ANY($1)",
        }
    }

    fn delete_one(self) -> &'static str {
        match self {
            Queue::Outbox => "DELETE FROM outbox WHERE seq = $1",
            Queue::PolicyOutbox => "DELETE FROM policy_outbox WHERE seq = $1",
        }
    }
}

/// The open claim: PostgreSQL's locking transaction, or nothing on SQLite.
pub(crate) enum ClaimTx {
    Postgres(sqlx::Transaction<'static, Postgres>),
    Sqlite,
}

impl ClaimTx {
    /// Takes up to `limit` of the oldest unclaimed rows that `select` (a constant
    /// `SELECT ... FROM <queue>`) reads; `None` when there are none.
    pub(crate) async fn take<R>(
        store: &Store,
        select: &str,
        limit: i64,
    ) -> Result<Option<(ClaimTx, Vec<R>)>, StoreError>
    where
        R: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
    {
        match &store.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let sql = format!("{select} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED");
                let rows: Vec<R> = sqlx::query_as(audited(&sql)).bind(limit).fetch_all(&mut *tx).await?;
                if rows.is_empty() {
                    let _ = tx.rollback().await;
                    return Ok(None);
                }
                Ok(Some((ClaimTx::Postgres(tx), rows)))
            }
            Db::Sqlite(pool) => {
                let sql = format!("{select} ORDER BY seq LIMIT $1");
                let rows: Vec<R> = sqlx::query_as(audited(&sql)).bind(limit).fetch_all(pool).await?;
                Ok((!rows.is_empty()).then_some((ClaimTx::Sqlite, rows)))
            }
        }
    }

    /// Deletes the rows `seqs` of `queue` (their work is done) and releases the claim.
    pub(crate) async fn complete(self, store: &Store, queue: Queue, seqs: Vec<i64>) -> Result<(), StoreError> {
        match self {
            ClaimTx::Postgres(mut tx) => {
                sqlx::query(queue.delete_any()).bind(&seqs).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            ClaimTx::Sqlite => {
                let _turn = store.write_turn().await;
                let Db::Sqlite(pool) = &store.db else { return Ok(()) };
                let mut tx = pool.begin().await?;
                for seq in seqs {
                    sqlx::query(queue.delete_one()).bind(seq).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Gives the rows back untouched, to be claimed again.
    pub(crate) async fn release(self) {
        if let ClaimTx::Postgres(tx) = self {
            let _ = tx.rollback().await;
        }
    }
}
