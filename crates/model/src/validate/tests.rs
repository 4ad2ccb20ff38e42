//! The structural checks, case by case.

use super::*;
use serde_json::json;

// ---- helpers -------------------------------------------------------------------------------

/// The conformance sample: what the e2e upgrade test sends.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "maestro-e2e-upgrade-test",
            "namespace": "default",
            "labels": {"app": "maestro-e2e-upgrade-test"}
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "maestro-e2e-upgrade-test"}},
            "template": {
                "metadata": {"labels": {"app": "maestro-e2e-upgrade-test"}},
                "spec": {"containers": [{"name": "nginx", "image": "quay.io/nginx/nginx-unprivileged"}]}
            }
        }
    })
}

fn sample_config() -> Value {
    json!({
        "resourceIdentifier": {
            "group": "apps", "resource": "deployments",
            "name": "maestro-e2e-upgrade-test", "namespace": "default"
        },
        "feedbackRules": [
            {"type": "JSONPaths", "jsonPaths": [{"name": "status", "path": ".status"}]},
            {"type": "WellKnownStatus"}
        ],
        "updateStrategy": {
            "type": "ServerSideApply",
            "serverSideApply": {"fieldManager": "maestro-agent", "force": true}
        }
    })
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
}

/// Violations of one manifest validated at the bundle API's first position.
fn manifest_violations(manifest: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    validate_manifest(manifest, "manifests[0]", &Limits::default(), &mut out);
    out
}

/// The deployment with one field replaced; `pointer` is a JSON pointer to an existing parent.
fn deployment_with(pointer: &str, key: &str, value: Value) -> Value {
    let mut manifest = deployment();
    if let Some(Value::Object(parent)) = manifest.pointer_mut(pointer) {
        parent.insert(key.to_owned(), value);
    }
    manifest
}

fn deployment_without(pointer: &str, key: &str) -> Value {
    let mut manifest = deployment();
    if let Some(Value::Object(parent)) = manifest.pointer_mut(pointer) {
        parent.remove(key);
    }
    manifest
}

fn config_violations(config: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    validate_manifest_config(config, "manifest_configs[0]", &mut out);
    out
}

fn delete_option_violations(option: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    validate_delete_option(option, "delete_option", &mut out);
    out
}

fn fields(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

fn assert_valid(violations: &[Violation]) {
    assert!(violations.is_empty(), "expected no violations, got {violations:#?}");
}

/// Exactly one violation, at `field`, whose message contains `fragment`.
fn assert_single(violations: &[Violation], field: &str, fragment: &str) {
    assert_eq!(fields(violations), [field], "violations: {violations:#?}");
    assert!(
        violations[0].message.contains(fragment),
        "message {:?} should contain {fragment:?}",
        violations[0].message
    );
}

// ---- conformance ---------------------------------------------------------------------------

#[test]
fn conformance_sample_bundle_passes_cleanly() {
    let violations = validate_bundle(
        &[deployment()],
        &[sample_config()],
        Some(&json!({"propagationPolicy": "Foreground"})),
        &Limits::default(),
    );
    assert_valid(&violations);
}

#[test]
fn default_limits_are_200_manifests_512_kib_and_2_mib() {
    let limits = Limits::default();
    assert_eq!(limits.max_manifests, 200);
    assert_eq!(limits.max_manifest_bytes, 512 * 1024);
    assert_eq!(limits.max_bundle_bytes, 2 * 1024 * 1024);
}

// ---- manifests -----------------------------------------------------------------------------

#[test]
fn manifest_must_be_a_json_object() {
    for not_object in [json!([]), json!("Deployment"), json!(null), json!(3)] {
        assert_single(&manifest_violations(&not_object), "manifests[0]", "must be a JSON object");
    }
}

#[test]
fn api_version_is_version_or_group_slash_version() {
    for valid in [
        "v1",
        "apps/v1",
        "cert-manager.io/v1",
        "networking.istio.io/v1alpha3",
        "autoscaling/v2beta2",
        "example.com/v1-preview",
    ] {
        assert_valid(&manifest_violations(&deployment_with("", "apiVersion", json!(valid))));
    }
    let field = "manifests[0].apiVersion";
    let cases = [
        (json!(""), "must be a string such as"),
        (json!(1), "found the number 1"),
        (json!("apps"), "\"apps\" does not start with 'v' and a digit"),
        (json!("apps/V1"), "does not start with 'v'"),
        (json!("Apps/v1"), "group in apiVersion must be a DNS subdomain"),
        (json!("/v1"), "group in apiVersion"),
        (json!("apps/"), "the version is empty"),
        (json!("apps/v1/x"), "a single '/'"),
    ];
    for (invalid, fragment) in cases {
        assert_single(&manifest_violations(&deployment_with("", "apiVersion", invalid)), field, fragment);
    }
    assert_single(&manifest_violations(&deployment_without("", "apiVersion")), field, "apiVersion is required");
}

#[test]
fn kind_starts_upper_case_is_alphanumeric_and_short() {
    for valid in ["Deployment", "ConfigMap", "HTTPRoute", "V1Thing"] {
        assert_valid(&manifest_violations(&deployment_with("", "kind", json!(valid))));
    }
    let field = "manifests[0].kind";
    let violations = manifest_violations(&deployment_with("", "kind", json!("deployment")));
    assert_eq!(violations[0].message, "kind must start with an upper-case letter, found \"deployment\"");
    let cases = [
        (json!("Config-Map"), "only letters and digits"),
        (json!("Déploiement"), "only letters and digits"),
        (json!(format!("A{}", "b".repeat(63))), "at most 63 characters"),
        (json!(""), "must be a string such as \"Deployment\""),
        (json!(true), "found the boolean true"),
    ];
    for (invalid, fragment) in cases {
        assert_single(&manifest_violations(&deployment_with("", "kind", invalid)), field, fragment);
    }
    assert_single(&manifest_violations(&deployment_without("", "kind")), field, "kind is required");
}

#[test]
fn metadata_must_be_an_object() {
    assert_single(
        &manifest_violations(&deployment_without("", "metadata")),
        "manifests[0].metadata",
        "metadata is required",
    );
    assert_single(
        &manifest_violations(&deployment_with("", "metadata", json!("web"))),
        "manifests[0].metadata",
        "must be an object, found \"web\"",
    );
}

#[test]
fn name_is_required_and_generate_name_is_not_supported() {
    let generated = deployment_with("/metadata", "generateName", json!("web-"));
    assert_single(&manifest_violations(&generated), "manifests[0].metadata.generateName", "not supported");

    let mut only_generated = deployment_without("/metadata", "name");
    if let Some(Value::Object(metadata)) = only_generated.pointer_mut("/metadata") {
        metadata.insert("generateName".into(), json!("web-"));
    }
    assert_eq!(
        fields(&manifest_violations(&only_generated)),
        ["manifests[0].metadata.name", "manifests[0].metadata.generateName"]
    );
    assert_single(
        &manifest_violations(&deployment_without("/metadata", "name")),
        "manifests[0].metadata.name",
        "does not support generateName",
    );
}

#[test]
fn name_is_a_dns_1123_subdomain() {
    for valid in ["web", "web-1", "0day", "web.example.com", &"a".repeat(253)] {
        assert_valid(&manifest_violations(&deployment_with("/metadata", "name", json!(valid))));
    }
    let cases = [
        ("Web", "'W' (upper-case letters are not allowed)"),
        ("web_1", "it contains '_'"),
        ("-web", "it starts with '-'"),
        ("web.", "it ends with '.'"),
        ("a..b", "\"..\""),
        ("a.-b", "\".-\""),
        ("a-.b", "\"-.\""),
        ("", "it is empty"),
    ];
    for (invalid, fragment) in cases {
        assert_single(
            &manifest_violations(&deployment_with("/metadata", "name", json!(invalid))),
            "manifests[0].metadata.name",
            fragment,
        );
    }
    let too_long = deployment_with("/metadata", "name", json!("a".repeat(254)));
    assert_single(&manifest_violations(&too_long), "manifests[0].metadata.name", "254 characters long");
}

#[test]
fn rbac_names_may_contain_colons_but_not_slashes() {
    let role = |name: &str| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}});
    assert_valid(&manifest_violations(&role("system:controller:web")));
    assert_single(&manifest_violations(&role("a/b")), "manifests[0].metadata.name", "'/'");
    assert_single(&manifest_violations(&role("..")), "manifests[0].metadata.name", "relative path segment");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a:b"}});
    assert_single(&manifest_violations(&config_map), "manifests[0].metadata.name", "contains ':'");
}

#[test]
fn validate_name_checks_consumer_and_bundle_names() {
    let mut out = Vec::new();
    validate_name("cluster-1", "name", &mut out);
    assert_valid(&out);
    validate_name("Cluster 1", "name", &mut out);
    assert_single(&out, "name", "DNS-1123 subdomain");
}

#[test]
fn namespace_is_an_optional_dns_1123_label() {
    assert_valid(&manifest_violations(&deployment_without("/metadata", "namespace")));
    for valid in [json!("kube-system"), json!(""), json!(null), json!("a".repeat(63))] {
        assert_valid(&manifest_violations(&deployment_with("/metadata", "namespace", valid)));
    }
    let field = "manifests[0].metadata.namespace";
    let cases = [
        (json!("Default"), "upper-case"),
        (json!("team.a"), "it contains '.'"),
        (json!("a".repeat(64)), "64 characters long"),
        (json!(7), "must be a string"),
    ];
    for (invalid, fragment) in cases {
        assert_single(&manifest_violations(&deployment_with("/metadata", "namespace", invalid)), field, fragment);
    }
}

#[test]
fn label_keys_are_optional_prefix_and_name() {
    let valid = json!({
        "app": "web", "app.kubernetes.io/name": "web", "example.com/Tier_1.x": "a",
        &"k".repeat(63): "v"
    });
    let mut out = Vec::new();
    validate_labels(&valid, "labels", &mut out);
    assert_valid(&out);

    let cases = [
        ("bad key", "it contains ' '"),
        ("/name", "prefix before '/' is empty"),
        ("Example.com/name", "prefix \"Example.com\" is not a DNS subdomain"),
        ("a/b/c", "more than one '/'"),
        ("example.com/", "after the prefix, it is empty"),
        ("_app", "it starts with '_'"),
        ("app.", "it ends with '.'"),
    ];
    for (key, fragment) in cases {
        let mut out = Vec::new();
        validate_labels(&json!({key: "v"}), "labels", &mut out);
        assert_single(&out, &field("labels", key), fragment);
    }
    let mut out = Vec::new();
    validate_labels(&json!({"k".repeat(64): "v"}), "labels", &mut out);
    assert_single(&out, &field("labels", &"k".repeat(64)), "64 characters long");
}

#[test]
fn label_values_are_short_strings_or_empty() {
    let mut out = Vec::new();
    validate_labels(&json!({"a": "", "b": "v1.2_rc-3", "c": "x".repeat(63)}), "labels", &mut out);
    assert_valid(&out);
    let cases = [
        (json!("has space"), "it contains ' '"),
        (json!("-v"), "it starts with '-'"),
        (json!("x".repeat(64)), "64 characters long"),
        (json!(1), "must be a string, found the number 1"),
        (json!(null), "must be a string, found null"),
    ];
    for (value, fragment) in cases {
        let mut out = Vec::new();
        validate_labels(&json!({"app": value}), "labels", &mut out);
        assert_single(&out, "labels.app", fragment);
    }
}

#[test]
fn labels_must_be_a_map_and_null_means_none() {
    let mut out = Vec::new();
    validate_labels(&json!(null), "labels", &mut out);
    assert_valid(&out);
    validate_labels(&json!(["app=web"]), "labels", &mut out);
    assert_single(&out, "labels", "must be an object mapping keys to string values, found a list");
    let in_manifest = deployment_with("/metadata", "labels", json!({"app": 1}));
    assert_single(&manifest_violations(&in_manifest), "manifests[0].metadata.labels.app", "must be a string");
}

#[test]
fn annotation_values_are_strings_and_keys_follow_label_rules() {
    let valid = json!({"kubernetes.io/description": "any text at all, even: spaces!", "note": ""});
    assert_valid(&manifest_violations(&deployment_with("/metadata", "annotations", valid)));

    let numeric = deployment_with("/metadata", "annotations", json!({"replicas": 3}));
    assert_single(&manifest_violations(&numeric), "manifests[0].metadata.annotations.replicas", "must be a string");
    let bad_key = deployment_with("/metadata", "annotations", json!({"bad key": "x"}));
    assert_single(
        &manifest_violations(&bad_key),
        "manifests[0].metadata.annotations[\"bad key\"]",
        "annotation key must be",
    );
    let not_map = deployment_with("/metadata", "annotations", json!("x"));
    assert_single(&manifest_violations(&not_map), "manifests[0].metadata.annotations", "must be an object");
}

#[test]
fn map_keys_that_are_not_identifiers_are_quoted_in_paths() {
    assert_eq!(field("m.labels", "app"), "m.labels.app");
    assert_eq!(field("m.labels", "app.kubernetes.io/name"), "m.labels[\"app.kubernetes.io/name\"]");
    assert_eq!(field("", "metadata"), "metadata");
    let mut out = Vec::new();
    validate_manifest(&deployment_without("/metadata", "name"), "", &Limits::default(), &mut out);
    assert_eq!(fields(&out), ["metadata.name"]);
}

#[test]
fn manifest_size_is_limited_and_the_message_names_size_and_limit() {
    let limits = Limits { max_manifest_bytes: 100, ..Limits::default() };
    let manifest = deployment();
    let size = serde_json::to_vec(&manifest).map(|bytes| bytes.len()).unwrap_or_default();
    let mut out = Vec::new();
    validate_manifest(&manifest, "manifests[0]", &limits, &mut out);
    assert_single(&out, "manifests[0]", &format!("{size} bytes as JSON, more than the limit of 100 bytes"));

    let exact = Limits { max_manifest_bytes: size, ..Limits::default() };
    let mut out = Vec::new();
    validate_manifest(&manifest, "manifests[0]", &exact, &mut out);
    assert_valid(&out);
    assert_eq!(describe_bytes(512 * 1024), "524288 bytes (512 KiB)");
}

// ---- bundles -------------------------------------------------------------------------------

#[test]
fn bundle_needs_at_least_one_manifest() {
    let violations = validate_bundle(&[], &[], None, &Limits::default());
    assert_single(&violations, "manifests", "at least one manifest");
}

#[test]
fn bundle_holds_at_most_max_manifests() {
    let limits = Limits { max_manifests: 2, ..Limits::default() };
    let manifests: Vec<Value> = ["a", "b", "c"].into_iter().map(config_map).collect();
    assert_single(&validate_bundle(&manifests, &[], None, &limits), "manifests", "at most 2 manifests, found 3");
    assert_valid(&validate_bundle(&manifests[..2], &[], None, &limits));
}

#[test]
fn bundle_total_size_is_limited() {
    let manifests: Vec<Value> = ["a", "b"].into_iter().map(config_map).collect();
    let one = serialized_len(&manifests[0]);
    let limits = Limits { max_bundle_bytes: one * 2 - 1, ..Limits::default() };
    assert_single(&validate_bundle(&manifests, &[], None, &limits), "manifests", "more than the bundle limit");
    let enough = Limits { max_bundle_bytes: one * 2, ..Limits::default() };
    assert_valid(&validate_bundle(&manifests, &[], None, &enough));
}

#[test]
fn duplicate_manifests_are_reported_on_the_later_one() {
    let mut newer_version = deployment();
    newer_version["apiVersion"] = json!("apps/v1beta2");
    let manifests = [deployment(), config_map("web"), newer_version];
    let violations = validate_bundle(&manifests, &[], None, &Limits::default());
    assert_single(&violations, "manifests[2]", "duplicates manifests[0]");
    assert!(violations[0].message.contains("Deployment.apps default/maestro-e2e-upgrade-test"));

    let mut other_namespace = config_map("web");
    other_namespace["metadata"]["namespace"] = json!("other");
    let mut cluster_scoped = config_map("web");
    cluster_scoped["metadata"] = json!({"name": "web"});
    let distinct = [config_map("web"), other_namespace, cluster_scoped, config_map("web2")];
    assert_valid(&validate_bundle(&distinct, &[], None, &Limits::default()));
}

#[test]
fn object_key_identifies_group_version_kind_namespace_and_name() {
    let key = object_key(&deployment());
    assert_eq!(
        key,
        Some(ObjectKey {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("default".into()),
            name: "maestro-e2e-upgrade-test".into(),
        })
    );
    let core = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "namespace": ""}});
    let key = object_key(&core);
    assert_eq!(key.as_ref().map(|k| (k.group.as_str(), k.namespace.clone())), Some(("", None)));
    assert_eq!(key.map(|k| k.to_string()).as_deref(), Some("Namespace team"));
    assert_eq!(object_key(&deployment_without("/metadata", "name")), None);
    assert_eq!(object_key(&json!("x")), None);
}

#[test]
fn resource_for_kind_guesses_the_plural_resource_name() {
    let cases = [
        ("Deployment", "deployments"),
        ("ConfigMap", "configmaps"),
        ("NetworkPolicy", "networkpolicies"),
        ("Ingress", "ingresses"),
        ("IngressClass", "ingressclasses"),
        ("Endpoints", "endpoints"),
        ("EndpointSlice", "endpointslices"),
        ("Gateway", "gateways"),
        ("Prometheus", "prometheuses"),
        ("Mesh", "meshes"),
        ("Service", "services"),
    ];
    for (kind, resource) in cases {
        assert_eq!(resource_for_kind(kind), resource, "kind {kind}");
    }
}

// ---- manifest configs ----------------------------------------------------------------------

#[test]
fn config_resource_identifier_needs_resource_and_name() {
    assert_valid(&config_violations(&sample_config()));
    let core = json!({"resourceIdentifier": {"resource": "configmaps", "name": "web"}});
    assert_valid(&config_violations(&core));

    assert_single(&config_violations(&json!({})), "manifest_configs[0].resourceIdentifier", "is required");
    let cases = [
        (json!({"name": "web"}), "manifest_configs[0].resourceIdentifier.resource", "resource is required"),
        (json!({"resource": "pods", "name": ""}), "manifest_configs[0].resourceIdentifier.name", "found \"\""),
        (
            json!({"resource": "pods", "name": "w", "group": 1}),
            "manifest_configs[0].resourceIdentifier.group",
            "must be a string",
        ),
        (
            json!({"resource": "pods", "name": "w", "namespace": []}),
            "manifest_configs[0].resourceIdentifier.namespace",
            "must be a string",
        ),
        (json!("pods/web"), "manifest_configs[0].resourceIdentifier", "must be a JSON object"),
    ];
    for (identifier, field, fragment) in cases {
        assert_single(&config_violations(&json!({"resourceIdentifier": identifier})), field, fragment);
    }
    assert_single(&config_violations(&json!(1)), "manifest_configs[0]", "must be a JSON object");
}

#[test]
fn config_must_match_a_manifest_of_the_bundle() {
    let check = |identifier: Value| {
        let config = json!({"resourceIdentifier": identifier});
        validate_bundle(&[deployment(), config_map("settings")], &[config], None, &Limits::default())
    };
    let field = "manifest_configs[0].resourceIdentifier";
    for matching in [
        json!({"group": "apps", "resource": "deployments", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
        json!({"resource": "configmaps", "namespace": "default", "name": "settings"}),
        json!({"group": "apps", "resource": "deployments", "namespace": "*", "name": "maestro-*"}),
        json!({"group": "", "resource": "*", "namespace": "default", "name": "*"}),
    ] {
        assert_valid(&check(matching));
    }
    for mismatch in [
        json!({"group": "apps", "resource": "deployment", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
        json!({"resource": "deployments", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
        json!({"group": "apps", "resource": "deployments", "name": "maestro-e2e-upgrade-test"}),
        json!({"resource": "configmaps", "namespace": "default", "name": "other-*"}),
    ] {
        assert_single(&check(mismatch), field, "matches no manifest in the bundle");
    }
}

#[test]
fn each_object_is_configured_at_most_once() {
    let violations = validate_bundle(&[deployment()], &[sample_config(), sample_config()], None, &Limits::default());
    assert_single(
        &violations,
        "manifest_configs[1].resourceIdentifier",
        "duplicates the resourceIdentifier of manifest_configs[0]",
    );
}

#[test]
fn feedback_rule_type_is_json_paths_or_well_known_status() {
    let with_rules =
        |rules: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "feedbackRules": rules});
    assert_valid(&config_violations(&with_rules(json!([{"type": "WellKnownStatus"}]))));
    let cases = [
        (
            json!([{"type": "jsonpaths", "jsonPaths": [{"name": "a", "path": ".a"}]}]),
            "manifest_configs[0].feedbackRules[0].type",
            "did you mean \"JSONPaths\"?",
        ),
        (
            json!([{}]),
            "manifest_configs[0].feedbackRules[0].type",
            "type is required: one of JSONPaths, WellKnownStatus",
        ),
        (
            json!([{"type": "WellKnownStatus", "jsonPaths": [{"name": "a", "path": ".a"}]}]),
            "manifest_configs[0].feedbackRules[0].jsonPaths",
            "only allowed with type JSONPaths",
        ),
        (json!({"type": "WellKnownStatus"}), "manifest_configs[0].feedbackRules", "must be a list"),
    ];
    for (rules, field, fragment) in cases {
        assert_single(&config_violations(&with_rules(rules)), field, fragment);
    }
}

#[test]
fn json_paths_rules_need_unique_names_and_dotted_paths() {
    let with_paths = |paths: Value| {
        json!({
            "resourceIdentifier": {"resource": "pods", "name": "w"},
            "feedbackRules": [{"type": "JSONPaths", "jsonPaths": paths}]
        })
    };
    assert_valid(&config_violations(&with_paths(json!([
        {"name": "ready", "path": ".status.readyReplicas"},
        {"name": "replicas", "path": ".spec.replicas", "version": "v1"}
    ]))));
    let base = "manifest_configs[0].feedbackRules[0].jsonPaths";
    let cases = [
        (json!([]), base.to_owned(), "at least one"),
        (json!([{"path": ".a"}]), format!("{base}[0].name"), "name is required"),
        (json!([{"name": "a", "path": "status"}]), format!("{base}[0].path"), "starting with '.', such as"),
        (json!([{"name": "a"}]), format!("{base}[0].path"), "path is required"),
        (json!([{"name": "a", "path": ".a", "version": 1}]), format!("{base}[0].version"), "must be a string"),
        (json!(["name=.a"]), format!("{base}[0]"), "must be a JSON object"),
    ];
    for (paths, field, fragment) in cases {
        assert_single(&config_violations(&with_paths(paths)), &field, fragment);
    }
    let config =
        json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "feedbackRules": [{"type": "JSONPaths"}]});
    assert_single(
        &config_violations(&config),
        "manifest_configs[0].feedbackRules[0].jsonPaths",
        "jsonPaths is required",
    );

    let repeated_across_rules = json!({
        "resourceIdentifier": {"resource": "pods", "name": "w"},
        "feedbackRules": [
            {"type": "JSONPaths", "jsonPaths": [{"name": "a", "path": ".a"}]},
            {"type": "JSONPaths", "jsonPaths": [{"name": "a", "path": ".b"}]}
        ]
    });
    assert_single(
        &config_violations(&repeated_across_rules),
        "manifest_configs[0].feedbackRules[1].jsonPaths[0].name",
        "already used by manifest_configs[0].feedbackRules[0].jsonPaths[0].name",
    );
}

#[test]
fn update_strategy_type_is_one_of_four() {
    let with_strategy =
        |strategy: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "updateStrategy": strategy});
    for valid in ["ServerSideApply", "Update", "CreateOnly", "ReadOnly"] {
        assert_valid(&config_violations(&with_strategy(json!({"type": valid}))));
    }
    let field = "manifest_configs[0].updateStrategy.type";
    assert_single(
        &config_violations(&with_strategy(json!({"type": "Replace"}))),
        field,
        "one of ServerSideApply, Update, CreateOnly, ReadOnly, found \"Replace\"",
    );
    assert_single(&config_violations(&with_strategy(json!({}))), field, "type is required");
    assert_single(
        &config_violations(&with_strategy(json!("Update"))),
        "manifest_configs[0].updateStrategy",
        "must be a JSON object",
    );
}

#[test]
fn drift_policy_is_correct_or_report_only() {
    let with_policy =
        |policy: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "driftPolicy": policy});
    for valid in ["Correct", "ReportOnly"] {
        assert_valid(&config_violations(&with_policy(json!(valid))));
    }
    assert_single(
        &config_violations(&with_policy(json!("Ignore"))),
        "manifest_configs[0].driftPolicy",
        "one of Correct, ReportOnly, found \"Ignore\"",
    );
}

#[test]
fn server_side_apply_options_only_with_server_side_apply() {
    let with_options = |strategy_type: &str, options: Value| {
        json!({
            "resourceIdentifier": {"resource": "pods", "name": "w"},
            "updateStrategy": {"type": strategy_type, "serverSideApply": options}
        })
    };
    assert_valid(&config_violations(&with_options("ServerSideApply", json!({}))));
    assert_valid(&config_violations(&with_options(
        "ServerSideApply",
        json!({"fieldManager": "m".repeat(128), "force": false}),
    )));
    let base = "manifest_configs[0].updateStrategy.serverSideApply";
    assert_single(
        &config_violations(&with_options("Update", json!({"force": true}))),
        base,
        "only allowed with type ServerSideApply, found type \"Update\"",
    );
    let cases = [
        (json!({"fieldManager": ""}), format!("{base}.fieldManager"), "non-empty string of at most 128"),
        (json!({"fieldManager": "m".repeat(129)}), format!("{base}.fieldManager"), "(129 characters)"),
        (json!({"fieldManager": 5}), format!("{base}.fieldManager"), "found the number 5"),
        (json!({"force": "yes"}), format!("{base}.force"), "true or false, found \"yes\""),
    ];
    for (options, field, fragment) in cases {
        assert_single(&config_violations(&with_options("ServerSideApply", options)), &field, fragment);
    }
}

#[test]
fn unknown_keys_in_configs_are_violations() {
    let mut config = sample_config();
    config["updateStrategy"]["serverSideApply"]["fieldManger"] = json!("x");
    config["feedbackRule"] = json!([]);
    config["resourceIdentifier"]["kind"] = json!("Deployment");
    let violations = config_violations(&config);
    assert_eq!(
        fields(&violations),
        [
            "manifest_configs[0].feedbackRule",
            "manifest_configs[0].resourceIdentifier.kind",
            "manifest_configs[0].updateStrategy.serverSideApply.fieldManger",
        ]
    );
    assert!(violations[0].message.contains("did you mean \"feedbackRules\"?"));
    assert!(violations[1].message.contains("allowed fields are group, resource, name, namespace"));
    assert!(violations[2].message.contains("did you mean \"fieldManager\"?"));

    let mut snake = sample_config();
    snake["update_strategy"] = json!({"type": "Update"});
    assert!(config_violations(&snake)[0].message.contains("did you mean \"updateStrategy\"?"));
}

// ---- delete option -------------------------------------------------------------------------

#[test]
fn delete_option_policy_is_foreground_orphan_or_selectively_orphan() {
    for valid in ["Foreground", "Orphan"] {
        assert_valid(&delete_option_violations(&json!({"propagationPolicy": valid})));
    }
    let field = "delete_option.propagationPolicy";
    assert_single(
        &delete_option_violations(&json!({"propagationPolicy": "Background"})),
        field,
        "one of Foreground, Orphan, SelectivelyOrphan",
    );
    assert_single(&delete_option_violations(&json!({})), field, "is required");
    assert_single(&delete_option_violations(&json!("Orphan")), "delete_option", "must be a JSON object");
    assert_single(
        &delete_option_violations(&json!({"propagationPolicy": "Orphan", "gracePeriod": 5})),
        "delete_option.gracePeriod",
        "unknown field",
    );
}

#[test]
fn selectively_orphans_goes_with_selectively_orphan_only() {
    let rules = json!({"orphaningRules": [{"group": "", "resource": "configmaps", "name": "x", "namespace": "ns"}]});
    assert_valid(&delete_option_violations(
        &json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": rules}),
    ));
    let field = "delete_option.selectivelyOrphans";
    assert_single(
        &delete_option_violations(&json!({"propagationPolicy": "SelectivelyOrphan"})),
        field,
        "required when propagationPolicy is SelectivelyOrphan",
    );
    assert_single(
        &delete_option_violations(&json!({"propagationPolicy": "Orphan", "selectivelyOrphans": rules})),
        field,
        "only allowed when propagationPolicy is SelectivelyOrphan, found \"Orphan\"",
    );
}

#[test]
fn orphaning_rules_need_resource_and_name() {
    let with_rules = |rules: Value| json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {"orphaningRules": rules}});
    let base = "delete_option.selectivelyOrphans.orphaningRules";
    let cases = [
        (json!([]), base.to_owned(), "at least one object"),
        (json!({}), base.to_owned(), "must be a list"),
        (json!([{"name": "x"}]), format!("{base}[0].resource"), "resource is required"),
        (json!([{"resource": "configmaps"}]), format!("{base}[0].name"), "name is required"),
        (
            json!([{"resource": "configmaps", "name": "x", "kind": "ConfigMap"}]),
            format!("{base}[0].kind"),
            "unknown field",
        ),
    ];
    for (rules, field, fragment) in cases {
        assert_single(&delete_option_violations(&with_rules(rules)), &field, fragment);
    }
    let no_rules = json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {}});
    assert_single(&delete_option_violations(&no_rules), base, "orphaningRules is required");
}

#[test]
fn null_delete_option_counts_as_none() {
    assert_valid(&validate_bundle(&[deployment()], &[], Some(&Value::Null), &Limits::default()));
}

// ---- reporting -----------------------------------------------------------------------------

#[test]
fn all_violations_are_collected_at_once() {
    let broken = json!({
        "apiVersion": "apps",
        "kind": "deployment",
        "metadata": {"namespace": "Default", "labels": {"app": "web server"}, "annotations": {"n": 1}}
    });
    let mut config = sample_config();
    config["updateStrategy"]["type"] = json!("Patch");
    config["feedbackRules"][0]["jsonPaths"][0]["path"] = json!("status");
    let violations = validate_bundle(
        &[deployment(), broken, deployment()],
        &[config],
        Some(&json!({"propagationPolicy": "Orphan", "selectivelyOrphans": {"orphaningRules": []}})),
        &Limits::default(),
    );
    assert_eq!(
        fields(&violations),
        [
            "manifests[1].apiVersion",
            "manifests[1].kind",
            "manifests[1].metadata.name",
            "manifests[1].metadata.namespace",
            "manifests[1].metadata.labels.app",
            "manifests[1].metadata.annotations.n",
            "manifests[2]",
            "manifest_configs[0].feedbackRules[0].jsonPaths[0].path",
            "manifest_configs[0].updateStrategy.type",
            "delete_option.selectivelyOrphans",
            "delete_option.selectivelyOrphans.orphaningRules",
        ],
        "{violations:#?}"
    );
}

#[test]
fn violations_serialize_as_field_and_message() {
    let violation = Violation { field: "manifests[0].kind".into(), message: "kind is required".into() };
    assert_eq!(
        serde_json::to_value(&violation).ok(),
        Some(json!({"field": "manifests[0].kind", "message": "kind is required"}))
    );
    assert_eq!(violation.to_string(), "manifests[0].kind: kind is required");
}

#[test]
fn long_values_are_cut_short_in_messages() {
    let long = "x".repeat(300);
    assert_eq!(quote(&long), format!("\"{}\"... (300 characters)", "x".repeat(64)));
    assert_eq!(quote("a\"b"), "\"a\\\"b\"");
}
