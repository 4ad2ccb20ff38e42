//! Write coalescing for bundle creates on PostgreSQL.
//!
//! Under load, most of a create's cost in PostgreSQL is per statement and per commit (parse,
//! plan, WAL flush), not per row. Creates that arrive while others are being written wait in
//! one queue; each writer takes everything queued (up to [`MAX_BATCH`]) and writes it as one
//! multi-row statement, bundles and outbox rows together, so a batch is atomic like a single
//! create. Nobody waits for a batch to fill: a lone create is written at once, as a batch of
//! one. If PostgreSQL refuses a batch because of one of its rows (an unknown consumer, a
//! duplicate name), every row is retried alone, so each request gets its own answer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Rows per statement at most. Big enough to amortize a commit, small enough that one batch
/// stays well inside the statement timeout.
const MAX_BATCH: usize = 64;

/// Writer tasks, whatever the pool size. Two, so that one batch gathers while the other is
/// written; more writers split the queue into smaller batches, which costs PostgreSQL more per
/// row: with 16 clients, 4 writers gave 46% of the raw insert rate and 8 gave 34%, against
/// 55–57% for 1 or 2 (`maestro bench --database postgres`, BENCHMARKS.md).
pub(super) const WRITERS: usize = 2;

/// One create as the queue carries it: the values of its row, already serialized.
#[derive(Debug, Clone)]
pub(super) struct CreateRow {
    pub id: String,
    pub name: String,
    pub consumer_name: String,
    pub metadata: String,
    pub labels: String,
    pub manifests: String,
    pub manifest_count: i64,
    pub manifest_configs: String,
    pub delete_option: Option<String>,
    pub manifest_labels: String,
    pub at: DateTime<Utc>,
}

/// What a writer answers for one queued row.
pub(super) enum Outcome {
    Written,
    /// The batch was refused by a constraint: the caller writes this row alone to learn its fate.
    RetryAlone,
    /// The batch failed for a reason no single row explains (connection lost, timeout).
    Failed(String),
}

struct Job {
    row: CreateRow,
    reply: oneshot::Sender<Outcome>,
}

/// The queue and its writers. Dropping the last handle ends the writers.
pub(super) struct Coalescer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Coalescer {
    /// Starts `writers` writer tasks ([`WRITERS`] in the hub); each holds at most one pooled
    /// connection at a time.
    pub fn start(pool: PgPool, writers: usize) -> Coalescer {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(pool.clone(), receiver.clone()));
        }
        Coalescer { queue }
    }

    /// Queues a row and waits for the batch that carries it.
    pub async fn create(&self, row: CreateRow) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { row, reply }).is_err() {
            return Outcome::Failed("the hub is shutting down".into());
        }
        answer.await.unwrap_or_else(|_| Outcome::Failed("the hub is shutting down".into()))
    }
}

async fn write_batches(pool: PgPool, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let result = insert_batch(&pool, &batch).await;
        let refused_by_a_row = matches!(&result, Err(sqlx::Error::Database(db)) if db.constraint().is_some());
        let failure = result.err().map(|err| err.to_string());
        for job in batch {
            let outcome = match &failure {
                None => Outcome::Written,
                Some(_) if refused_by_a_row => Outcome::RetryAlone,
                Some(reason) => Outcome::Failed(reason.clone()),
            };
            // A caller that gave up (its request timed out) no longer listens; its row is written anyway.
            let _ = job.reply.send(outcome);
        }
    }
}

/// Every row of the batch and its outbox row, in one statement. Values travel as arrays, one
/// per column, and `unnest` turns them back into rows; the JSON text is cast in SQL so that the
/// `json` columns keep exactly the client's text.
const INSERT_BATCH: &str = "WITH input AS ( \
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], \
        $8::text[], $9::text[], $10::text[], $11::timestamptz[]) WITH ORDINALITY \
        AS t(id, name, consumer_name, metadata, labels, manifests, manifest_count, manifest_configs, delete_option, \
        manifest_labels, at, ord)), \
    changed AS ( \
      INSERT INTO resource_bundles (id, name, consumer_name, version, metadata, labels, manifests, manifest_count, \
        manifest_configs, delete_option, status, created_at, updated_at, manifest_labels) \
      SELECT id, name, consumer_name, 1, CAST(metadata AS JSON), CAST(labels AS JSONB), CAST(manifests AS JSON), \
        manifest_count, CAST(manifest_configs AS JSON), CAST(delete_option AS JSON), NULL, at, at, \
        CAST(manifest_labels AS JSONB) \
      FROM input ORDER BY ord \
      RETURNING id, consumer_name, version, updated_at), \
    queued AS ( \
      INSERT INTO outbox (resource_id, consumer_name, action, resource_version, created_at) \
      SELECT id, consumer_name, 'create', version, updated_at FROM changed) \
    SELECT COUNT(*) FROM changed";

async fn insert_batch(pool: &PgPool, batch: &[Job]) -> Result<(), sqlx::Error> {
    let column = |pick: fn(&CreateRow) -> String| batch.iter().map(|job| pick(&job.row)).collect::<Vec<_>>();
    let written: i64 = sqlx::query_scalar(INSERT_BATCH)
        .bind(column(|row| row.id.clone()))
        .bind(column(|row| row.name.clone()))
        .bind(column(|row| row.consumer_name.clone()))
        .bind(column(|row| row.metadata.clone()))
        .bind(column(|row| row.labels.clone()))
        .bind(column(|row| row.manifests.clone()))
        .bind(batch.iter().map(|job| job.row.manifest_count).collect::<Vec<_>>())
        .bind(column(|row| row.manifest_configs.clone()))
        .bind(batch.iter().map(|job| job.row.delete_option.clone()).collect::<Vec<_>>())
        .bind(column(|row| row.manifest_labels.clone()))
        .bind(batch.iter().map(|job| job.row.at).collect::<Vec<_>>())
        .fetch_one(pool)
        .await?;
    if written as usize == batch.len() { Ok(()) } else { Err(sqlx::Error::RowNotFound) }
}
