//! Statuses reported by agents, kept in `resource_bundles.status` in the shape
//! `model::resource::status_view` reads: the agent's `conditions` and `resourceStatus` with
//! `ObservedVersion` (the bundle version it describes), `SequenceID` (the agent's, increasing)
//! and `statusHash` (what the hub sends back in a status resync).
//!
//! A status is recorded only if it is about the bundle's current version and newer than the
//! stored one. The write is conditional on the status read, so two hubs recording statuses of
//! one bundle at once cannot put an older one over a newer one.
//!
//! Ordering data comes from agents and must never freeze a bundle:
//! - statuses are ordered within one bundle version; the first status of a new version is
//!   newer than anything stored for an older one;
//! - a sequence id is wall-clock milliseconds `<< 22`; what one may claim is bounded by the
//!   hub's clock plus [`SEQUENCE_AHEAD`], and the stored id is clamped there. A forged
//!   `2^63-1`, or an agent whose clock ran ahead and was then set back, therefore delays that
//!   bundle's later statuses by at most [`SEQUENCE_AHEAD`]; the price is that an agent more
//!   than that ahead loses the order of two statuses that reach the hub out of order;
//! - a status without a sequence id is older than any with one (of the same version);
//! - a `Deleted` status of the current version of a deleting bundle purges it whatever its
//!   sequence id: the objects are gone, and a consumer must not stay undeletable over ordering.

use chrono::{DateTime, Utc};
use maestro_search::Dialect;
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

/// A bundle whose latest change its agent has not confirmed ([`Store::unconfirmed`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Unconfirmed {
    pub id: String,
    pub consumer_name: String,
    /// Marked deleting: what is unconfirmed is the delete.
    pub deleting: bool,
}

#[derive(sqlx::FromRow)]
struct Current {
    consumer_name: String,
    version: i64,
    status: Option<String>,
    deleting: bool,
}

const ATTEMPTS: usize = 5;

/// How far ahead of the hub's clock a sequence id may claim to be (see the module doc).
pub const SEQUENCE_AHEAD: std::time::Duration = std::time::Duration::from_secs(30);

/// The low bits of a sequence id that are not milliseconds.
const SEQUENCE_SHIFT: u32 = 22;

/// The largest sequence id a status may carry when received at `now_ms` (the hub's clock).
fn sequence_ceiling(now_ms: i64) -> u64 {
    let ahead = u64::try_from(SEQUENCE_AHEAD.as_millis()).unwrap_or(u64::MAX);
    let ms = u64::try_from(now_ms).unwrap_or(0).saturating_add(ahead);
    ms.checked_shl(SEQUENCE_SHIFT)
        .filter(|v| v >> SEQUENCE_SHIFT == ms)
        .map_or(u64::MAX, |v| v | ((1 << SEQUENCE_SHIFT) - 1))
}

/// The order of the stored status: the version it describes and its (clamped) sequence id.
struct StoredOrder {
    version: Option<i64>,
    sequence: Option<u64>,
}

fn stored_order(status: Option<&str>) -> Option<StoredOrder> {
    let status: Value = serde_json::from_str(status?).ok()?;
    Some(StoredOrder {
        version: status.get("ObservedVersion").and_then(Value::as_i64),
        sequence: status.get("SequenceID").and_then(Value::as_str).and_then(|s| s.parse().ok()),
    })
}

/// Whether a status of `version` with `sequence` comes after the stored one.
fn comes_after(stored: Option<&StoredOrder>, version: i64, sequence: Option<u64>) -> bool {
    let Some(stored) = stored.filter(|s| s.version == Some(version)) else { return true };
    match (stored.sequence, sequence) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(old), Some(new)) => new > old,
    }
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
            if report.deleted && current.deleting {
                return Ok(if self.purge_bundle(report.resource_id).await? {
                    self.announce_status(report.resource_id);
                    StatusOutcome::Purged
                } else {
                    StatusOutcome::Dropped("already purged")
                });
            }
            let stored = stored_order(current.status.as_deref());
            let ceiling = sequence_ceiling(chrono::Utc::now().timestamp_millis());
            let sequence = report.sequence_id.map(|s| s.min(ceiling));
            if !comes_after(stored.as_ref(), report.resource_version, sequence) {
                return Ok(StatusOutcome::Dropped("stale sequence id"));
            }
            let status = json!({
                "ObservedVersion": report.resource_version,
                "SequenceID": sequence.map(|s| s.to_string()),
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

    /// `(resource id, status hash)` of every bundle of a consumer; the hash is empty where no
    /// status is recorded, so that an agent holding the bundle sends one (agents, as OCM's do,
    /// answer a status resync only for the bundles it lists).
    pub async fn status_hashes(&self, consumer: &str) -> Result<Vec<(String, String)>, StoreError> {
        let sql = "SELECT id, CAST(status AS TEXT) FROM resource_bundles WHERE consumer_name = $1 ORDER BY id";
        let rows: Vec<(String, Option<String>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(consumer).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, status)| {
                let hash = status
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                    .and_then(|s| s.get("statusHash")?.as_str().map(str::to_string));
                (id, hash.unwrap_or_default())
            })
            .collect())
    }

    /// Bundles changed before `before` whose agent has not confirmed the change: no status of
    /// their current version recorded, or a delete not confirmed (oldest change first, at most
    /// `limit`). What the hub asks again for, in case an answer was lost on the way.
    pub async fn unconfirmed(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<Unconfirmed>, StoreError> {
        let observed = match self.dialect() {
            Dialect::Postgres => "CAST(status->>'ObservedVersion' AS BIGINT)",
            Dialect::Sqlite => "CAST(json_extract(status, '$.ObservedVersion') AS INTEGER)",
        };
        let sql = format!(
            "SELECT id, consumer_name, (deleted_at IS NOT NULL) AS deleting FROM resource_bundles \
             WHERE updated_at < $1 AND (deleted_at IS NOT NULL OR status IS NULL \
             OR {observed} IS NULL OR {observed} <> version) ORDER BY updated_at LIMIT $2"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, Unconfirmed>(audited(&sql)).bind(before).bind(limit).fetch_all(pool).await)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64, sequence: Option<u64>) -> StoredOrder {
        StoredOrder { version: Some(version), sequence }
    }

    #[test]
    fn statuses_are_ordered_within_a_version_and_a_new_version_starts_afresh() {
        assert!(comes_after(None, 1, Some(5)));
        assert!(comes_after(Some(&stored(1, Some(5))), 1, Some(6)));
        assert!(!comes_after(Some(&stored(1, Some(5))), 1, Some(5)));
        assert!(!comes_after(Some(&stored(1, Some(u64::MAX))), 1, Some(6)));
        assert!(comes_after(Some(&stored(1, Some(u64::MAX))), 2, Some(6)), "a new version resets the order");
    }

    #[test]
    fn a_status_without_a_sequence_id_never_replaces_one_with_it() {
        assert!(!comes_after(Some(&stored(1, Some(5))), 1, None));
        assert!(comes_after(Some(&stored(1, None)), 1, None));
        assert!(comes_after(Some(&stored(1, None)), 1, Some(1)));
        assert!(comes_after(Some(&stored(1, Some(5))), 2, None));
    }

    #[test]
    fn a_sequence_id_claims_at_most_the_hubs_clock_plus_the_allowance() {
        let now_ms = 1_780_000_000_000;
        let ceiling = sequence_ceiling(now_ms);
        let allowance = SEQUENCE_AHEAD.as_millis() as u64;
        assert_eq!(ceiling >> SEQUENCE_SHIFT, now_ms as u64 + allowance);
        assert!(((now_ms as u64 + allowance) << SEQUENCE_SHIFT) <= ceiling);
        assert!(((now_ms as u64 + allowance + 1) << SEQUENCE_SHIFT) > ceiling);
        assert_eq!(sequence_ceiling(i64::MAX), u64::MAX, "no overflow");
    }
}
