//! Plugin policies, stored whole as JSON and keyed by name. The plugin runtime keeps the list
//! in memory; these functions are called when the list changes, when the hub starts, and when
//! another hub changed it (`LISTEN maestro_plugin_policies` on PostgreSQL, or a slow poll).

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::consumers::ConsumerRow;
use super::in_transaction;
use super::{Store, StoreError, audited, on_pool, violated_constraint};
use maestro_model::Consumer;
use maestro_model::policy::PolicySpec;

/// A policy as stored, with its timestamps.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub spec: PolicySpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    spec: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PolicyRow> for StoredPolicy {
    type Error = StoreError;
    fn try_from(row: PolicyRow) -> Result<Self, StoreError> {
        Ok(StoredPolicy {
            spec: serde_json::from_str(&row.spec)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Queues a push for every consumer `before` or `after` selects, inside the open transaction
/// `$tx`. Reads the consumers in that transaction, so the set is the one the change saw.
macro_rules! queue_policy_pushes {
    ($tx:ident, $before:expr, $after:expr, $now:expr) => {{
        // Every consumer: the candidates of the policy's selectors.
        let sql = format!("SELECT {} FROM consumers ORDER BY name", $crate::consumers::COLUMNS);
        let rows: Vec<ConsumerRow> = sqlx::query_as($crate::audited(&sql)).fetch_all(&mut *$tx).await?;
        let names = affected(rows, $before, $after)?;
        for name in &names {
            sqlx::query($crate::policy_outbox::INSERT_PUSH)
                .bind(name)
                .bind($crate::policy_outbox::PushReason::Policy.as_str())
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
        names.len()
    }};
}

/// The names of the consumers that `before` or `after` selects.
fn affected(
    rows: Vec<ConsumerRow>,
    before: Option<&PolicySpec>,
    after: Option<&PolicySpec>,
) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for row in rows {
        let consumer = Consumer::try_from(row)?;
        let selects = |policy: Option<&PolicySpec>| policy.is_some_and(|p| p.selector.matches_consumer(&consumer));
        if selects(before) || selects(after) {
            names.push(consumer.name);
        }
    }
    Ok(names)
}

const COLUMNS: &str = "CAST(spec AS TEXT) AS spec, created_at, updated_at";
const SELECT_SPEC: &str = "SELECT CAST(spec AS TEXT) FROM plugin_policies WHERE name = $1";
const DELETE_RETURNING: &str = "DELETE FROM plugin_policies WHERE name = $1 RETURNING CAST(spec AS TEXT)";

impl Store {
    pub async fn list_plugin_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM plugin_policies ORDER BY name");
        let rows = on_pool!(self, pool => sqlx::query_as::<_, PolicyRow>(audited(&sql)).fetch_all(pool).await)?;
        rows.into_iter().map(StoredPolicy::try_from).collect()
    }

    pub async fn get_plugin_policy(&self, name: &str) -> Result<StoredPolicy, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM plugin_policies WHERE name = $1");
        let row = on_pool!(self, pool => sqlx::query_as::<_, PolicyRow>(audited(&sql)).bind(name).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::NotFound(format!("plugin policy '{name}'")))?.try_into()
    }

    /// Stores a new policy and, in the same transaction, queues a policy push for every
    /// consumer it selects.
    pub async fn create_plugin_policy(&self, spec: &PolicySpec) -> Result<StoredPolicy, StoreError> {
        let sql = format!(
            "INSERT INTO plugin_policies (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING {COLUMNS}"
        );
        let now = maestro_model::now();
        let _turn = self.write_turn().await;
        in_transaction!(self, tx => {
            let inserted = sqlx::query_as::<_, PolicyRow>(audited(&sql))
                .bind(&spec.name)
                .bind(Json(spec))
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
            let row = match inserted {
                Ok(row) => row,
                Err(err) if matches!(violated_constraint(&err), Some((sqlx::error::ErrorKind::UniqueViolation, _))) => {
                    return Err(StoreError::Conflict {
                        message: format!("a plugin policy named '{}' already exists", spec.name),
                        current_version: None,
                    });
                }
                Err(err) => return Err(err.into()),
            };
            queue_policy_pushes!(tx, None, Some(spec), now);
            row
        })
        .try_into()
    }

    /// Replaces a policy and, in the same transaction, queues a policy push for every consumer
    /// it selected before or selects now.
    pub async fn replace_plugin_policy(&self, spec: &PolicySpec) -> Result<StoredPolicy, StoreError> {
        let sql = format!("UPDATE plugin_policies SET spec = $2, updated_at = $3 WHERE name = $1 RETURNING {COLUMNS}");
        let now = maestro_model::now();
        let _turn = self.write_turn().await;
        in_transaction!(self, tx => {
            // Unlocked: of two concurrent replaces the later may read the original as `before`.
            // Every consumer selected at the start (both befores) or at the end (the later
            // after) is queued all the same, and each push reads the policies when it is sent.
            let before: Option<String> = sqlx::query_scalar(SELECT_SPEC)
                .bind(&spec.name)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(before) = before else {
                return Err(StoreError::NotFound(format!("plugin policy '{}'", spec.name)));
            };
            let before: PolicySpec = serde_json::from_str(&before)?;
            let row = sqlx::query_as::<_, PolicyRow>(audited(&sql))
                .bind(&spec.name)
                .bind(Json(spec))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            queue_policy_pushes!(tx, Some(&before), Some(spec), now);
            row
        })
        .try_into()
    }

    /// Deletes a policy and, in the same transaction, queues a policy push for every consumer
    /// it selected.
    pub async fn delete_plugin_policy(&self, name: &str) -> Result<(), StoreError> {
        let now = maestro_model::now();
        let _turn = self.write_turn().await;
        in_transaction!(self, tx => {
            let before: Option<String> =
                sqlx::query_scalar(DELETE_RETURNING).bind(name).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(StoreError::NotFound(format!("plugin policy '{name}'")));
            };
            let before: PolicySpec = serde_json::from_str(&before)?;
            queue_policy_pushes!(tx, Some(&before), None, now);
        });
        Ok(())
    }
}
