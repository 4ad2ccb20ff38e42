//! Statuses reported by agents, kept in `resource_bundles.status` in the shape
//! `model::resource::status_view` reads: the agent's `conditions` and `resourceStatus` with
//! `ObservedVersion` (the bundle version it describes), `SequenceID` (the agent's, increasing)
//! and `statusHash` (what the hub sends back in a status resync).
//!
//! A status is recorded only if it is about the bundle's current version and newer than the
//! stored one. The write is conditional on the status read, so two hubs recording statuses of
//! one bundle at once cannot put an older one over a newer one.

use serde_json::{Value, json};

use super::bundles::json_arg;
use super::{Store, StoreError, audited, on_pool};

/// What happened to a reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    Recorded,
    /// The agent reported the bundle's objects gone and the bundle was deleting: it is purged.
    Purged,
    /// Dropped; the reason is a fixed phrase (also a metric label).
    Dropped(&'static str),
}

/// One status as an agent reported it.
#[derive(Debug, Clone)]
pub struct ReportedStatus<'a> {
    pub consumer: &'a str,
    pub resource_id: &'a str,
    pub resource_version: i64,
    pub sequence_id: Option<u64>,
    pub status_hash: &'a str,
    pub conditions: &'a [Value],
    pub resource_status: &'a [Value],
    /// The `Deleted` condition is true.
    pub deleted: bool,
}

#[derive(sqlx::FromRow)]
struct Current {
    consumer_name: String,
    version: i64,
    status: Option<String>,
    deleting: bool,
}

const ATTEMPTS: usize = 5;

fn stored_sequence(status: Option<&str>) -> Option<u64> {
    let status: Value = serde_json::from_str(status?).ok()?;
    status.get("SequenceID")?.as_str()?.parse().ok()
}

impl Store {
    /// Records a status if it is current and newer; see the module doc.
    pub async fn record_status(&self, report: &ReportedStatus<'_>) -> Result<StatusOutcome, StoreError> {
        for _ in 0..ATTEMPTS {
            let select = "SELECT consumer_name, version, CAST(status AS TEXT) AS status, \
                          (deleted_at IS NOT NULL) AS deleting FROM resource_bundles WHERE id = $1";
            let current = on_pool!(self, pool => sqlx::query_as::<_, Current>(select)
                .bind(report.resource_id).fetch_optional(pool).await)?;
            let Some(current) = current else { return Ok(StatusOutcome::Dropped("unknown resource")) };
            if current.consumer_name != report.consumer {
                return Ok(StatusOutcome::Dropped("resource of another consumer"));
            }
            if current.version != report.resource_version {
                return Ok(StatusOutcome::Dropped("status of another version"));
            }
            if let (Some(stored), Some(new)) = (stored_sequence(current.status.as_deref()), report.sequence_id)
                && new <= stored
            {
                return Ok(StatusOutcome::Dropped("stale sequence id"));
            }
            if report.deleted && current.deleting {
                return Ok(if self.purge_bundle(report.resource_id).await? {
                    self.announce_status(report.resource_id);
                    StatusOutcome::Purged
                } else {
                    StatusOutcome::Dropped("already purged")
                });
            }
            let status = json!({
                "ObservedVersion": report.resource_version,
                "SequenceID": report.sequence_id.map(|s| s.to_string()),
                "statusHash": report.status_hash,
                "conditions": report.conditions,
                "resourceStatus": report.resource_status,
            })
            .to_string();
            if self.swap_status(report.resource_id, report.resource_version, current.status.as_deref(), &status).await?
            {
                self.announce_status(report.resource_id);
                return Ok(StatusOutcome::Recorded);
            }
        }
        Ok(StatusOutcome::Dropped("status kept changing"))
    }

    /// Writes `status` if the stored one is still `expected`.
    async fn swap_status(
        &self,
        id: &str,
        version: i64,
        expected: Option<&str>,
        status: &str,
    ) -> Result<bool, StoreError> {
        // `None` means no status yet: SQL's `=` never matches NULL, so that case needs its own test.
        let guard = if expected.is_some() { "CAST(status AS TEXT) = $4" } else { "status IS NULL" };
        let sql = format!(
            "UPDATE resource_bundles SET status = {} WHERE id = $2 AND version = $3 AND {guard}",
            json_arg(self.dialect(), 1)
        );
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, pool => {
            let query = sqlx::query(audited(&sql)).bind(status).bind(id).bind(version);
            let query = match expected {
                Some(expected) => query.bind(expected),
                None => query,
            };
            query.execute(pool).await?.rows_affected()
        });
        Ok(changed > 0)
    }

    /// `(resource id, status hash)` of every status recorded for a consumer's bundles.
    pub async fn status_hashes(&self, consumer: &str) -> Result<Vec<(String, String)>, StoreError> {
        let sql = "SELECT id, CAST(status AS TEXT) FROM resource_bundles WHERE consumer_name = $1 AND status IS NOT NULL \
                   ORDER BY id";
        let rows: Vec<(String, Option<String>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(consumer).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, status)| {
                let status: Value = serde_json::from_str(status.as_deref()?).ok()?;
                Some((id, status.get("statusHash")?.as_str()?.to_string()))
            })
            .collect())
    }
}
