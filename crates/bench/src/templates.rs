//! `maestro bench templates`: parse and render every template of the golden cases of the 14
//! KUDO packages (`../shared/conformance/kudo/golden/cases.json`) N times, and in the same run
//! the Go oracle (Go's `text/template` + sprig, `scripts/kudo-oracle`) on the same inputs; the
//! figure is our throughput over Go's. Both parse each template on every render, as KUDO does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::Value as Json;

use maestro_gotmpl::{Value, kudo};

#[derive(Debug, Clone, clap::Args)]
pub struct TemplateBenchArgs {
    /// The conformance folder (golden cases and packages).
    #[arg(long, default_value = "../shared/conformance/kudo")]
    pub conformance: PathBuf,
    /// The Go oracle; without it only our figure is printed.
    #[arg(long, default_value = "target/tools/kudo-oracle")]
    pub oracle: PathBuf,
    /// Times every template is parsed and rendered, by us and by the oracle.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
}

/// One golden case, ready to render.
struct Case {
    package: PathBuf,
    params_json: String,
    meta_json: String,
    data: Value,
    templates: Vec<(String, String)>,
}

pub fn run(args: TemplateBenchArgs) -> anyhow::Result<()> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let cases = load(&args.conformance)?;
    let count: usize = cases.iter().map(|c| c.templates.len()).sum();
    println!("templates: {} golden cases, {count} templates, {} iterations", cases.len(), args.iterations);
    let ours = measure_ours(&cases, args.iterations)?;
    println!("  maestro-gotmpl   {:>10.0} templates/s   {:>8.2} µs per template", 1e9 / ours, ours / 1e3);
    if !args.oracle.exists() {
        println!("  Go oracle        not built ({}): run scripts/kudo-oracle", args.oracle.display());
        return Ok(());
    }
    let go = measure_oracle(&args.oracle, &cases, args.iterations)?;
    println!("  Go text/template {:>10.0} templates/s   {:>8.2} µs per template", 1e9 / go, go / 1e3);
    println!("  ratio            {:>10.1}× Go's throughput", go / ours);
    Ok(())
}

fn load(conformance: &Path) -> anyhow::Result<Vec<Case>> {
    let cases_file = conformance.join("golden/cases.json");
    let text = std::fs::read_to_string(&cases_file).with_context(|| format!("reading {}", cases_file.display()))?;
    let cases: Vec<Json> = serde_json::from_str(&text).context("cases.json")?;
    cases.iter().map(|case| load_case(conformance, case)).collect()
}

fn strings(value: &Json) -> BTreeMap<String, String> {
    let object = value.as_object().into_iter().flatten();
    object.map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
}

fn load_case(conformance: &Path, case: &Json) -> anyhow::Result<Case> {
    let package = conformance.join(case["path"].as_str().context("a case without path")?);
    let params_file: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(package.join("params.yaml"))?)?;
    let params = kudo::params(&params_file, &strings(&case["params"])).map_err(anyhow::Error::msg)?;
    let data = kudo::data(&strings(&case["meta"]), params, BTreeMap::new());
    let mut templates = Vec::new();
    collect(&package.join("templates"), &package.join("templates"), &mut templates)?;
    templates.sort();
    Ok(Case { package, params_json: case["params"].to_string(), meta_json: case["meta"].to_string(), data, templates })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.strip_prefix(root)?.to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

/// Nanoseconds per template (parse and render), errors included as the goldens have them.
fn measure_ours(cases: &[Case], iterations: usize) -> anyhow::Result<f64> {
    let mut renders = 0usize;
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..iterations {
        for case in cases {
            for (name, source) in &case.templates {
                let rendered = maestro_gotmpl::render(name, source, &case.data);
                bytes += rendered.map_or(1, |text| text.len());
                renders += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(bytes);
    Ok(elapsed.as_nanos() as f64 / renders as f64)
}

/// The oracle's own timing (`renders=R ns_per_render=T` on stderr), weighted over all cases.
fn measure_oracle(oracle: &Path, cases: &[Case], iterations: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let (mut renders, mut nanos) = (0f64, 0f64);
    for (n, case) in cases.iter().enumerate() {
        let params = dir.path().join(format!("params-{n}.json"));
        let meta = dir.path().join(format!("meta-{n}.json"));
        std::fs::write(&params, &case.params_json)?;
        std::fs::write(&meta, &case.meta_json)?;
        let output = Command::new(oracle)
            .arg(&case.package)
            .arg(&params)
            .arg(&meta)
            .arg(iterations.to_string())
            .output()
            .with_context(|| format!("running {}", oracle.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let figure =
            |key: &str| stderr.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse::<f64>().ok());
        let (Some(r), Some(t)) = (figure("renders="), figure("ns_per_render=")) else {
            bail!("the oracle printed no timing for {}: {stderr}", case.package.display());
        };
        renders += r;
        nanos += r * t;
    }
    Ok(nanos / renders)
}
