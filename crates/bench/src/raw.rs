//! The anchor: PostgreSQL's own rate of single-row inserts of the same size, in the same run.

use crate::*;

pub(crate) struct RawReport {
    pub(crate) rows: usize,
    pub(crate) connections: usize,
    pub(crate) elapsed: Duration,
}

impl RawReport {
    pub(crate) fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// What the same PostgreSQL does with the same payload and no hub: single-row autocommit
/// INSERTs into a table with only a primary key, from `--raw-connections` connections, for
/// `--raw-duration`.
pub(crate) async fn raw_insert_phase(args: &BenchArgs, url: &str) -> anyhow::Result<RawReport> {
    let connections = args.raw_connections;
    let pool = bounded(
        args.timeout,
        PgPoolOptions::new()
            .max_connections(u32::try_from(connections).unwrap_or(u32::MAX))
            .acquire_timeout(args.timeout)
            .connect(url),
    )
    .await
    .context("connecting for the raw insert comparison")?;
    let setup = sqlx::query("CREATE TABLE raw_inserts (id TEXT PRIMARY KEY, payload JSONB)").execute(&pool);
    bounded(args.timeout, setup).await.context("creating the raw insert table")?;
    let payload = Arc::new(padded_manifest("bench-000000", args.payload_bytes));
    // Open every connection before the clock starts, as the hub's pool is warm by then too.
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(bounded(args.timeout, pool.acquire()).await.context("opening a raw insert connection")?);
    }
    let inserted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.raw_duration;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in held {
        let (payload, inserted, limit) = (payload.clone(), inserted.clone(), args.timeout);
        tasks.spawn(async move { raw_insert_worker(conn, &payload, &inserted, deadline, limit).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a raw insert task panicked")??;
    }
    let elapsed = started.elapsed();
    // Closing only tidies up; a server slow to say goodbye must not hold the benchmark.
    let _ = tokio::time::timeout(args.timeout, pool.close()).await;
    Ok(RawReport { rows: inserted.load(Ordering::Relaxed), connections, elapsed })
}

/// Inserts rows on its own connection until the deadline, counting those the database took.
pub(crate) async fn raw_insert_worker(
    mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    payload: &Value,
    inserted: &AtomicUsize,
    deadline: Instant,
    limit: Duration,
) -> anyhow::Result<()> {
    while Instant::now() < deadline {
        let id = uuid::Uuid::new_v4().to_string();
        let insert = sqlx::query("INSERT INTO raw_inserts (id, payload) VALUES ($1, $2)")
            .bind(id)
            .bind(Json(payload))
            .execute(&mut *conn);
        bounded(limit, insert).await.context("raw insert")?;
        inserted.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
