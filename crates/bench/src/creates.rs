//! Creates through the REST API by concurrent clients: rate and latency.

use crate::*;

/// What the create phase measured. Latencies are sorted.
pub(crate) struct CreateReport {
    pub(crate) requests: usize,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) body_bytes: usize,
    pub(crate) failures: Failures,
}

impl CreateReport {
    pub(crate) fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Answers other than 201, by status, with the first few bodies to show what went wrong.
#[derive(Default)]
pub(crate) struct Failures {
    pub(crate) by_status: BTreeMap<String, usize>,
    pub(crate) samples: Vec<String>,
}

impl Failures {
    const SAMPLES: usize = 3;

    pub(crate) fn record(&mut self, status: String, detail: String) {
        *self.by_status.entry(status).or_default() += 1;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(detail.chars().take(400).collect());
        }
    }

    pub(crate) fn merge(&mut self, other: Failures) {
        for (status, count) in other.by_status {
            *self.by_status.entry(status).or_default() += count;
        }
        for sample in other.samples {
            if self.samples.len() < Self::SAMPLES {
                self.samples.push(sample);
            }
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.by_status.values().sum()
    }
}

/// Creates the consumers, then times `--creates` resource creates by `--concurrency` tasks.
pub(crate) async fn create_phase(
    args: &BenchArgs,
    client: &reqwest::Client,
    hub: &RunningHub,
) -> anyhow::Result<CreateReport> {
    let consumers = consumer_names(args.consumers);
    create_consumers(client, &hub.url(), &consumers).await?;
    let bodies = create_bodies(args, &consumers)?;
    let body_bytes = bodies.first().map_or(0, Bytes::len);
    let report =
        timed_creates(client, &format!("{}{BASE_PATH}/resources", hub.url()), bodies, args.concurrency, body_bytes)
            .await?;
    print_creates(&report);
    Ok(report)
}

pub(crate) async fn create_consumers(client: &reqwest::Client, base: &str, names: &[String]) -> anyhow::Result<()> {
    let url = format!("{base}{BASE_PATH}/consumers");
    for name in names {
        let response = client.post(&url).json(&json!({"name": name})).send().await.context("creating a consumer")?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let body = response.text().await.unwrap_or_default();
            bail!("creating consumer {name}: {status}: {body}");
        }
    }
    Ok(())
}

/// Sends every body with `concurrency` tasks pulling from one queue, so a slow request holds up
/// only its own task. The wall time spans the first send to the last answer read.
pub(crate) async fn timed_creates(
    client: &reqwest::Client,
    url: &str,
    bodies: Vec<Bytes>,
    concurrency: usize,
    body_bytes: usize,
) -> anyhow::Result<CreateReport> {
    let requests = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) = (client.clone(), url.to_string(), bodies.clone(), next.clone());
        tasks.spawn(async move { create_worker(&client, &url, &bodies, &next).await });
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = Failures::default();
    while let Some(joined) = tasks.join_next().await {
        let (mine, failed) = joined.context("a create task panicked")?;
        latencies.extend(mine);
        failures.merge(failed);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(CreateReport { requests, elapsed, latencies, body_bytes, failures })
}

/// One client task: takes the next body until none are left, timing each request until its
/// answer is read in full.
pub(crate) async fn create_worker(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Bytes],
    next: &AtomicUsize,
) -> (Vec<Duration>, Failures) {
    let mut latencies = Vec::new();
    let mut failures = Failures::default();
    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
        let sent = Instant::now();
        let answer =
            client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone()).send().await;
        match answer {
            Ok(response) => {
                let status = response.status();
                let text = response.bytes().await;
                latencies.push(sent.elapsed());
                match text {
                    Ok(_) if status == reqwest::StatusCode::CREATED => {}
                    Ok(bytes) => failures.record(status.to_string(), String::from_utf8_lossy(&bytes).into_owned()),
                    Err(err) => failures.record("body unreadable".into(), err.to_string()),
                }
            }
            Err(err) => {
                latencies.push(sent.elapsed());
                failures.record("no answer".into(), format!("{err:#}"));
            }
        }
    }
    (latencies, failures)
}

/// The smallest sample with at least `p` percent of samples at or below it (nearest rank), so
/// every percentile reported is a latency that was actually seen.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub(crate) fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
}

pub(crate) fn print_creates(report: &CreateReport) {
    println!(
        "creates: {} in {:.2} s = {:.0} creates/s; latency p50 {}, p90 {}, p99 {}, max {}; request body {} bytes",
        report.requests,
        report.elapsed.as_secs_f64(),
        report.rate(),
        millis(percentile(&report.latencies, 50.0)),
        millis(percentile(&report.latencies, 90.0)),
        millis(percentile(&report.latencies, 99.0)),
        millis(report.latencies.last().copied()),
        report.body_bytes
    );
    if report.failures.total() > 0 {
        println!("FAILED creates: {} not 201: {:?}", report.failures.total(), report.failures.by_status);
        for sample in &report.failures.samples {
            println!("  e.g. {sample}");
        }
    }
}
