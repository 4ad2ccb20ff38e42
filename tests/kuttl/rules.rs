//! kuttl's assert rules (SPEC.md §6.3) as a test author meets them: maps are subsets, arrays
//! match element by element with the same length, scalars keep their types, an unnamed assert
//! needs one listed object to match, and an errors file fails while anything matches it.

use super::{Bench, case, config_map, quick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maps_are_subsets_and_unnamed_asserts_need_one_matching_object() {
    let b = Bench::start().await;
    let objects = [config_map("a", "app: web", "n: '1'"), config_map("b", "app: web", "n: '2'")].join("---\n");
    b.file("pass", "00-install.yaml", &objects);
    // Named: only the keys given count. Unnamed: one of the labelled objects must match.
    let asserts = [
        config_map("a", "", "n: '1'"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {app: web}\ndata: {n: '2'}\n".to_string(),
    ];
    b.file("pass", "00-assert.yaml", &asserts.join("---\n"));
    b.file("nomatch", "00-install.yaml", &config_map("c", "app: db", "n: '1'"));
    b.file(
        "nomatch",
        "00-assert.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {app: db}\ndata: {n: '9'}\n",
    );
    b.file("nothing", "00-assert.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {app: nowhere}\n");
    let report = b.run(quick(1)).await;
    assert!(case(&report, "pass").failure.is_none(), "{}", report.text());
    let nomatch = case(&report, "nomatch").failure.as_deref().unwrap_or_default();
    assert!(nomatch.contains("ConfigMap") && nomatch.contains("/c differs:"), "the closest object named: {nomatch}");
    assert!(nomatch.contains("data.n: expected \"9\", got \"1\""), "{nomatch}");
    let nothing = case(&report, "nothing").failure.as_deref().unwrap_or_default();
    assert!(nothing.contains("no ConfigMap in") && nothing.contains("nowhere"), "{nothing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_need_the_same_length_and_scalars_their_type() {
    let b = Bench::start().await;
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - {name: http, port: 80}\n  - {name: https, port: 443}\n";
    for name in ["order", "length", "types"] {
        b.file(name, "00-install.yaml", service);
    }
    b.file(
        "order",
        "00-assert.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - {port: 80}\n  - {port: 443}\n",
    );
    b.file(
        "length",
        "00-assert.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - {port: 80}\n",
    );
    b.file(
        "types",
        "00-assert.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - {port: \"80\"}\n  - {port: 443}\n",
    );
    let report = b.run(quick(1)).await;
    assert!(case(&report, "order").failure.is_none(), "{}", report.text());
    let length = case(&report, "length").failure.as_deref().unwrap_or_default();
    assert!(length.contains("spec.ports: expected 1 items, got 2 items"), "{length}");
    let types = case(&report, "types").failure.as_deref().unwrap_or_default();
    assert!(types.contains("spec.ports[0].port: expected \"80\", got 80"), "{types}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_errors_file_fails_the_step_while_an_object_matches_it() {
    let b = Bench::start().await;
    b.file("refuted", "00-install.yaml", &config_map("bad", "", "state: broken"));
    b.file("refuted", "00-errors.yaml", &config_map("bad", "", "state: broken"));
    b.file("absent", "00-install.yaml", &config_map("ok", "", "state: fine"));
    // Named and differing, and unnamed with no match: both fine.
    let errors = [
        config_map("ok", "", "state: broken"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {kind: bad}\n".to_string(),
    ];
    b.file("absent", "00-errors.yaml", &errors.join("---\n"));
    let report = b.run(quick(1)).await;
    let refuted = case(&report, "refuted").failure.as_deref().unwrap_or_default();
    assert!(refuted.contains("/bad exists and matches an errors entry"), "{refuted}");
    assert!(case(&report, "absent").failure.is_none(), "{}", report.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assert_waits_for_the_cluster_to_get_there() {
    let b = Bench::start().await;
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n";
    b.file("rollout", "00-install.yaml", deployment);
    b.file(
        "rollout",
        "00-assert.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nstatus:\n  readyReplicas: 2\n",
    );
    let report = b.run(quick(20)).await;
    let rollout = case(&report, "rollout");
    assert!(rollout.failure.is_none(), "{}", report.text());
    let log = rollout.steps[0].log.join("\n");
    assert!(log.contains("asserts held after"), "{log}");
}
