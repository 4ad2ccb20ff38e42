//! The outbox: one row for each change of a bundle, written in the change's transaction. The
//! transport drains it in `seq` order; a row leaves only after the broker has acknowledged it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, on_pool};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub resource_id: String,
    pub consumer_name: String,
    pub action: String,
    pub resource_version: i64,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Rows after `after_seq`, oldest first.
    pub async fn outbox_after(&self, after_seq: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = "SELECT seq, resource_id, consumer_name, action, resource_version, created_at \
                   FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, OutboxRow>(sql).bind(after_seq).bind(limit).fetch_all(pool).await)?,
        )
    }
}
