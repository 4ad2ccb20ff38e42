//! Listing every bundle page by page, as a client would.

use crate::*;

/// What the list phase measured: per repetition, the time in HTTP (requests sent and bodies
/// read in full) and the time including the client decoding the pages.
pub(crate) struct ListReport {
    pub(crate) bundles: usize,
    pub(crate) pages: usize,
    pub(crate) bytes: usize,
    pub(crate) http: Vec<Duration>,
    pub(crate) with_decode: Vec<Duration>,
    pub(crate) seed: Duration,
    pub(crate) problems: Vec<String>,
}

/// The parts of a list page the bench checks; the rest of each item is skipped.
#[derive(Deserialize)]
pub(crate) struct ListPage {
    pub(crate) total: usize,
    pub(crate) items: Vec<ListItem>,
}

#[derive(Deserialize)]
pub(crate) struct ListItem {
    pub(crate) id: String,
}

/// Seeds `--list-bundles` bundles through the hub's store, then lists them all `--list-repeats` times.
pub(crate) async fn list_phase(
    args: &BenchArgs,
    client: &reqwest::Client,
    hub: &RunningHub,
) -> anyhow::Result<ListReport> {
    let consumers = consumer_names(args.consumers);
    create_consumers(client, &hub.url(), &consumers).await?;
    let started = Instant::now();
    seed_bundles(args, &hub.store, &consumers).await?;
    let seed = started.elapsed();
    println!("seeded {} bundles through the store in {:.2} s", args.list_bundles, seed.as_secs_f64());
    let mut report = ListReport {
        bundles: args.list_bundles,
        pages: 0,
        bytes: 0,
        http: vec![],
        with_decode: vec![],
        seed,
        problems: vec![],
    };
    for round in 1..=args.list_repeats {
        let run = list_all(client, &hub.url(), args.list_bundles).await?;
        println!(
            "list {round}: {} bundles in {} pages, {:.1} MB: {:.0} ms in HTTP, {:.0} ms with decoding",
            run.ids.len(),
            run.pages,
            run.bytes as f64 / 1e6,
            run.http.as_secs_f64() * 1000.0,
            run.with_decode.as_secs_f64() * 1000.0
        );
        report
            .problems
            .extend(list_problems(&run, args.list_bundles).into_iter().map(|p| format!("list {round}: {p}")));
        (report.pages, report.bytes) = (run.pages, run.bytes);
        report.http.push(run.http);
        report.with_decode.push(run.with_decode);
    }
    report.http.sort_unstable();
    report.with_decode.sort_unstable();
    Ok(report)
}

/// Writes the same rows the API's create does, `--concurrency` at a time; seeding is not
/// what is measured, so it takes the shortest way.
pub(crate) async fn seed_bundles(args: &BenchArgs, store: &Arc<Store>, consumers: &[String]) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let template = padded_manifest("list-000000", args.payload_bytes);
    futures::stream::iter(0..args.list_bundles)
        .map(|i| {
            let mut manifest = template.clone();
            if let Some(name) = manifest.pointer_mut("/metadata/name") {
                *name = Value::String(format!("list-{i:06}"));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let new = NewBundle {
                name: id.clone(),
                id,
                consumer_name: consumers[i % consumers.len()].clone(),
                content: BundleContent { manifests: vec![manifest], ..BundleContent::default() },
            };
            async move { bounded(args.timeout, store.create_bundle(&new)).await.context("seeding a bundle") }
        })
        .buffer_unordered(args.concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
}

pub(crate) struct ListRun {
    pub(crate) pages: usize,
    pub(crate) bytes: usize,
    pub(crate) totals: Vec<usize>,
    pub(crate) ids: Vec<String>,
    pub(crate) http: Duration,
    pub(crate) with_decode: Duration,
}

/// Lists every bundle with the largest page, one page after another as a client must (the
/// next request depends on whether the last page was full). `expected` only bounds the pages
/// followed, so a hub that never ends its list cannot keep the bench going.
pub(crate) async fn list_all(client: &reqwest::Client, base: &str, expected: usize) -> anyhow::Result<ListRun> {
    let url = format!("{base}{BASE_PATH}/resource-bundles");
    let mut run =
        ListRun { pages: 0, bytes: 0, totals: vec![], ids: vec![], http: Duration::ZERO, with_decode: Duration::ZERO };
    let started = Instant::now();
    let max_pages = expected / LIST_PAGE_SIZE + 2;
    for page in 1..=max_pages {
        let sent = Instant::now();
        let response = client
            .get(&url)
            .query(&[("page", page), ("size", LIST_PAGE_SIZE)])
            .send()
            .await
            .context("listing bundles")?;
        let status = response.status();
        let body = response.bytes().await.context("reading a list page")?;
        run.http += sent.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!("listing page {page}: {status}: {}", String::from_utf8_lossy(&body));
        }
        let parsed: ListPage =
            serde_json::from_slice(&body).with_context(|| format!("list page {page} is not a bundle list"))?;
        run.pages += 1;
        run.bytes += body.len();
        run.totals.push(parsed.total);
        let count = parsed.items.len();
        run.ids.extend(parsed.items.into_iter().map(|item| item.id));
        if count < LIST_PAGE_SIZE || run.ids.len() >= parsed.total {
            break;
        }
    }
    run.with_decode = started.elapsed();
    Ok(run)
}

/// Whatever makes a full list wrong: a lost or repeated bundle, or a `total` that disagrees.
pub(crate) fn list_problems(run: &ListRun, expected: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if run.ids.len() != expected {
        problems.push(format!("listed {} bundles, expected {expected}", run.ids.len()));
    }
    let distinct: HashSet<&String> = run.ids.iter().collect();
    if distinct.len() != run.ids.len() {
        problems.push(format!("{} bundles listed more than once", run.ids.len() - distinct.len()));
    }
    if let Some(total) = run.totals.iter().find(|total| **total != expected) {
        problems.push(format!("a page said total {total}, expected {expected}"));
    }
    problems
}

/// The middle element of sorted samples (the upper one of an even count).
pub(crate) fn median(sorted: &[Duration]) -> Option<Duration> {
    sorted.get(sorted.len() / 2).copied()
}
