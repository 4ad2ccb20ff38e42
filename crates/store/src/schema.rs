//! What each list endpoint lets a client search and sort by. Only these names ever reach SQL,
//! and each maps to a fixed column.

use maestro_search::{Field, FieldKind, Schema};

const fn field(name: &'static str, kind: FieldKind, sortable: bool) -> Field {
    Field { name, column: name, kind, sortable }
}

pub static CONSUMERS: Schema = Schema {
    resource: "consumers",
    fields: &[
        field("id", FieldKind::Text, true),
        field("name", FieldKind::Text, true),
        field("labels", FieldKind::Labels, false),
        field("created_at", FieldKind::Time, true),
        field("updated_at", FieldKind::Time, true),
    ],
};

const BUNDLE_FIELDS: &[Field] = &[
    field("id", FieldKind::Text, true),
    field("name", FieldKind::Text, true),
    field("consumer_name", FieldKind::Text, true),
    field("version", FieldKind::Int, true),
    field("labels", FieldKind::Labels, false),
    field("manifest_labels", FieldKind::ManifestLabels, false),
    field("created_at", FieldKind::Time, true),
    field("updated_at", FieldKind::Time, true),
    field("deleted_at", FieldKind::Time, true),
];

pub static BUNDLES: Schema = Schema { resource: "resource-bundles", fields: BUNDLE_FIELDS };
pub static RESOURCES: Schema = Schema { resource: "resources", fields: BUNDLE_FIELDS };
