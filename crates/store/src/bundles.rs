//! Resource bundles: versioned, optimistic-concurrency updates and two-phase delete, each
//! change written together with its outbox row.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::coalesce::{CreateRow, Outcome};
use super::{ListRequest, ListSql, Page, Store, StoreError, audited, on_pool, schema, violated_constraint};
use maestro_model::{Action, BundleContent, StoredBundle};

/// Which bundles a list endpoint shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleScope {
    /// `/resource-bundles`: every bundle.
    All,
    /// `/resources`: bundles of exactly one manifest, the single-resource view.
    SingleManifest,
}

impl BundleScope {
    fn condition(self) -> Option<&'static str> {
        match self {
            BundleScope::All => None,
            BundleScope::SingleManifest => Some("manifest_count = 1"),
        }
    }
}

/// A bundle as a client creates it; the hub assigns the version and timestamps.
#[derive(Debug, Clone)]
pub struct NewBundle {
    pub id: String,
    pub name: String,
    pub consumer_name: String,
    pub content: BundleContent,
}

#[derive(sqlx::FromRow)]
pub(super) struct BundleRow {
    id: String,
    name: String,
    consumer_name: String,
    version: i64,
    metadata: String,
    manifests: String,
    manifest_count: i64,
    manifest_configs: String,
    delete_option: Option<String>,
    status: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<BundleRow> for StoredBundle {
    fn from(row: BundleRow) -> Self {
        StoredBundle {
            id: row.id,
            name: row.name,
            consumer_name: row.consumer_name,
            version: row.version,
            metadata: row.metadata,
            manifests: row.manifests,
            manifest_count: row.manifest_count,
            manifest_configs: row.manifest_configs,
            delete_option: row.delete_option,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

pub(super) const COLUMNS: &str = "id, name, consumer_name, version, CAST(metadata AS TEXT) AS metadata, \
    CAST(manifests AS TEXT) AS manifests, manifest_count, CAST(manifest_configs AS TEXT) AS manifest_configs, \
    CAST(delete_option AS TEXT) AS delete_option, CAST(status AS TEXT) AS status, created_at, updated_at, deleted_at";

const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (resource_id, consumer_name, action, resource_version, created_at) VALUES ($1, $2, $3, $4, $5)";

/// Runs a bundle statement (`INSERT`/`UPDATE ... RETURNING {COLUMNS}`) together with the
/// outbox row for `action`, atomically, and yields the changed row if there was one.
///
/// On PostgreSQL both writes are one statement (a data-modifying CTE): one round trip instead
/// of four (BEGIN, two INSERTs, COMMIT), which is what bounds the create rate. SQLite runs in
/// the process, where round trips cost nothing, and uses a transaction.
macro_rules! change_with_outbox {
    ($store:expr, $sql:expr, $action:expr, |$query:ident| $bound:expr) => {{
        let sql: &str = $sql;
        let action: Action = $action;
        match &$store.db {
            super::Db::Postgres(pool) => {
                let statement = with_outbox_row(sql, action);
                let $query = sqlx::query_as::<_, BundleRow>(audited(&statement));
                $bound.fetch_optional(pool).await
            }
            super::Db::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    let $query = sqlx::query_as::<_, BundleRow>(audited(sql));
                    let row = $bound.fetch_optional(&mut *tx).await?;
                    if let Some(row) = &row {
                        sqlx::query(INSERT_OUTBOX)
                            .bind(&row.id)
                            .bind(&row.consumer_name)
                            .bind(action.as_str())
                            .bind(row.version)
                            .bind(row.updated_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(row)
                }
                .await
            }
        }
    }};
}

/// Wraps a bundle statement so that PostgreSQL also writes its outbox row. The action is one of
/// our own constants, never client text; the row's `updated_at` is the time of the change.
fn with_outbox_row(statement: &str, action: Action) -> String {
    format!(
        "WITH changed AS ({statement}), queued AS (INSERT INTO outbox (resource_id, consumer_name, action, \
         resource_version, created_at) SELECT id, consumer_name, '{}', version, updated_at FROM changed) \
         SELECT * FROM changed",
        action.as_str()
    )
}

/// Binds a bundle's content in the order both the INSERT and the UPDATE list its columns:
/// metadata, labels, manifests, manifest_count, manifest_configs, delete_option, the time of
/// the change, manifest_labels.
macro_rules! bind_content {
    ($query:expr, $text:expr, $content:expr, $now:expr) => {
        $query
            .bind(&$text.metadata)
            .bind(Json($content.labels()))
            .bind(&$text.manifests)
            .bind($content.manifests.len() as i64)
            .bind(&$text.manifest_configs)
            .bind(&$text.delete_option)
            .bind($now)
            .bind(Json($content.manifest_labels()))
    };
}

/// The client's JSON as the text that is stored, serialized once per write.
///
/// It is bound as text and, on PostgreSQL, cast to `json` in the statement ([`json_arg`]): the
/// column then keeps exactly this text. Binding it as `jsonb`, as sqlx does for `Json<T>`, made
/// PostgreSQL parse every manifest into jsonb and print it back, reordering its keys.
struct ContentText {
    metadata: String,
    manifests: String,
    manifest_configs: String,
    delete_option: Option<String>,
}

impl ContentText {
    fn of(content: &BundleContent) -> Result<ContentText, serde_json::Error> {
        Ok(ContentText {
            metadata: serde_json::to_string(&content.metadata)?,
            manifests: serde_json::to_string(&content.manifests)?,
            manifest_configs: serde_json::to_string(&content.manifest_configs)?,
            delete_option: content.delete_option.as_ref().map(serde_json::to_string).transpose()?,
        })
    }
}

/// Placeholder `$n` for a `json` column: PostgreSQL needs the text cast, SQLite stores text as is
/// (and would turn `CAST(... AS JSON)` into a number).
pub(super) fn json_arg(dialect: maestro_search::Dialect, n: usize) -> String {
    match dialect {
        maestro_search::Dialect::Postgres => format!("CAST(${n} AS JSON)"),
        maestro_search::Dialect::Sqlite => format!("${n}"),
    }
}

impl Store {
    /// Stores a new bundle at version 1 and queues its create event.
    ///
    /// On PostgreSQL the row goes through the write coalescer (`coalesce.rs`), which writes
    /// concurrent creates as one statement. Either way the answer is built from what was sent:
    /// the database adds nothing to a new bundle that the hub does not already know.
    pub async fn create_bundle(&self, new: &NewBundle) -> Result<StoredBundle, StoreError> {
        let now = maestro_model::now();
        let text = ContentText::of(&new.content)?;
        if let Some(coalescer) = &self.creates {
            match coalescer.create(create_row(new, &text, now)?).await {
                Outcome::Written => {
                    // Coalesced writes take no write turn, so they wake this hub's dispatcher here.
                    self.outbox_written.notify_one();
                    return Ok(created(new, text, now));
                }
                Outcome::Failed(reason) => return Err(StoreError::Database(sqlx::Error::Protocol(reason))),
                // A row of its batch was refused, maybe this one: written alone, it gets its own answer.
                Outcome::RetryAlone => {}
            }
        }
        self.create_one(new, text, now).await
    }

    async fn create_one(
        &self,
        new: &NewBundle,
        text: ContentText,
        now: DateTime<Utc>,
    ) -> Result<StoredBundle, StoreError> {
        let content = &new.content;
        let json = |n| json_arg(self.dialect(), n);
        let insert = format!(
            "INSERT INTO resource_bundles (id, name, consumer_name, version, metadata, labels, manifests, manifest_count, \
             manifest_configs, delete_option, status, created_at, updated_at, manifest_labels) \
             VALUES ($1, $2, $3, 1, {}, $5, {}, $7, {}, {}, NULL, $10, $10, $11) RETURNING {COLUMNS}",
            json(4),
            json(6),
            json(8),
            json(9)
        );
        let _turn = self.write_turn().await;
        let created = change_with_outbox!(self, &insert, Action::Create, |query| bind_content!(
            query.bind(&new.id).bind(&new.name).bind(&new.consumer_name),
            text,
            content,
            now
        ))
        .and_then(|row| row.ok_or(sqlx::Error::RowNotFound));
        created.map(StoredBundle::from).map_err(|err| create_error(err, new))
    }

    pub async fn get_bundle(&self, id: &str) -> Result<StoredBundle, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resource_bundles WHERE id = $1");
        let row =
            on_pool!(self, pool => sqlx::query_as::<_, BundleRow>(audited(&sql)).bind(id).fetch_optional(pool).await)?;
        row.map(StoredBundle::from).ok_or_else(|| StoreError::NotFound(format!("resource bundle '{id}'")))
    }

    pub async fn list_bundles(
        &self,
        request: &ListRequest,
        scope: BundleScope,
    ) -> Result<Page<StoredBundle>, StoreError> {
        let schema = match scope {
            BundleScope::All => &schema::BUNDLES,
            BundleScope::SingleManifest => &schema::RESOURCES,
        };
        let list = ListSql::compile(request, schema, self.dialect(), scope.condition())?;
        let (rows, total) = self.list_page::<BundleRow>("resource_bundles", COLUMNS, request, &list).await?;
        Ok(Page { page: request.page, total, items: rows.into_iter().map(StoredBundle::from).collect() })
    }

    /// Replaces a bundle's content if the client read the version that is stored now.
    ///
    /// `current` is the bundle as the caller just read it. Content equal to it changes nothing:
    /// the version stays and no event is queued, so clients that re-apply the same thing do not
    /// make agents work. The write itself is conditional on `expected_version`, so a change
    /// made since `current` was read is never overwritten.
    pub async fn replace_bundle(
        &self,
        current: &StoredBundle,
        expected_version: i64,
        content: &BundleContent,
    ) -> Result<StoredBundle, StoreError> {
        check_writable(current, expected_version)?;
        if current.content()? == *content {
            return Ok(current.clone());
        }
        let id = current.id.as_str();
        let now = maestro_model::now();
        let text = ContentText::of(content)?;
        let json = |n| json_arg(self.dialect(), n);
        let update = format!(
            "UPDATE resource_bundles SET version = version + 1, metadata = {}, labels = $4, manifests = {}, \
             manifest_count = $6, manifest_configs = {}, delete_option = {}, updated_at = $9, manifest_labels = $10 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL RETURNING {COLUMNS}",
            json(3),
            json(5),
            json(7),
            json(8)
        );
        let _turn = self.write_turn().await;
        let updated = change_with_outbox!(self, &update, Action::Update, |query| bind_content!(
            query.bind(id).bind(expected_version),
            text,
            content,
            now
        ))?;
        match updated {
            Some(row) => Ok(row.into()),
            // Someone else wrote between our read and our update: tell the client what is there now.
            None => {
                let now_stored = self.get_bundle(id).await?;
                check_writable(&now_stored, expected_version)?;
                Err(conflict_on_version(&now_stored, expected_version))
            }
        }
    }

    /// First phase of a delete: marks the bundle deleting and queues the delete event. The row
    /// stays, visible with `deleted_at`, until its agent confirms ([`Store::purge_bundle`]).
    /// Deleting a bundle that is already deleting changes nothing.
    pub async fn mark_bundle_deleting(&self, id: &str) -> Result<StoredBundle, StoreError> {
        let now = maestro_model::now();
        let update = format!(
            "UPDATE resource_bundles SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
        );
        let _turn = self.write_turn().await;
        let marked = change_with_outbox!(self, &update, Action::Delete, |query| query.bind(id).bind(now))?;
        match marked {
            Some(row) => Ok(row.into()),
            None => self.get_bundle(id).await,
        }
    }

    /// A force delete: the bundle leaves the store now, deleting or not, without its agent's
    /// confirmation, and a delete event is queued in the same statement, so a connected agent
    /// still deletes the objects (one that comes back later learns it from its resync).
    pub async fn force_delete_bundle(&self, id: &str) -> Result<StoredBundle, StoreError> {
        let delete = format!("DELETE FROM resource_bundles WHERE id = $1 RETURNING {COLUMNS}");
        let _turn = self.write_turn().await;
        let removed = change_with_outbox!(self, &delete, Action::Delete, |query| query.bind(id))?;
        removed.map(StoredBundle::from).ok_or_else(|| StoreError::NotFound(format!("resource bundle '{id}'")))
    }

    /// Ids of bundles marked deleting before `before` (oldest first, at most `limit`): deletes
    /// no agent has confirmed for that long.
    pub async fn stale_deletes(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT id FROM resource_bundles WHERE deleted_at IS NOT NULL AND deleted_at < $1 \
                   ORDER BY deleted_at LIMIT $2";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql).bind(before).bind(limit).fetch_all(pool).await)?)
    }

    /// Ids of every bundle of a consumer, deleting or not.
    pub async fn bundle_ids_of(&self, consumer_name: &str) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT id FROM resource_bundles WHERE consumer_name = $1 ORDER BY id";
        Ok(on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql).bind(consumer_name).fetch_all(pool).await)?)
    }

    /// Second phase of a delete, once the agent reports the bundle's objects gone. Only a
    /// bundle marked deleting can be purged, so a late or forged report cannot remove a live one.
    pub async fn purge_bundle(&self, id: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM resource_bundles WHERE id = $1 AND deleted_at IS NOT NULL";
        let _turn = self.write_turn().await;
        let result = on_pool!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(result > 0)
    }
}

fn create_row(new: &NewBundle, text: &ContentText, at: DateTime<Utc>) -> Result<CreateRow, serde_json::Error> {
    Ok(CreateRow {
        id: new.id.clone(),
        name: new.name.clone(),
        consumer_name: new.consumer_name.clone(),
        metadata: text.metadata.clone(),
        labels: serde_json::to_string(&new.content.labels())?,
        manifests: text.manifests.clone(),
        manifest_count: new.content.manifests.len() as i64,
        manifest_configs: text.manifest_configs.clone(),
        delete_option: text.delete_option.clone(),
        manifest_labels: serde_json::to_string(&new.content.manifest_labels())?,
        at,
    })
}

/// A new bundle as stored: exactly what was sent, at version 1.
fn created(new: &NewBundle, text: ContentText, at: DateTime<Utc>) -> StoredBundle {
    StoredBundle {
        id: new.id.clone(),
        name: new.name.clone(),
        consumer_name: new.consumer_name.clone(),
        version: 1,
        metadata: text.metadata,
        manifests: text.manifests,
        manifest_count: new.content.manifests.len() as i64,
        manifest_configs: text.manifest_configs,
        delete_option: text.delete_option,
        status: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

fn check_writable(bundle: &StoredBundle, expected_version: i64) -> Result<(), StoreError> {
    if bundle.is_deleting() {
        return Err(StoreError::Conflict {
            message: format!("resource bundle '{}' is being deleted and cannot be changed", bundle.id),
            current_version: Some(bundle.version),
        });
    }
    if bundle.version != expected_version {
        return Err(conflict_on_version(bundle, expected_version));
    }
    Ok(())
}

fn conflict_on_version(bundle: &StoredBundle, expected_version: i64) -> StoreError {
    StoreError::Conflict {
        message: format!(
            "resource bundle '{}' is at version {}, not {expected_version}; read it again and retry",
            bundle.id, bundle.version
        ),
        current_version: Some(bundle.version),
    }
}

fn create_error(err: sqlx::Error, new: &NewBundle) -> StoreError {
    use sqlx::error::ErrorKind;
    match violated_constraint(&err) {
        Some((ErrorKind::ForeignKeyViolation, _)) => StoreError::Invalid {
            field: "consumer_name".into(),
            message: format!("consumer '{}' does not exist", new.consumer_name),
        },
        Some((ErrorKind::UniqueViolation, constraint))
            if constraint.contains("pkey") || constraint.ends_with(".id") =>
        {
            StoreError::Conflict {
                message: format!("a resource bundle with id '{}' already exists", new.id),
                current_version: None,
            }
        }
        Some((ErrorKind::UniqueViolation, _)) => StoreError::Conflict {
            message: format!("consumer '{}' already has a resource bundle named '{}'", new.consumer_name, new.name),
            current_version: None,
        },
        _ => err.into(),
    }
}
