//! `KudoOperator` tasks: flink's financial-fraud demo installs its dependencies (zookeeper,
//! kafka, flink) as child Instances, resolved at install time from a repository as KUDO's CLI
//! resolves them.

use std::time::Duration;

use maestro::cli::package_source::SourceArgs;
use maestro_package::index::{Entry, IndexFile};
use maestro_package::{Limits, archive, read_path};

use crate::{Cluster, eventually, package_dir, tree};

/// A repository folder holding the versions the demo pins (zookeeper 0.3.1, kafka 1.3.1,
/// flink 0.2.1). The conformance set has one version of each; the older pins are made from
/// them by changing only the version fields, which is all resolution looks at.
fn pinned_repository(root: &std::path::Path) {
    let mut index = IndexFile::new("2026-12-06T00:00:00Z".into());
    for (name, operator_version, app_version) in
        [("zookeeper", "0.3.1", "3.4.14"), ("kafka", "1.3.1", "2.5.0"), ("flink", "0.2.1", "1.7.2")]
    {
        let copy = root.join("src").join(name);
        copy_dir(&package_dir(&format!("{name}/operator")), &copy);
        let file = copy.join("operator.yaml");
        let text: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|line| match line {
                l if l.starts_with("operatorVersion:") => format!("operatorVersion: \"{operator_version}\""),
                l if l.starts_with("appVersion:") => format!("appVersion: \"{app_version}\""),
                l => l.to_string(),
            })
            .collect();
        std::fs::write(&file, text.join("\n")).unwrap();
        let package = read_path(&copy, &Limits::default()).unwrap();
        let bytes = archive::create(&package).unwrap();
        std::fs::write(root.join(package.operator.archive_name()), &bytes).unwrap();
        index.add(Entry::of(&package, &bytes, ""), true);
    }
    std::fs::write(root.join("index.yaml"), index.to_yaml()).unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_demo_creates_its_dependencies_as_child_instances_and_a_failed_child_fails_the_parent() {
    let repo = tempfile::tempdir().unwrap();
    pinned_repository(repo.path());
    let source = SourceArgs { repo: Some(repo.path().to_str().unwrap().into()), ..SourceArgs::default() };
    let demo = package_dir("flink/docs/demo/financial-fraud/demo-operator");
    let packages = maestro::cli::operator::install::resolve_tree(demo.to_str().unwrap(), &source).await.unwrap();
    let names: Vec<String> = packages.iter().map(|p| p.operator.operator_version_name()).collect();
    assert_eq!(names, ["kafka-2.5.0-1.3.1", "zookeeper-3.4.14-0.3.1", "flink-1.7.2-0.2.1", "flink-demo-0.1.6"]);

    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install_packages(&packages, "fraud", Some(("demo", &[]))).await;
    let zk = cluster.wait_plan("fraud", "zk", "deploy", "COMPLETE").await;
    assert!(tree(&zk).iter().all(|s| s.ends_with("=COMPLETE")), "{:?}", tree(&zk));
    let child = cluster.instance("fraud", "zk").await;
    assert_eq!(child.spec.parameters["CPUS"], "0.3", "the parameter file's values");
    let sts = cluster.object("apps/v1", "StatefulSet", "fraud", "zk-zookeeper").await.expect("zookeeper's StatefulSet");
    let requests = &sts["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"];
    assert_eq!(requests["cpu"], "300m", "a quantity reads back as the API server writes it: {requests}");
    let owner = &child.metadata.rest["ownerReferences"][0];
    assert_eq!((owner["kind"].as_str(), owner["name"].as_str()), (Some("Instance"), Some("demo")));

    // kafka's deploy starts with a Pipe task, which the simulator cannot run: the child fails,
    // and its parent's step with it, naming the child and the reason.
    cluster.wait_plan("fraud", "kafka", "deploy", "FATAL_ERROR").await;
    let parent = cluster.wait_plan("fraud", "demo", "deploy", "FATAL_ERROR").await;
    assert_eq!(
        tree(&parent)[..3],
        ["dependencies=FATAL_ERROR", "dependencies.zookeeper=COMPLETE", "dependencies.kafka=FATAL_ERROR"]
    );
    let message = &parent.phases[0].steps[1].message;
    assert!(
        message.contains("instance fraud/kafka: plan deploy failed") && message.contains("PipeTaskError"),
        "{message}"
    );

    // Deleting the parent collects its children.
    cluster.instances("fraud").delete("demo", &Default::default()).await.unwrap();
    eventually("the children collected", || async {
        cluster.instances("fraud").get_opt("zk").await.unwrap().is_none().then_some(())
    })
    .await;
}
