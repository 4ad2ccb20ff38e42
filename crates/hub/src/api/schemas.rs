//! Schemas of the OCM-shaped parts of bundles, for the OpenAPI document only: the API passes
//! these parts through as JSON (checked by `maestro_model::validate`, read by
//! `maestro_model::config`), and these types say what that JSON looks like, with OCM's field
//! names, so that clients and generators see more than "object".

#![allow(dead_code)]

use utoipa::ToSchema;

/// Which object of the bundle a manifest config or an orphaning rule is about. `name` and
/// `namespace` may use `*` wildcards; `resource` is the plural (`deployments`), `*` for any.
#[derive(ToSchema)]
pub struct ResourceIdentifier {
    /// Empty for the core group.
    group: Option<String>,
    #[schema(min_length = 1)]
    resource: String,
    #[schema(min_length = 1)]
    name: String,
    namespace: Option<String>,
}

#[derive(ToSchema)]
pub enum FeedbackRuleType {
    WellKnownStatus,
    #[schema(rename = "JSONPaths")]
    JsonPaths,
}

#[derive(ToSchema)]
pub struct JsonPath {
    name: String,
    /// A JSONPath into the object, e.g. `.status.readyReplicas`.
    path: String,
    version: Option<String>,
}

/// A status feedback rule: well-known status fields, or named JSONPaths.
#[derive(ToSchema)]
pub struct FeedbackRule {
    #[schema(rename = "type")]
    kind: FeedbackRuleType,
    /// Only with type `JSONPaths`.
    #[schema(rename = "jsonPaths")]
    json_paths: Option<Vec<JsonPath>>,
}

#[derive(ToSchema)]
pub enum UpdateStrategyType {
    ServerSideApply,
    Update,
    CreateOnly,
    ReadOnly,
}

#[derive(ToSchema)]
pub struct ServerSideApplyConfig {
    #[schema(rename = "fieldManager", max_length = 128)]
    field_manager: Option<String>,
    /// Defaults to true: correcting drift takes fields back.
    force: Option<bool>,
}

/// How the agent writes the manifest.
#[derive(ToSchema)]
pub struct UpdateStrategy {
    #[schema(rename = "type")]
    kind: UpdateStrategyType,
    /// Only with type `ServerSideApply`.
    #[schema(rename = "serverSideApply")]
    server_side_apply: Option<ServerSideApplyConfig>,
}

#[derive(ToSchema)]
pub enum DriftPolicy {
    Correct,
    ReportOnly,
}

/// What the agent does with one manifest of the bundle (OCM's ManifestConfigOption).
#[derive(ToSchema)]
pub struct ManifestConfig {
    #[schema(rename = "resourceIdentifier")]
    resource_identifier: ResourceIdentifier,
    #[schema(rename = "feedbackRules")]
    feedback_rules: Option<Vec<FeedbackRule>>,
    #[schema(rename = "updateStrategy")]
    update_strategy: Option<UpdateStrategy>,
    /// Maestro's own: restore drifted objects (default) or only report them.
    #[schema(rename = "driftPolicy")]
    drift_policy: Option<DriftPolicy>,
}

#[derive(ToSchema)]
pub enum PropagationPolicy {
    Foreground,
    Orphan,
    SelectivelyOrphan,
}

#[derive(ToSchema)]
pub struct SelectivelyOrphans {
    #[schema(rename = "orphaningRules")]
    orphaning_rules: Vec<ResourceIdentifier>,
}

/// What deleting the bundle does to its objects.
#[derive(ToSchema)]
pub struct DeleteOption {
    #[schema(rename = "propagationPolicy")]
    propagation_policy: Option<PropagationPolicy>,
    /// Only with `SelectivelyOrphan`.
    #[schema(rename = "selectivelyOrphans")]
    selectively_orphans: Option<SelectivelyOrphans>,
}

/// The status the bundle's agent last reported (empty until it reports).
#[derive(ToSchema)]
pub struct BundleStatus {
    /// The bundle version the status describes.
    #[schema(rename = "ObservedVersion")]
    observed_version: Option<i64>,
    /// The agent's sequence id (decimal), bounded by the hub's clock.
    #[schema(rename = "SequenceID")]
    sequence_id: Option<String>,
    #[schema(rename = "statusHash")]
    status_hash: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    conditions: Option<Vec<serde_json::Value>>,
    #[schema(rename = "resourceStatus", value_type = Option<Vec<Object>>)]
    resource_status: Option<Vec<serde_json::Value>>,
}
