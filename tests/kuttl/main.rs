//! The kuttl runner (`maestro-kuttl`) on small suites written here, against a simulated cluster
//! over HTTP: each of kuttl's assert rules, steps with commands and deletes, timeouts,
//! parallel cases in their own namespaces, and what a failing case reports (text and JUnit).
//! `crates/maestro/tests/test_cli.rs` runs KUDO's own suite through `maestro test`.

mod rules;
mod steps;

use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro_kuttl::cluster::Cluster;
use maestro_kuttl::files::cases;
use maestro_kuttl::model::Suite;
use maestro_kuttl::report::{CaseReport, SuiteReport};
use maestro_kuttl::run::{Options, TestDir, run};
use maestro_sim::{RunningSim, SimCluster, SimOptions};

/// A folder of test cases written by a test, and a simulated cluster to run them on.
pub struct Bench {
    pub sim: RunningSim,
    pub dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Bench {
    pub async fn start() -> Bench {
        let options = SimOptions { ready_delay: Duration::from_millis(200), ..SimOptions::default() };
        let sim = SimCluster::start(options).await.unwrap_or_else(|e| panic!("simulator: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap_or_else(|e| panic!("{e}"));
        Bench { sim, dir, kubeconfig }
    }

    /// Writes `text` to `tests/<case>/<file>`.
    pub fn file(&self, case: &str, file: &str, text: &str) {
        let path = self.dir.path().join("tests").join(case).join(file);
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Runs every case under `tests/` with `suite`.
    pub async fn run(&self, suite: Suite) -> SuiteReport {
        let found = cases(&self.dir.path().join("tests"), None).unwrap_or_else(|e| panic!("reading cases: {e}"));
        let dirs = vec![TestDir { label: "tests".into(), cases: found }];
        let options = Options { kubeconfig: self.kubeconfig.clone(), ..Options::default() };
        let cluster = Cluster::new(self.sim.client().unwrap_or_else(|e| panic!("{e}")));
        run(&cluster, &suite, self.dir.path(), dirs, &options).await
    }

    pub fn client(&self) -> kube::Client {
        self.sim.client().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A suite with a short timeout, for cases expected to fail.
pub fn quick(seconds: u64) -> Suite {
    Suite { timeout: Some(seconds), ..Suite::default() }
}

/// The report of the case of this name.
pub fn case<'a>(report: &'a SuiteReport, name: &str) -> &'a CaseReport {
    report.cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}: {}", report.text()))
}

/// A ConfigMap manifest with data, and labels when given.
pub fn config_map(name: &str, labels: &str, data: &str) -> String {
    let labels = if labels.is_empty() { String::new() } else { format!("\n  labels: {{{labels}}}") };
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{labels}\ndata: {{{data}}}\n")
}
