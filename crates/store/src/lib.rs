//! Where the hub's state lives: PostgreSQL in production, an SQLite file as the zero-setup
//! default. One implementation serves both: queries are written once in SQL both accept
//! (`$N` placeholders, `RETURNING`, `CAST(json AS TEXT)`), and only the migrations and the
//! search compiler know the dialect.
//!
//! Invariant: every change to a bundle writes an [`outbox`] row in the same transaction, so
//! the transport can never miss a change and never sees one that was rolled back.

mod bundles;
mod claim;
mod coalesce;
mod consumers;
pub mod dispatch;
pub mod outbox;
pub mod packages;
mod plugin_policies;
pub mod policy_outbox;
pub mod schema;
pub mod status;
pub mod wakeup;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use maestro_search::{Dialect, SearchError};

pub use bundles::{BundleScope, NewBundle};
pub use plugin_policies::StoredPolicy;

/// Runs the same body against whichever pool the store holds. The body is expanded once per
/// driver, so it is type-checked against both and no query is written twice.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body` in one transaction of whichever database the store holds (`$tx` is the open
/// transaction; use it as `&mut *$tx`) and commits it. An error returned from the body rolls
/// the transaction back as it is dropped.
macro_rules! in_transaction {
    ($store:expr, $tx:ident => $body:expr) => {
        $crate::on_pool!($store, pool => {
            let mut $tx = pool.begin().await?;
            let out = $body;
            $tx.commit().await?;
            out
        })
    };
}
pub(crate) use in_transaction;

/// Binds the values of a compiled search filter, in order, onto a query of either driver.
macro_rules! bind_search {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                maestro_search::Bind::Text(text) => query.bind(text.clone()),
                maestro_search::Bind::Int(int) => query.bind(*int),
                maestro_search::Bind::Time(time) => query.bind(*time),
                maestro_search::Bind::Json(json) => query.bind(sqlx::types::Json(json.clone())),
            };
        }
        query
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The request is valid but the stored state refuses it (exists, deleting, stale version).
    #[error("{message}")]
    Conflict { message: String, current_version: Option<i64> },
    /// The request names something that does not exist or cannot be, e.g. an unknown consumer.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{parameter}: {source}")]
    Query { parameter: &'static str, source: SearchError },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("{0}")]
    Config(String),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
}

/// Limits on how the hub talks to its database; every call is bounded in time.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// Bounds connecting, waiting for a pooled connection, and each statement.
    pub timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { max_connections: 16, timeout: Duration::from_secs(5) }
    }
}

pub(crate) enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Connection counts for the `/metrics` pool gauges.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

pub struct Store {
    db: Db,
    options: DbOptions,
    /// SQLite has one writer at a time; a writer that finds the lock taken sleeps in its busy
    /// handler for up to 100 ms per try, which gave writes a p99 of 230 ms under 16 concurrent
    /// clients. Queuing writers here instead keeps them in arrival order without sleeping,
    /// while readers still run beside them. PostgreSQL needs no such queue.
    sqlite_writer: tokio::sync::Mutex<()>,
    /// PostgreSQL only: concurrent creates written as one statement (`coalesce.rs`).
    creates: Option<coalesce::Coalescer>,
    /// Poked after every write (see [`WriteTurn`]), so this hub's dispatcher starts at once.
    outbox_written: std::sync::Arc<tokio::sync::Notify>,
    /// SQLite only: recorded statuses, for this process's [`wakeup::StatusFeed`]s.
    status_recorded: tokio::sync::broadcast::Sender<String>,
}

/// One write's turn (SQLite's writer queue) that, once the write is over, wakes the outbox
/// dispatcher of this process. Other hubs learn of writes through PostgreSQL's NOTIFY.
pub(crate) struct WriteTurn<'a> {
    _sqlite: Option<tokio::sync::MutexGuard<'a, ()>>,
    written: &'a tokio::sync::Notify,
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.written.notify_one();
    }
}

impl Store {
    /// Opens `postgres://...` or `sqlite://path` (the file is created if missing).
    pub async fn connect(url: &str, options: DbOptions) -> Result<Store, StoreError> {
        let connecting = async {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Self::connect_postgres(url, &options).await
            } else if url.starts_with("sqlite:") {
                Self::connect_sqlite(url, &options).await
            } else {
                Err(StoreError::Config(format!(
                    "--database-url must start with postgres://, postgresql:// or sqlite:, found {:?}",
                    redact_url(url)
                )))
            }
        };
        let db = tokio::time::timeout(options.timeout, connecting)
            .await
            .map_err(|_| StoreError::Timeout(options.timeout))??;
        let creates = match &db {
            // Two connections write batches; the rest stay free for reads and updates.
            Db::Postgres(pool) => Some(coalesce::Coalescer::start(pool.clone(), coalesce::WRITERS)),
            Db::Sqlite(_) => None,
        };
        Ok(Store {
            db,
            options,
            sqlite_writer: tokio::sync::Mutex::new(()),
            creates,
            outbox_written: std::sync::Arc::new(tokio::sync::Notify::new()),
            status_recorded: tokio::sync::broadcast::channel(1024).0,
        })
    }

    async fn connect_postgres(url: &str, options: &DbOptions) -> Result<Db, StoreError> {
        let statement_timeout = options.timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(url)?
            .application_name("maestro")
            .options([("statement_timeout", statement_timeout.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.timeout)
            .connect_with(connect)
            .await?;
        Ok(Db::Postgres(pool))
    }

    async fn connect_sqlite(url: &str, options: &DbOptions) -> Result<Db, StoreError> {
        // WAL lets readers run beside the single writer; NORMAL sync is durable across process
        // crashes, which is what the embedded default promises.
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.timeout)
            .connect_with(connect)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Held for the length of one write; see `sqlite_writer`.
    pub(crate) async fn write_turn(&self) -> WriteTurn<'_> {
        let sqlite = match self.db {
            Db::Postgres(_) => None,
            Db::Sqlite(_) => Some(self.sqlite_writer.lock().await),
        };
        WriteTurn { _sqlite: sqlite, written: &self.outbox_written }
    }

    /// Notified after each write of this process; the dispatcher waits on it.
    pub fn outbox_written(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_written.clone()
    }

    pub fn dialect(&self) -> Dialect {
        match self.db {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Applies the migrations of `migrations/<dialect>` that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Postgres(pool) => sqlx::migrate!("../../migrations/postgres").run(pool).await?,
            Db::Sqlite(pool) => sqlx::migrate!("../../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Proves the database answers a query now; `/readyz` uses it.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let probe = async { on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())) };
        tokio::time::timeout(self.options.timeout, probe)
            .await
            .map_err(|_| StoreError::Timeout(self.options.timeout))??;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let max = self.options.max_connections;
        on_pool!(self, pool => PoolStats { size: pool.size(), idle: pool.num_idle() as u32, max })
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Hides the password of a database URL in messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Marks a statement assembled at run time as safe to send. Every dynamic statement here is
/// built only from constant fragments, column names from a fixed [`schema`] and `$N`
/// placeholders; values, the user's included, are always bound.
pub(crate) fn audited(sql: &str) -> sqlx::AssertSqlSafe<&str> {
    sqlx::AssertSqlSafe(sql)
}

/// A page of a list, numbered from 1 as Maestro does.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub page: i64,
    pub total: i64,
    pub items: Vec<T>,
}

/// A list request as the API received it; the store compiles `search` and `order_by`.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub page: i64,
    pub size: i64,
    pub search: String,
    pub order_by: String,
}

/// The WHERE and ORDER BY parts of a list query, with the filter's values to bind.
pub(crate) struct ListSql {
    pub where_sql: String,
    pub order_sql: String,
    pub binds: Vec<maestro_search::Bind>,
}

impl ListSql {
    /// `scope` is a fixed condition of the endpoint (e.g. one-manifest bundles only), ANDed
    /// with the user's search. The user's values are always bound, never spliced in.
    pub fn compile(
        request: &ListRequest,
        schema: &maestro_search::Schema,
        dialect: Dialect,
        scope: Option<&str>,
    ) -> Result<ListSql, StoreError> {
        let filter = maestro_search::filter(&request.search, schema, dialect, 1)
            .map_err(|source| StoreError::Query { parameter: "search", source })?;
        let order = maestro_search::order_by(&request.order_by, schema)
            .map_err(|source| StoreError::Query { parameter: "orderBy", source })?;
        let mut conditions: Vec<String> = scope.map(str::to_string).into_iter().collect();
        let mut binds = Vec::new();
        if let Some(filter) = filter {
            conditions.push(format!("({})", filter.sql));
            binds = filter.binds;
        }
        let where_sql = if conditions.is_empty() { "TRUE".to_string() } else { conditions.join(" AND ") };
        // `id` last keeps pages stable when the user's order has ties.
        let order_sql = match order {
            Some(order) => format!("{order}, id"),
            None => "created_at, id".to_string(),
        };
        Ok(ListSql { where_sql, order_sql, binds })
    }

    /// Placeholders for LIMIT and OFFSET come after the filter's.
    pub fn limit_offset(&self) -> String {
        let n = self.binds.len();
        format!("LIMIT ${} OFFSET ${}", n + 1, n + 2)
    }
}

impl Store {
    /// One page of `table` (its `columns` as a row `R`) and the number of rows matching the
    /// same filter, as every list endpoint answers them. Page and count run side by side.
    pub(crate) async fn list_page<R>(
        &self,
        table: &str,
        columns: &str,
        request: &ListRequest,
        list: &ListSql,
    ) -> Result<(Vec<R>, i64), StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        let select = format!(
            "SELECT {columns} FROM {table} WHERE {} ORDER BY {} {}",
            list.where_sql,
            list.order_sql,
            list.limit_offset()
        );
        let count = format!("SELECT COUNT(*) FROM {table} WHERE {}", list.where_sql);
        let offset = (request.page - 1) * request.size;
        Ok(on_pool!(self, pool => {
            let rows = bind_search!(sqlx::query_as::<_, R>(audited(&select)), &list.binds)
                .bind(request.size)
                .bind(offset)
                .fetch_all(pool);
            let total = bind_search!(sqlx::query_scalar::<_, i64>(audited(&count)), &list.binds).fetch_one(pool);
            tokio::try_join!(rows, total)
        })?)
    }
}

/// Which unique constraint a violation hit, for both drivers' ways of saying it.
pub(crate) fn violated_constraint(err: &sqlx::Error) -> Option<(sqlx::error::ErrorKind, String)> {
    let sqlx::Error::Database(db) = err else { return None };
    let name = db.constraint().map(str::to_string).unwrap_or_else(|| db.message().to_string());
    Some((db.kind(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_but_keeps_user_and_host() {
        assert_eq!(redact_url("postgres://maestro:s3cret@db:5432/maestro"), "postgres://maestro:***@db:5432/maestro");
        assert_eq!(redact_url("postgres://db/maestro"), "postgres://db/maestro");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
