//! Steps as kuttl runs them (SPEC.md §6.2): commands with `$NAMESPACE` and `$KUBECONFIG`
//! (kubectl as the client), deletes waited for, TestAssert timeouts, cases in parallel each in
//! a namespace of its own that is gone afterwards, and a failing case's report.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::Api;

use super::{Bench, case, config_map, quick};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_see_the_namespace_and_kubeconfig_and_a_failing_one_stops_the_case() {
    let b = Bench::start().await;
    // An unnumbered file is not a step: the command applies it with kubectl.
    b.file("kubectl", "made-by-kubectl.yaml", &config_map("from-kubectl", "", "by: kubectl"));
    let step = "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n  - command: kubectl apply --validate=false -n $NAMESPACE -f made-by-kubectl.yaml\n  - script: test -s \"$KUBECONFIG\" && test -n \"$NAMESPACE\"\n";
    b.file("kubectl", "00-apply.yaml", step);
    b.file("kubectl", "00-assert.yaml", &config_map("from-kubectl", "", "by: kubectl"));
    let failing = "apiVersion: kudo.dev/v1alpha1\nkind: TestStep\ncommands:\n  - script: echo nope >&2; exit 4\n";
    b.file("failing", "00-run.yaml", failing);
    b.file("failing", "01-never.yaml", &config_map("never", "", "a: b"));
    let ignored =
        "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n  - script: exit 1\n    ignoreFailure: true\n";
    b.file("ignored", "00-run.yaml", ignored);
    let report = b.run(quick(20)).await;
    assert!(case(&report, "kubectl").failure.is_none(), "{}", report.text());
    let failing = case(&report, "failing");
    let failure = failing.failure.as_deref().unwrap_or_default();
    assert!(failure.starts_with("step 00-run: command \"exit") || failure.contains("exit status 4"), "{failure}");
    assert!(failure.contains("nope"), "the command's output: {failure}");
    assert_eq!(failing.steps.len(), 1, "no step after the failed one");
    assert!(case(&report, "ignored").failure.is_none(), "{}", report.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_by_name_and_by_labels_are_waited_for() {
    let b = Bench::start().await;
    let objects =
        [config_map("one", "", "a: b"), config_map("two", "group: g", "a: b"), config_map("three", "group: g", "a: b")];
    b.file("delete", "00-install.yaml", &objects.join("---\n"));
    let delete = "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ndelete:\n  - {apiVersion: v1, kind: ConfigMap, name: one}\n  - apiVersion: v1\n    kind: ConfigMap\n    labels: {group: g}\n";
    b.file("delete", "01-delete.yaml", delete);
    // Gone, as an errors file sees it: nothing named one, nothing labelled g.
    let gone = [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {group: g}\n",
    ];
    b.file("delete", "01-errors.yaml", &gone.join("---\n"));
    let report = b.run(quick(20)).await;
    let delete = case(&report, "delete");
    assert!(delete.failure.is_none(), "{}", report.text());
    assert!(delete.steps[1].log.iter().any(|l| l.contains("deleted ConfigMap one")), "{:?}", delete.steps[1].log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_assert_timeout_bounds_its_step_and_the_failure_says_what_was_unmet() {
    let b = Bench::start().await;
    b.file("slow", "00-install.yaml", &config_map("cm", "", "a: b"));
    let assert =
        format!("apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: 1\n---\n{}", config_map("cm", "", "a: c"));
    b.file("slow", "00-assert.yaml", &assert);
    let report = b.run(quick(120)).await;
    let slow = case(&report, "slow");
    let failure = slow.steps[0].failure.as_deref().unwrap_or_default();
    assert!(failure.starts_with("not met within 1s"), "the step's own timeout, not the suite's: {failure}");
    assert!(failure.contains("data.a: expected \"c\", got \"b\""), "{failure}");
    assert!(slow.steps[0].collected.iter().any(|c| c.starts_with("events of")), "{:?}", slow.steps[0].collected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_cases_get_namespaces_of_their_own_which_are_deleted_after() {
    let b = Bench::start().await;
    for name in ["p1", "p2", "p3"] {
        b.file(name, "00-install.yaml", &config_map("same-name", "", &format!("case: {name}")));
        b.file(name, "00-assert.yaml", &config_map("same-name", "", &format!("case: {name}")));
    }
    let report = b.run(quick(20)).await;
    assert!(report.passed(), "{}", report.text());
    let mut namespaces: Vec<&str> = report.cases.iter().map(|c| c.namespace.as_str()).collect();
    namespaces.sort();
    namespaces.dedup();
    assert_eq!(namespaces.len(), 3, "one namespace per case: {namespaces:?}");
    let client = b.client();
    for namespace in namespaces {
        assert!(namespace.starts_with("kuttl-test-"), "{namespace}");
        let left = Api::<Namespace>::all(client.clone()).get_opt(namespace).await.unwrap_or_else(|e| panic!("{e}"));
        let gone = left.is_none_or(|n| n.metadata.deletion_timestamp.is_some());
        assert!(gone, "namespace {namespace} is deleted after its case");
        let maps = Api::<ConfigMap>::namespaced(client.clone(), namespace).get_opt("same-name").await;
        assert!(maps.ok().flatten().is_none_or(|m| m.metadata.deletion_timestamp.is_some()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_case_is_reported_in_text_and_junit_with_the_differing_field() {
    let b = Bench::start().await;
    b.file("good", "00-install.yaml", &config_map("cm", "", "a: b"));
    b.file("bad", "00-install.yaml", &config_map("cm", "", "a: b"));
    b.file("bad", "01-assert.yaml", &config_map("cm", "", "a: z"));
    let report = b.run(quick(1)).await;
    assert!(!report.passed());
    let text = report.text();
    assert!(text.contains("--- FAIL: tests/bad") && text.contains("--- PASS: tests/good"), "{text}");
    assert!(text.contains("step 01-assert failed"), "{text}");
    let junit = report.junit();
    assert!(junit.contains("<testsuite name=\"tests\" tests=\"2\" failures=\"1\""), "{junit}");
    assert!(junit.contains("<failure message=\"step 01-assert: not met within 1s:\""), "{junit}");
    assert!(junit.contains("data.a: expected &quot;z&quot;, got &quot;b&quot;"), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_sets_up_crds_manifests_and_background_commands_and_asserts_run_commands() {
    let b = Bench::start().await;
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}\n";
    let root = b.dir.path();
    std::fs::create_dir_all(root.join("crds")).unwrap();
    std::fs::write(root.join("crds/widget.yaml"), crd).unwrap();
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::write(root.join("manifests/shared.yaml"), config_map("shared", "", "from: manifests")).unwrap();
    // The CRD is served before any case runs: a case applies a Widget at once.
    b.file(
        "widget",
        "00-install.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {size: 3}\n",
    );
    let assert = "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ncommands:\n  - script: test -f \"$MARK\"\ncollectors:\n  - command: echo collected-output\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {size: 3}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: default\ndata: {from: manifests}\n";
    b.file("widget", "00-assert.yaml", &assert.replace("$MARK", &root.join("background-ran").display().to_string()));
    // An assert command that never succeeds fails the step, and the collector's output is shown.
    let count = root.join("assert-runs");
    let never = format!(
        "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: 1\ncommands:\n  - script: echo run >> {}; exit 1\ncollectors:\n  - command: echo collected-output\n",
        count.display()
    );
    b.file("never", "00-assert.yaml", &never);
    let suite = maestro_kuttl::model::Suite {
        crd_dir: Some("crds".into()),
        manifest_dirs: vec!["manifests".into()],
        commands: vec![maestro_kuttl::model::Command {
            script: format!("touch {}; sleep 60", root.join("background-ran").display()),
            background: true,
            ..Default::default()
        }],
        timeout: Some(20),
        ..Default::default()
    };
    let report = b.run(suite).await;
    assert!(report.setup.iter().any(|l| l.contains("1 CRDs from crds established")), "{:?}", report.setup);
    assert!(report.setup.iter().any(|l| l.contains("1 objects applied from manifests")), "{:?}", report.setup);
    assert!(case(&report, "widget").failure.is_none(), "{}", report.text());
    let never = &case(&report, "never").steps[0];
    assert!(never.failure.as_deref().unwrap_or_default().contains("exit status 1"), "{never:?}");
    // Nothing to watch: the command is looked at again once a second, not in a tight loop.
    let runs = std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    assert!((1..=3).contains(&runs), "the assert command ran {runs} times in one second");
    assert!(never.collected.iter().any(|c| c.contains("collected-output")), "{:?}", never.collected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_namespace_is_shared_and_skip_delete_keeps_what_the_cases_made() {
    let b = Bench::start().await;
    b.file("first", "00-install.yaml", &config_map("from-first", "", "a: b"));
    b.file("second", "00-install.yaml", &config_map("from-second", "", "a: b"));
    let suite = maestro_kuttl::model::Suite {
        namespace: Some("shared-tests".into()),
        skip_delete: true,
        timeout: Some(20),
        ..Default::default()
    };
    let report = b.run(suite).await;
    assert!(report.passed(), "{}", report.text());
    assert!(report.cases.iter().all(|c| c.namespace == "shared-tests"), "{}", report.text());
    let maps = Api::<ConfigMap>::namespaced(b.client(), "shared-tests");
    for name in ["from-first", "from-second"] {
        let kept = maps.get_opt(name).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(kept.is_some_and(|m| m.metadata.deletion_timestamp.is_none()), "{name} is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_namespace_outlives_each_case_and_goes_with_the_suite() {
    let b = Bench::start().await;
    b.file("fast", "00-install.yaml", &config_map("fast", "", "a: b"));
    // The slow case still needs its object after the fast case has ended.
    b.file("slow", "00-install.yaml", &config_map("slow", "", "a: b"));
    b.file("slow", "01-wait.yaml", "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n  - script: sleep 1\n");
    b.file("slow", "01-assert.yaml", &config_map("slow", "", "a: b"));
    let suite = maestro_kuttl::model::Suite {
        namespace: Some("shared-then-gone".into()),
        timeout: Some(5),
        ..Default::default()
    };
    let report = b.run(suite).await;
    assert!(report.passed(), "{}", report.text());
    let left = Api::<Namespace>::all(b.client()).get_opt("shared-then-gone").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(left.is_none_or(|n| n.metadata.deletion_timestamp.is_some()), "the suite made it, the suite deletes it");
}
