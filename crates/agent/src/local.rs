//! The agent's durable local store: an SQLite file per agent (`migrations/agent`).
//!
//! It holds each bundle the agent applied (the spec as received and the objects written), so
//! that after a restart the agent re-applies what it had, asks the hub only for newer versions,
//! and still knows which objects a later update or delete must remove. It is also the agent's
//! outbox: a status is written here before it is published, and removed only once the broker
//! has acknowledged it, so nothing is lost while the broker is away.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Bounds every statement: waiting for the pool, and for SQLite's write lock.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("local store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("local store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("local store holds bad JSON in {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
}

/// An object the agent wrote for a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRef {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// A bundle as the local store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalBundle {
    pub id: String,
    pub version: i64,
    pub original_source: String,
    pub bundle: Value,
    pub deleting: bool,
    pub applied: Vec<AppliedRef>,
}

/// A status waiting for the broker's acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingStatus {
    pub bundle_id: String,
    pub version: i64,
    pub original_source: String,
    pub status: Value,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct LocalStore {
    pool: SqlitePool,
}

impl LocalStore {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub async fn open(path: &Path) -> Result<LocalStore, LocalError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(TIMEOUT);
        let pool = SqlitePoolOptions::new().max_connections(2).acquire_timeout(TIMEOUT).connect_with(options).await?;
        sqlx::migrate!("../../migrations/agent").run(&pool).await?;
        Ok(LocalStore { pool })
    }

    pub async fn bundles(&self) -> Result<Vec<LocalBundle>, LocalError> {
        let rows = sqlx::query(
            "SELECT id, version, original_source, bundle, deleting, applied FROM agent_bundles ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LocalBundle {
                    id: row.try_get("id")?,
                    version: row.try_get("version")?,
                    original_source: row.try_get("original_source")?,
                    bundle: parse(row.try_get("bundle")?, "agent_bundles.bundle")?,
                    deleting: row.try_get::<i64, _>("deleting")? != 0,
                    applied: serde_json::from_str(row.try_get("applied")?)
                        .map_err(|source| LocalError::Json { what: "agent_bundles.applied", source })?,
                })
            })
            .collect()
    }

    /// Inserts or replaces a bundle.
    pub async fn save_bundle(&self, bundle: &LocalBundle) -> Result<(), LocalError> {
        let applied = serde_json::to_string(&bundle.applied).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO agent_bundles (id, version, original_source, bundle, deleting, applied, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, original_source = excluded.original_source,
                bundle = excluded.bundle, deleting = excluded.deleting, applied = excluded.applied,
                updated_at = excluded.updated_at",
        )
        .bind(&bundle.id)
        .bind(bundle.version)
        .bind(&bundle.original_source)
        .bind(bundle.bundle.to_string())
        .bind(i64::from(bundle.deleting))
        .bind(applied)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues a status for publishing, replacing an older one of the same bundle.
    pub async fn queue_status(&self, status: &PendingStatus) -> Result<(), LocalError> {
        queue(&self.pool, status).await
    }

    /// Forgets a deleted bundle and queues its final status, in one transaction: the hub must
    /// learn of the delete even if the agent stops right after.
    pub async fn finish_delete(&self, status: &PendingStatus) -> Result<(), LocalError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM agent_bundles WHERE id = $1").bind(&status.bundle_id).execute(&mut *tx).await?;
        queue(&mut *tx, status).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn pending(&self) -> Result<Vec<PendingStatus>, LocalError> {
        let rows = sqlx::query(
            "SELECT bundle_id, version, original_source, status, hash FROM agent_pending_statuses ORDER BY queued_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingStatus {
                    bundle_id: row.try_get("bundle_id")?,
                    version: row.try_get("version")?,
                    original_source: row.try_get("original_source")?,
                    status: parse(row.try_get("status")?, "agent_pending_statuses.status")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect()
    }

    /// How many statuses wait for the broker's acknowledgement (the agent's `/metrics`).
    pub async fn pending_count(&self) -> Result<i64, LocalError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM agent_pending_statuses").fetch_one(&self.pool).await?)
    }

    /// The broker has this status: drop it, unless a newer one replaced it meanwhile.
    pub async fn acknowledge(&self, bundle_id: &str, hash: &str) -> Result<(), LocalError> {
        sqlx::query("DELETE FROM agent_pending_statuses WHERE bundle_id = $1 AND hash = $2")
            .bind(bundle_id)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn queue<'e, E: sqlx::SqliteExecutor<'e>>(executor: E, status: &PendingStatus) -> Result<(), LocalError> {
    sqlx::query(
        "INSERT INTO agent_pending_statuses (bundle_id, version, original_source, status, hash, queued_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (bundle_id) DO UPDATE SET version = excluded.version, original_source = excluded.original_source,
            status = excluded.status, hash = excluded.hash, queued_at = excluded.queued_at",
    )
    .bind(&status.bundle_id)
    .bind(status.version)
    .bind(&status.original_source)
    .bind(status.status.to_string())
    .bind(&status.hash)
    .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
    .execute(executor)
    .await?;
    Ok(())
}

fn parse(text: String, what: &'static str) -> Result<Value, LocalError> {
    serde_json::from_str(&text).map_err(|source| LocalError::Json { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(id: &str, version: i64) -> LocalBundle {
        LocalBundle {
            id: id.into(),
            version,
            original_source: "maestro".into(),
            bundle: json!({"manifests": [{"kind": "ConfigMap"}]}),
            deleting: false,
            applied: vec![AppliedRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
                namespace: Some("default".into()),
                name: "a".into(),
            }],
        }
    }

    fn status(id: &str, hash: &str) -> PendingStatus {
        PendingStatus {
            bundle_id: id.into(),
            version: 1,
            original_source: "maestro".into(),
            status: json!({"conditions": []}),
            hash: hash.into(),
        }
    }

    #[tokio::test]
    async fn bundles_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let store = LocalStore::open(&path).await.unwrap();
        store.save_bundle(&bundle("b1", 1)).await.unwrap();
        store.save_bundle(&LocalBundle { deleting: true, ..bundle("b1", 2) }).await.unwrap();
        store.close().await;
        let reopened = LocalStore::open(&path).await.unwrap();
        assert_eq!(reopened.bundles().await.unwrap(), vec![LocalBundle { deleting: true, ..bundle("b1", 2) }]);
    }

    #[tokio::test]
    async fn a_status_stays_pending_until_that_very_status_is_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).await.unwrap();
        store.queue_status(&status("b1", "h1")).await.unwrap();
        store.queue_status(&status("b1", "h2")).await.unwrap();
        store.acknowledge("b1", "h1").await.unwrap();
        let pending = store.pending().await.unwrap();
        assert_eq!(pending.iter().map(|p| p.hash.as_str()).collect::<Vec<_>>(), ["h2"]);
        store.acknowledge("b1", "h2").await.unwrap();
        assert!(store.pending().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn finishing_a_delete_forgets_the_bundle_and_queues_its_last_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).await.unwrap();
        store.save_bundle(&bundle("b1", 1)).await.unwrap();
        store.finish_delete(&status("b1", "deleted")).await.unwrap();
        assert!(store.bundles().await.unwrap().is_empty());
        assert_eq!(store.pending().await.unwrap()[0].hash, "deleted");
    }
}
