//! Scratch PostgreSQL databases and hubs for one run, dropped afterwards however the run ends.

use crate::*;

/// A name no other run picks: the process id tells whose it is, the random part keeps phases apart.
pub(crate) fn scratch_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("maestro_bench_{}_{}", std::process::id(), &random[..12])
}

/// Runs `work` on a fresh database and removes it afterwards, whether `work` succeeded or not.
pub(crate) async fn with_scratch_database<T>(
    args: &BenchArgs,
    kind: DbKind,
    work: impl AsyncFnOnce(String) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match kind {
        DbKind::Postgres => with_scratch_postgres(&args.postgres.postgres_url, args.timeout, work).await,
        DbKind::Sqlite => {
            let name = scratch_name();
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let url = format!("sqlite://{}", dir.join("maestro.db").display());
            let result = work(url).await;
            let removed = std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()));
            finish(result, removed)
        }
    }
}

/// Runs `work` on a fresh database of the PostgreSQL server at `admin_url` and drops it
/// afterwards, whether `work` succeeded or not. Each statement is bounded by `limit`.
pub(crate) async fn with_scratch_postgres<T>(
    admin_url: &str,
    limit: Duration,
    work: impl AsyncFnOnce(String) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let name = scratch_name();
    let url = with_database(admin_url, &name)?;
    admin_sql(admin_url, &format!("CREATE DATABASE {name}"), limit).await?;
    let result = work(url).await;
    // FORCE ends connections a failed phase may have left, so the drop cannot be refused.
    let dropped = admin_sql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), limit).await;
    finish(result, dropped.with_context(|| format!("dropping scratch database {name}")))
}

/// The work's own error wins over a cleanup error, which is then only reported.
pub(crate) fn finish<T>(result: anyhow::Result<T>, cleanup: anyhow::Result<()>) -> anyhow::Result<T> {
    match (result, cleanup) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(err)) => Err(err),
        (Err(err), Ok(())) => Err(err),
        (Err(err), Err(cleanup)) => {
            eprintln!("also failed to clean up: {cleanup:#}");
            Err(err)
        }
    }
}

/// Runs one statement on its own connection to the admin URL: CREATE and DROP DATABASE cannot
/// run inside the scratch database itself, nor in a transaction.
pub(crate) async fn admin_sql(admin_url: &str, sql: &str, limit: Duration) -> anyhow::Result<()> {
    let work = async {
        let mut conn = PgConnection::connect(admin_url).await?;
        // The statement is built only from constants and a name made by `scratch_name`.
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await?;
        conn.close().await
    };
    bounded(limit, work).await.with_context(|| format!("{sql} through {}", redact_url(admin_url)))
}

/// Points a PostgreSQL URL at another database, keeping user, host and query parameters.
pub(crate) fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (scheme, rest) =
        url.split_once("://").context("--postgres-url must look like postgres://user@host:port/database")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The path starts at the first '/' after the credentials, which may themselves hold '/'.
    let host_start = before_query.rfind('@').map_or(0, |at| at + 1);
    let authority_end = before_query[host_start..].find('/').map_or(before_query.len(), |slash| host_start + slash);
    let authority = &before_query[..authority_end];
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Starts an in-process hub on `url` for `work`, and always shuts it down afterwards, so its
/// pool is closed before the database is dropped.
pub(crate) async fn with_hub<T>(
    url: &str,
    pool: u32,
    limit: Duration,
    work: impl AsyncFnOnce(&RunningHub) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = HubConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: url.to_string(),
        db: DbOptions { max_connections: pool, timeout: limit },
        limits: Limits { request_timeout: limit, ..Limits::default() },
        auth: AuthConfig::default(),
        plugins: None,
    };
    let hub = bounded(limit, maestro_hub::start(config))
        .await
        .with_context(|| format!("starting a hub on {}", redact_url(url)))?;
    let result = work(&hub).await;
    let stopped = bounded(limit, hub.shutdown()).await.context("stopping the hub");
    finish(result, stopped)
}

/// Bounds a fallible future in time, turning both its error and the timeout into one error.
pub(crate) async fn bounded<T, E>(limit: Duration, work: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("no answer within {limit:?}"),
    }
}
