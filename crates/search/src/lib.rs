//! The `search` and `orderBy` query languages of the REST list endpoints.
//!
//! List endpoints let people narrow results with a small boolean language
//! rather than one query parameter per column, because the useful questions
//! ("prod bundles whose manifests run nginx, created this year") combine
//! fields freely. This module turns that text into a SQL fragment plus the
//! values to bind, for PostgreSQL and SQLite alike.
//!
//! # The language
//!
//! ```text
//! expr       := or
//! or         := and ('or' and)*
//! and        := unary ('and' unary)*
//! unary      := 'not' unary | '(' expr ')' | comparison
//! comparison := field op value
//!             | field ['not'] 'in' '(' value (',' value)* ')'
//!             | field ['not'] 'like' string
//!             | field 'is' ['not'] 'null'
//! op         := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//! value      := 'single quoted' ('' is a quote) | integer | true | false
//! field      := [A-Za-z_][A-Za-z0-9_./-]*     (labels: <name>.<label key>)
//! ```
//!
//! Keywords and field names are case-insensitive; label keys and values are
//! not, because Kubernetes treats them as exact strings.
//!
//! For example:
//!
//! ```text
//! consumer_name = 'c1' and version > 2
//! labels.env = 'prod' and not labels.tier in ('db')
//! labels.app.kubernetes.io/name = 'web' or manifest_labels.app like 'ngin%'
//! deleted_at is null and created_at >= '2026-01-01'
//! ```
//!
//! # Meaning, identical on both databases
//!
//! * `like` uses `%` and `_` as wildcards and `\` to escape them. It is
//!   case-sensitive everywhere: SQLite's own `LIKE` ignores ASCII case, so on
//!   SQLite the pattern is rewritten into an equivalent `GLOB`.
//! * A row that lacks a label never satisfies a positive test of that label
//!   and always satisfies a negated one (`!=`, `not in`, `not like`, or a
//!   `not` around it), the way Kubernetes label selectors behave. To make
//!   that hold under any nesting, `not` is pushed down to the comparisons
//!   (De Morgan), where each label test has an explicit negative form.
//! * `manifest_labels.<key>` tests hold when ANY manifest in the bundle has a
//!   matching label; their negations hold when NO manifest does.
//! * Plain columns follow SQL's usual NULL rules: `version != 3` does not
//!   match rows whose version is NULL; ask with `is null` for those.
//! * Ordering comparisons on text use the database's collation, which on
//!   PostgreSQL may differ from SQLite's byte order for mixed-case text.
//!
//! # Safety
//!
//! Every value from the input is bound as a parameter. The only text copied
//! into SQL comes from the caller's [`Schema`] (column names), which is why
//! those are `&'static str`: they must be compile-time constants.
//!
//! Input is bounded (see [`MAX_INPUT_CHARS`], [`MAX_DEPTH`],
//! [`MAX_COMPARISONS`], [`MAX_IN_VALUES`]) so a hostile query string costs
//! little to reject and cannot exhaust the stack.

mod lexer;
mod parser;
mod sql;

pub use lexer::MAX_INPUT_CHARS;
pub use parser::{MAX_COMPARISONS, MAX_DEPTH, MAX_IN_VALUES};

/// The SQL flavour to emit; label tests differ most between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// How a field is stored, which decides what literals it accepts and how it
/// is queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A text column; compared with quoted strings, and the only plain kind
    /// `like` accepts.
    Text,
    /// An integer column; compared with integers (or `true`/`false` as 1/0).
    Int,
    /// A timestamp column; compared with quoted RFC 3339 times or
    /// `YYYY-MM-DD` dates (midnight UTC). On SQLite the column must hold
    /// what sqlx writes for `DateTime<Utc>`, because the comparison is
    /// textual there.
    Time,
    /// A JSON object column of string to string, searched as
    /// `<name>.<key>`. PostgreSQL: `jsonb`; SQLite: text holding JSON.
    Labels,
    /// A JSON array column of Kubernetes manifests; `<name>.<key>` tests
    /// every manifest's `metadata.labels`. PostgreSQL: `jsonb`; SQLite:
    /// text holding JSON. It must hold an array (or be NULL).
    ManifestLabels,
}

/// One searchable name and the column behind it.
///
/// The public name and the column are separate so the API can keep stable
/// names while the schema changes; `column` is pasted into SQL verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
    /// Whether `orderBy` may use it; label fields can never be sorted.
    pub sortable: bool,
}

/// The fields one list endpoint exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The plural resource name ("consumers"), so errors can say what
    /// cannot be sorted.
    pub resource: &'static str,
    pub fields: &'static [Field],
}

/// A value to bind, in the order of the placeholders in [`Filter::sql`].
///
/// How to bind each with sqlx 0.9:
///
/// | variant | PostgreSQL                 | SQLite                          |
/// |---------|----------------------------|---------------------------------|
/// | `Text`  | `String` / `&str`          | `String` / `&str`               |
/// | `Int`   | `i64`                      | `i64`                           |
/// | `Time`  | `DateTime<Utc>`            | `DateTime<Utc>` (sqlx's text)   |
/// | `Json`  | `serde_json::Value` (jsonb)| never produced for SQLite; bind `value.to_string()` if you must |
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Time(chrono::DateTime<chrono::Utc>),
    Json(serde_json::Value),
}

/// A compiled search: a boolean SQL expression and its parameters.
///
/// `sql` is self-contained (compounds are parenthesized), so it can be
/// joined to other conditions with `AND` as it is. Its placeholders are
/// `$first_placeholder`, `$first_placeholder + 1`, ... in `binds` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Why a search or sort string was refused, aimed at the person who typed
/// it: the position points into their text, the message says what was
/// expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct SearchError {
    /// 1-based character (not byte) offset into the input.
    pub position: usize,
    pub message: String,
}

impl SearchError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self { position, message: message.into() }
    }
}

/// Compiles a `search` parameter into a WHERE-clause expression.
///
/// Returns `Ok(None)` for blank input so callers can skip the clause
/// entirely. `first_placeholder` is the number of the first `$N` to use,
/// normally one more than the binds the caller already has; 0 is treated
/// as 1.
pub fn filter(
    input: &str,
    schema: &Schema,
    dialect: Dialect,
    first_placeholder: usize,
) -> Result<Option<Filter>, SearchError> {
    let Some(expr) = parser::parse(input, schema)? else {
        return Ok(None);
    };
    Ok(Some(sql::compile(&expr, dialect, first_placeholder)))
}

/// Compiles an `orderBy` parameter (`name asc, created_at desc`) into the
/// text after `ORDER BY`, using column names. Returns `Ok(None)` for blank
/// input. Fields are only accepted when the schema marks them sortable,
/// since sorting on an unindexed column is a cost the API should opt into.
pub fn order_by(input: &str, schema: &Schema) -> Result<Option<String>, SearchError> {
    let keys = parser::parse_order_by(input, schema)?;
    Ok(sql::render_order_by(&keys))
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The schema every test in this module searches.

    use super::{Field, FieldKind, Schema};

    const fn field(name: &'static str, kind: FieldKind, sortable: bool) -> Field {
        Field { name, column: name, kind, sortable }
    }

    pub(crate) static BUNDLES: Schema = Schema {
        resource: "bundles",
        fields: &[
            field("id", FieldKind::Text, true),
            Field { name: "consumer_name", column: "consumer", kind: FieldKind::Text, sortable: true },
            field("name", FieldKind::Text, true),
            field("version", FieldKind::Int, true),
            field("created_at", FieldKind::Time, true),
            field("deleted_at", FieldKind::Time, false),
            field("labels", FieldKind::Labels, true),
            Field { name: "manifest_labels", column: "manifests", kind: FieldKind::ManifestLabels, sortable: false },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::fixtures::BUNDLES;
    use super::*;
    use serde_json::json;

    fn pg(input: &str) -> Filter {
        match filter(input, &BUNDLES, Dialect::Postgres, 1) {
            Ok(Some(f)) => f,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    fn sqlite(input: &str) -> Filter {
        match filter(input, &BUNDLES, Dialect::Sqlite, 1) {
            Ok(Some(f)) => f,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    fn error(input: &str) -> String {
        match filter(input, &BUNDLES, Dialect::Postgres, 1) {
            Err(e) => e.to_string(),
            Ok(f) => panic!("{input:?} should fail, gave {f:?}"),
        }
    }

    fn text(s: &str) -> Bind {
        Bind::Text(s.to_string())
    }

    #[test]
    fn blank_input_means_no_filter() {
        for blank in ["", "   ", "\t\n"] {
            assert_eq!(filter(blank, &BUNDLES, Dialect::Sqlite, 1), Ok(None));
            assert_eq!(order_by(blank, &BUNDLES), Ok(None));
        }
    }

    #[test]
    fn spec_examples_compile_on_both_dialects() {
        let examples = [
            "consumer_name = 'c1' and version > 2",
            "name in ('a','b')",
            "consumer_name like 'prod%'",
            "labels.env = 'prod' and not labels.tier in ('db')",
            "labels.app.kubernetes.io/name = 'web'",
            "manifest_labels.app = 'nginx'",
            "deleted_at is null",
            "created_at >= '2026-01-01T00:00:00Z'",
        ];
        for example in examples {
            for dialect in [Dialect::Postgres, Dialect::Sqlite] {
                let compiled = filter(example, &BUNDLES, dialect, 1);
                assert!(matches!(compiled, Ok(Some(_))), "{example:?} on {dialect:?}: {compiled:?}");
            }
        }
    }

    #[test]
    fn plain_fields_use_their_column_and_bind_the_value() {
        let f = pg("consumer_name = 'c1' and version > 2");
        assert_eq!(f.sql, "(consumer = $1 AND version > $2)");
        assert_eq!(f.binds, vec![text("c1"), Bind::Int(2)]);
    }

    #[test]
    fn placeholders_start_where_the_caller_says() {
        let f = filter("name = 'a' or version = 1", &BUNDLES, Dialect::Sqlite, 4);
        let f = f.ok().flatten().map(|f| f.sql);
        assert_eq!(f.as_deref(), Some("(name = $4 OR version = $5)"));
    }

    #[test]
    fn values_never_reach_the_sql_text() {
        let f = pg("name = 'x'' or 1=1 --'");
        assert_eq!(f.sql, "name = $1");
        assert_eq!(f.binds, vec![text("x' or 1=1 --")]);
    }

    #[test]
    fn labels_use_containment_on_postgres_and_json_extract_on_sqlite() {
        let f = pg("labels.app.kubernetes.io/name = 'web'");
        assert_eq!(f.sql, "labels @> $1::jsonb");
        assert_eq!(f.binds, vec![Bind::Json(json!({"app.kubernetes.io/name": "web"}))]);

        let f = sqlite("labels.app.kubernetes.io/name = 'web'");
        assert_eq!(f.sql, "json_extract(labels, $1) = $2");
        assert_eq!(f.binds, vec![text("$.\"app.kubernetes.io/name\""), text("web")]);
    }

    #[test]
    fn manifest_labels_match_any_manifest() {
        let f = pg("manifest_labels.app = 'nginx'");
        assert_eq!(f.sql, "manifests @> $1::jsonb");
        assert_eq!(f.binds, vec![Bind::Json(json!([{"metadata": {"labels": {"app": "nginx"}}}]))]);

        let f = sqlite("manifest_labels.app = 'nginx'");
        assert_eq!(
            f.sql,
            "EXISTS (SELECT 1 FROM json_each(manifests) AS m \
             WHERE json_extract(m.value, $1) = $2)"
        );
        assert_eq!(f.binds, vec![text("$.metadata.labels.\"app\""), text("nginx")]);
    }

    #[test]
    fn times_accept_rfc3339_and_plain_dates() {
        let f = pg("created_at >= '2026-01-01T00:00:00Z' and created_at < '2026-02-01'");
        let expected = |s: &str| chrono::DateTime::parse_from_rfc3339(s).map(|t| Bind::Time(t.to_utc())).unwrap();
        assert_eq!(f.binds, vec![expected("2026-01-01T00:00:00Z"), expected("2026-02-01T00:00:00Z")]);
    }

    #[test]
    fn errors_say_where_what_was_expected_and_what_was_found() {
        assert_eq!(error("consumer_name = "), "at position 17: expected a value after '=', found end of input");
        assert_eq!(
            error("nmae = 'x'"),
            "at position 1: unknown field 'nmae'; valid fields: id, consumer_name, name, \
             version, created_at, deleted_at, labels.<key>, manifest_labels.<key>; \
             did you mean 'name'?"
        );
    }

    #[test]
    fn order_by_maps_fields_to_columns_and_normalizes_directions() {
        assert_eq!(order_by("name asc, created_at DESC", &BUNDLES), Ok(Some("name ASC, created_at DESC".to_string())));
        assert_eq!(order_by("consumer_name", &BUNDLES), Ok(Some("consumer ASC".to_string())));
    }

    /// Any input, however mangled, yields a filter or an error whose
    /// position lies within the input or just past its end.
    #[test]
    fn arbitrary_input_never_panics_and_errors_point_into_it() {
        const PIECES: [&str; 24] = [
            "name",
            "version",
            "labels.a",
            "manifest_labels.b",
            "created_at",
            " and ",
            " or ",
            "not ",
            "(",
            ")",
            "=",
            "!=",
            "<",
            ">=",
            " in ",
            " like ",
            " is ",
            "null",
            "'x'",
            "'",
            "7",
            ",",
            "é",
            "labels.",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..5000 {
            let input: String = (0..next(12)).map(|_| PIECES[next(PIECES.len())]).collect();
            let length = input.chars().count();
            for dialect in [Dialect::Postgres, Dialect::Sqlite] {
                if let Err(e) = filter(&input, &BUNDLES, dialect, 1) {
                    assert!((1..=length + 1).contains(&e.position), "{input:?}: {e}");
                }
            }
            if let Err(e) = order_by(&input, &BUNDLES) {
                assert!((1..=length + 1).contains(&e.position), "{input:?}: {e}");
            }
        }
    }

    #[test]
    fn search_error_displays_position_then_message() {
        let e = SearchError::new(3, "nope");
        assert_eq!(e.to_string(), "at position 3: nope");
    }
}
