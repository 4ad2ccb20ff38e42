//! What a run found, for people (text) and for CI systems (JUnit XML, as kuttl writes it:
//! one `testsuite` per test folder, one `testcase` per case) or tools (JSON).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SuiteReport {
    pub cases: Vec<CaseReport>,
    /// What the suite's own set-up did (commands, CRDs, manifests), and what went wrong.
    pub setup: Vec<String>,
    pub setup_failure: Option<String>,
    #[serde(with = "seconds")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseReport {
    /// The test folder the case is in, as given.
    pub test_dir: String,
    pub name: String,
    pub namespace: String,
    pub steps: Vec<StepReport>,
    /// The first failure, naming the step.
    pub failure: Option<String>,
    #[serde(with = "seconds")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StepReport {
    pub index: i64,
    pub name: String,
    /// Each command as run and how it ended; rewrites of KUDO CLI calls are said.
    pub log: Vec<String>,
    /// Why the step failed: the unmet asserts, each with the fields that differ.
    pub failure: Option<String>,
    /// Collectors' output and the namespace's events, gathered on failure.
    pub collected: Vec<String>,
    #[serde(with = "seconds")]
    pub duration: Duration,
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(duration: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(duration.as_secs_f64())
    }
}

impl SuiteReport {
    pub fn passed(&self) -> bool {
        self.setup_failure.is_none() && self.cases.iter().all(|c| c.failure.is_none())
    }

    pub fn failed_cases(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }

    /// For people: each case with its steps, failures in full.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.setup {
            let _ = writeln!(out, "suite: {line}");
        }
        if let Some(failure) = &self.setup_failure {
            let _ = writeln!(out, "suite set-up FAILED: {failure}");
        }
        for case in &self.cases {
            let verdict = if case.failure.is_some() { "FAIL" } else { "PASS" };
            let _ = writeln!(
                out,
                "--- {verdict}: {}/{} ({:.2}s, namespace {})",
                case.test_dir,
                case.name,
                case.duration.as_secs_f64(),
                case.namespace
            );
            for step in &case.steps {
                let verdict = if step.failure.is_some() { "failed" } else { "ok" };
                let _ = writeln!(
                    out,
                    "    step {:02}-{} {verdict} ({:.3}s)",
                    step.index,
                    step.name,
                    step.duration.as_secs_f64()
                );
                for line in &step.log {
                    let _ = writeln!(out, "        {line}");
                }
                if let Some(failure) = &step.failure {
                    for line in failure.lines() {
                        let _ = writeln!(out, "        {line}");
                    }
                }
                for collected in &step.collected {
                    for line in collected.lines() {
                        let _ = writeln!(out, "        | {line}");
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "{}: {} passed, {} failed ({:.2}s)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.cases.len() - self.failed_cases(),
            self.failed_cases(),
            self.duration.as_secs_f64()
        );
        out
    }

    /// JUnit XML: a `testsuite` per test folder, a `testcase` per case, its failure with the
    /// full message.
    pub fn junit(&self) -> String {
        let mut dirs: Vec<&str> = self.cases.iter().map(|c| c.test_dir.as_str()).collect();
        dirs.dedup();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"maestro test\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.cases.len(),
            self.failed_cases(),
            self.duration.as_secs_f64()
        );
        for dir in dirs {
            let cases: Vec<&CaseReport> = self.cases.iter().filter(|c| c.test_dir == dir).collect();
            let failures = cases.iter().filter(|c| c.failure.is_some()).count();
            let time: f64 = cases.iter().map(|c| c.duration.as_secs_f64()).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">",
                escape(dir),
                cases.len()
            );
            for case in cases {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    escape(dir),
                    escape(&case.name),
                    case.duration.as_secs_f64()
                );
                match &case.failure {
                    None => out.push_str("/>\n"),
                    Some(failure) => {
                        let first = failure.lines().next().unwrap_or_default();
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"\">{}</failure>",
                            escape(first),
                            escape(&case_details(case))
                        );
                        out.push_str("    </testcase>\n");
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A failed case's steps as the text report shows them.
fn case_details(case: &CaseReport) -> String {
    let report = SuiteReport { cases: vec![case.clone()], ..SuiteReport::default() };
    report.text().lines().filter(|l| !l.starts_with("PASS:") && !l.starts_with("FAIL:")).collect::<Vec<_>>().join("\n")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SuiteReport {
        let step = |index, failure: Option<&str>| StepReport {
            index,
            name: "install".into(),
            failure: failure.map(str::to_string),
            ..StepReport::default()
        };
        SuiteReport {
            cases: vec![
                CaseReport {
                    test_dir: "./tests".into(),
                    name: "good".into(),
                    steps: vec![step(0, None)],
                    ..CaseReport::default()
                },
                CaseReport {
                    test_dir: "./tests".into(),
                    name: "bad<1>".into(),
                    steps: vec![
                        step(0, None),
                        step(1, Some("StatefulSet ns/zk differs:\n    status.readyReplicas: expected 1, got 0")),
                    ],
                    failure: Some("step 01-install: StatefulSet ns/zk differs".into()),
                    ..CaseReport::default()
                },
            ],
            ..SuiteReport::default()
        }
    }

    #[test]
    fn junit_has_a_testcase_per_case_and_the_failure_in_full() {
        let xml = report().junit();
        assert!(xml.contains("<testsuites name=\"maestro test\" tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"./tests\" tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<testcase classname=\"./tests\" name=\"good\""), "{xml}");
        assert!(xml.contains("name=\"bad&lt;1&gt;\""), "escaped: {xml}");
        assert!(xml.contains("<failure message=\"step 01-install: StatefulSet ns/zk differs\""), "{xml}");
        assert!(xml.contains("status.readyReplicas: expected 1, got 0"), "the differing field: {xml}");
    }

    #[test]
    fn the_text_report_ends_with_the_verdict() {
        let text = report().text();
        assert!(text.contains("--- FAIL: ./tests/bad<1>"), "{text}");
        assert!(text.trim_end().ends_with("(0.00s)") && text.contains("FAIL: 1 passed, 1 failed"), "{text}");
    }
}
