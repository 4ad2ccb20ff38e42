//! Consumers: the clusters bundles are addressed to.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::in_transaction;
use super::policy_outbox::{INSERT_PUSH, PushReason};
use super::{ListRequest, ListSql, Page, Store, StoreError, audited, on_pool, schema, violated_constraint};
use maestro_model::Consumer;

#[derive(sqlx::FromRow)]
pub(crate) struct ConsumerRow {
    id: String,
    name: String,
    labels: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ConsumerRow> for Consumer {
    type Error = StoreError;
    fn try_from(row: ConsumerRow) -> Result<Self, StoreError> {
        Ok(Consumer {
            id: row.id,
            name: row.name,
            labels: serde_json::from_str(&row.labels)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) const COLUMNS: &str = "id, name, CAST(labels AS TEXT) AS labels, created_at, updated_at";

impl Store {
    pub async fn create_consumer(
        &self,
        id: &str,
        name: &str,
        labels: &Map<String, Value>,
    ) -> Result<Consumer, StoreError> {
        let now = maestro_model::now();
        let sql = format!(
            "INSERT INTO consumers (id, name, labels, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}"
        );
        let _turn = self.write_turn().await;
        let inserted = on_pool!(self, pool => {
            sqlx::query_as::<_, ConsumerRow>(audited(&sql)).bind(id).bind(name).bind(Json(labels)).bind(now).fetch_one(pool).await
        });
        match inserted {
            Ok(row) => row.try_into(),
            Err(err) => match violated_constraint(&err) {
                Some((sqlx::error::ErrorKind::UniqueViolation, constraint)) => {
                    let what =
                        if constraint.contains("name") { format!("name '{name}'") } else { format!("id '{id}'") };
                    Err(StoreError::Conflict {
                        message: format!("a consumer with {what} already exists"),
                        current_version: None,
                    })
                }
                _ => Err(err.into()),
            },
        }
    }

    /// Finds a consumer by id or, failing that, by name: people type names, clients keep ids.
    pub async fn get_consumer(&self, id_or_name: &str) -> Result<Consumer, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM consumers WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, ConsumerRow>(audited(&sql)).bind(id_or_name).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::NotFound(format!("consumer '{id_or_name}'")))?.try_into()
    }

    pub async fn list_consumers(&self, request: &ListRequest) -> Result<Page<Consumer>, StoreError> {
        let list = ListSql::compile(request, &schema::CONSUMERS, self.dialect(), None)?;
        let (rows, total) = self.list_page::<ConsumerRow>("consumers", COLUMNS, request, &list).await?;
        let items = rows.into_iter().map(Consumer::try_from).collect::<Result<_, _>>()?;
        Ok(Page { page: request.page, total, items })
    }

    /// Replaces a consumer's labels (the PATCH of Maestro's API). When they change, a policy
    /// push for the consumer is queued in the same transaction: its agent's plugins see the
    /// labels, and label selectors may now pick other policies.
    pub async fn set_consumer_labels(
        &self,
        id_or_name: &str,
        labels: &Map<String, Value>,
    ) -> Result<Consumer, StoreError> {
        let consumer = self.get_consumer(id_or_name).await?;
        let sql = format!("UPDATE consumers SET labels = $2, updated_at = $3 WHERE id = $1 RETURNING {COLUMNS}");
        let now = maestro_model::now();
        let _turn = self.write_turn().await;
        let row = in_transaction!(self, tx => {
            let row = sqlx::query_as::<_, ConsumerRow>(audited(&sql))
                .bind(&consumer.id)
                .bind(Json(labels))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() && &consumer.labels != labels {
                sqlx::query(INSERT_PUSH)
                    .bind(&consumer.name)
                    .bind(PushReason::Labels.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            row
        });
        row.ok_or_else(|| StoreError::NotFound(format!("consumer '{id_or_name}'")))?.try_into()
    }

    /// Deletes a consumer that has no bundles left, deleting ones included: their agent still
    /// has to confirm, and it can only do so while its consumer exists.
    pub async fn delete_consumer(&self, id_or_name: &str) -> Result<(), StoreError> {
        let consumer = self.get_consumer(id_or_name).await?;
        let bundles = self.count_bundles_of(&consumer.name).await?;
        if bundles > 0 {
            return Err(StoreError::Conflict {
                message: format!(
                    "consumer '{}' still has {bundles} resource bundle(s); delete them and wait for their agent to confirm",
                    consumer.name
                ),
                current_version: None,
            });
        }
        let _turn = self.write_turn().await;
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM consumers WHERE id = $1").bind(&consumer.id).execute(pool).await.map(|_| ()));
        match deleted {
            Ok(_) => Ok(()),
            // A bundle created between the count and the delete: the foreign key refuses.
            Err(err) if matches!(violated_constraint(&err), Some((sqlx::error::ErrorKind::ForeignKeyViolation, _))) => {
                Err(StoreError::Conflict {
                    message: format!("consumer '{}' still has resource bundles", consumer.name),
                    current_version: None,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn count_bundles_of(&self, consumer_name: &str) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM resource_bundles WHERE consumer_name = $1";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).bind(consumer_name).fetch_one(pool).await)?)
    }
}
