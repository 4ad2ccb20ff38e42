//! Compiles a parsed search into SQL text plus binds for one dialect.
//!
//! `not` is pushed down to the comparisons (De Morgan) instead of being
//! emitted as `NOT (...)` around a subtree. Plain columns keep SQL's NULL
//! rules either way, but label tests need an explicit negative form: a
//! missing label makes `json_extract(...) = $n` NULL on SQLite while the
//! PostgreSQL containment is FALSE, and `NOT` of those differs. With the
//! negation applied at the leaf, each label test is written so that a
//! missing label fails the positive form and passes the negative one on
//! both databases.

use serde_json::{Map, Value};

use super::parser::{CmpOp, Comparison, Expr, LabelSource, Scalar, SortKey, Target, Test};
use super::{Bind, Dialect, Filter};

/// Compiles `expr`, numbering placeholders from `first_placeholder`.
pub(crate) fn compile(expr: &Expr, dialect: Dialect, first_placeholder: usize) -> Filter {
    let mut compiler = Compiler { dialect, next: first_placeholder.max(1), binds: Vec::new() };
    let sql = compiler.expr(expr, false);
    Filter { sql, binds: compiler.binds }
}

/// Renders sort keys as the text after `ORDER BY`.
pub(crate) fn render_order_by(keys: &[SortKey]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let terms: Vec<String> = keys
        .iter()
        .map(|k| {
            let direction = if k.descending { "DESC" } else { "ASC" };
            format!("{} {direction}", k.column)
        })
        .collect();
    Some(terms.join(", "))
}

/// A test with its own `not` separated out, so negation can be combined
/// with the one pushed down from above.
enum Cond<'a> {
    Cmp(CmpOp, &'a Scalar),
    In(&'a [Scalar]),
    Like(&'a str),
    IsNull,
}

fn split(test: &Test) -> (Cond<'_>, bool) {
    match test {
        Test::Compare(op, value) => (Cond::Cmp(*op, value), false),
        Test::In { negated, values } => (Cond::In(values), *negated),
        Test::Like { negated, pattern } => (Cond::Like(pattern), *negated),
        Test::IsNull { negated } => (Cond::IsNull, *negated),
    }
}

/// The positive form of a label test.
struct Positive {
    sql: String,
    /// `EXISTS (...)` is never NULL, so it can be negated with plain `NOT`;
    /// anything else is negated with `IS NOT TRUE` so NULL counts as "no".
    exists: bool,
    /// Whether `sql` is already one parenthesized group.
    grouped: bool,
}

impl Positive {
    fn maybe_null(sql: String) -> Self {
        Self { sql, exists: false, grouped: false }
    }

    fn negated(self) -> String {
        match (self.exists, self.grouped) {
            (true, _) => format!("NOT {}", self.sql),
            (false, true) => format!("{} IS NOT TRUE", self.sql),
            (false, false) => format!("({}) IS NOT TRUE", self.sql),
        }
    }
}

struct Compiler {
    dialect: Dialect,
    next: usize,
    binds: Vec<Bind>,
}

impl Compiler {
    /// Adds a bind and returns its placeholder.
    fn bind(&mut self, bind: Bind) -> String {
        let placeholder = format!("${}", self.next);
        self.next += 1;
        self.binds.push(bind);
        placeholder
    }

    fn bind_scalar(&mut self, value: &Scalar) -> String {
        let bind = match value {
            Scalar::Text(s) => Bind::Text(s.clone()),
            Scalar::Int(i) => Bind::Int(*i),
            Scalar::Time(t) => Bind::Time(*t),
        };
        self.bind(bind)
    }

    fn bind_list(&mut self, values: &[Scalar]) -> String {
        let placeholders: Vec<String> = values.iter().map(|v| self.bind_scalar(v)).collect();
        placeholders.join(", ")
    }

    fn expr(&mut self, expr: &Expr, negated: bool) -> String {
        match expr {
            Expr::And(terms) => self.junction(terms, negated, if negated { "OR" } else { "AND" }),
            Expr::Or(terms) => self.junction(terms, negated, if negated { "AND" } else { "OR" }),
            Expr::Not(inner) => self.expr(inner, !negated),
            Expr::Test(comparison) => self.comparison(comparison, negated),
        }
    }

    fn junction(&mut self, terms: &[Expr], negated: bool, joiner: &str) -> String {
        let parts: Vec<String> = terms.iter().map(|t| self.expr(t, negated)).collect();
        format!("({})", parts.join(&format!(" {joiner} ")))
    }

    fn comparison(&mut self, comparison: &Comparison, negated: bool) -> String {
        let (cond, own_not) = split(&comparison.test);
        let negated = negated != own_not;
        match &comparison.target {
            Target::Column(column) => self.predicate(column, &cond, negated),
            Target::Label { column, key, source } => self.label(column, key, *source, cond, negated),
        }
    }

    /// `<lhs> <test>` with negation folded into the operator, which keeps
    /// SQL's NULL behaviour exactly as a surrounding `NOT` would.
    fn predicate(&mut self, lhs: &str, cond: &Cond<'_>, negated: bool) -> String {
        let not = if negated { "NOT " } else { "" };
        match cond {
            Cond::Cmp(op, value) => {
                let op = if negated { op.inverse() } else { *op };
                let placeholder = self.bind_scalar(value);
                format!("{lhs} {} {placeholder}", op.sql())
            }
            Cond::In(values) => {
                let list = self.bind_list(values);
                format!("{lhs} {not}IN ({list})")
            }
            Cond::Like(pattern) => {
                let (operator, pattern) = self.like(pattern);
                let placeholder = self.bind(Bind::Text(pattern));
                format!("{lhs} {not}{operator} {placeholder}")
            }
            Cond::IsNull => format!("{lhs} IS {not}NULL"),
        }
    }

    /// SQLite's LIKE ignores ASCII case and has no default escape, so the
    /// same pattern is rewritten as a GLOB there to behave as on
    /// PostgreSQL.
    fn like(&self, pattern: &str) -> (&'static str, String) {
        match self.dialect {
            Dialect::Postgres => ("LIKE", pattern.to_string()),
            Dialect::Sqlite => ("GLOB", like_to_glob(pattern)),
        }
    }

    fn label(&mut self, column: &str, key: &str, source: LabelSource, cond: Cond<'_>, negated: bool) -> String {
        if let Cond::IsNull = cond {
            return self.label_presence(column, key, source, negated);
        }
        // `!=` on a label is "not =", so a missing label matches it.
        let (cond, negated) = match cond {
            Cond::Cmp(CmpOp::Ne, value) => (Cond::Cmp(CmpOp::Eq, value), !negated),
            other => (other, negated),
        };
        let positive = self.label_positive(column, key, source, &cond);
        if negated { positive.negated() } else { positive.sql }
    }

    fn label_positive(&mut self, column: &str, key: &str, source: LabelSource, cond: &Cond<'_>) -> Positive {
        match (self.dialect, cond) {
            (Dialect::Postgres, Cond::Cmp(CmpOp::Eq, value)) => {
                Positive::maybe_null(self.containment(column, key, source, value))
            }
            (Dialect::Postgres, Cond::In(values)) => self.containments(column, key, source, values),
            _ => match source {
                LabelSource::Object => {
                    let lhs = self.object_label(column, key);
                    Positive::maybe_null(self.predicate(&lhs, cond, false))
                }
                LabelSource::Manifests => {
                    let (from, lhs) = self.manifest_label(column, key);
                    let test = self.predicate(&lhs, cond, false);
                    Positive {
                        sql: format!("EXISTS (SELECT 1 FROM {from} WHERE {test})"),
                        exists: true,
                        grouped: false,
                    }
                }
            },
        }
    }

    /// `is null` on a label means "the label is absent"; for manifests,
    /// absent from every manifest.
    fn label_presence(&mut self, column: &str, key: &str, source: LabelSource, present: bool) -> String {
        match source {
            LabelSource::Object => {
                let lhs = self.object_label(column, key);
                let not = if present { "NOT " } else { "" };
                format!("{lhs} IS {not}NULL")
            }
            LabelSource::Manifests => {
                let (from, lhs) = self.manifest_label(column, key);
                let not = if present { "" } else { "NOT " };
                format!("{not}EXISTS (SELECT 1 FROM {from} WHERE {lhs} IS NOT NULL)")
            }
        }
    }

    /// The expression for one label's value in a label-object column.
    fn object_label(&mut self, column: &str, key: &str) -> String {
        match self.dialect {
            Dialect::Postgres => {
                let key = self.bind(Bind::Text(key.to_string()));
                format!("({column} ->> {key})")
            }
            Dialect::Sqlite => {
                let path = self.bind(Bind::Text(json_path("$", key)));
                format!("json_extract({column}, {path})")
            }
        }
    }

    /// The row source over a manifests column and the expression for one
    /// label's value in each manifest row.
    fn manifest_label(&mut self, column: &str, key: &str) -> (String, String) {
        match self.dialect {
            Dialect::Postgres => {
                let key = self.bind(Bind::Text(key.to_string()));
                (
                    format!("jsonb_array_elements({column}) AS m(v)"),
                    format!("(m.v -> 'metadata' -> 'labels' ->> {key})"),
                )
            }
            Dialect::Sqlite => {
                let path = self.bind(Bind::Text(json_path("$.metadata.labels", key)));
                (format!("json_each({column}) AS m"), format!("json_extract(m.value, {path})"))
            }
        }
    }

    /// `@>` against a JSON document holding just this label, which a GIN
    /// index on the column can answer.
    fn containment(&mut self, column: &str, key: &str, source: LabelSource, value: &Scalar) -> String {
        let document = label_document(key, value, source);
        let placeholder = self.bind(Bind::Json(document));
        format!("{column} @> {placeholder}::jsonb")
    }

    fn containments(&mut self, column: &str, key: &str, source: LabelSource, values: &[Scalar]) -> Positive {
        let parts: Vec<String> = values.iter().map(|v| self.containment(column, key, source, v)).collect();
        match <[String; 1]>::try_from(parts) {
            Ok([only]) => Positive::maybe_null(only),
            Err(parts) => Positive { sql: format!("({})", parts.join(" OR ")), exists: false, grouped: true },
        }
    }
}

/// A SQLite JSON path to `key` under `base`, quoted so that dots and
/// slashes in Kubernetes keys are not read as path steps. The parser only
/// lets `[A-Za-z0-9._/-]` into keys, so no quote can break out.
fn json_path(base: &str, key: &str) -> String {
    format!("{base}.\"{key}\"")
}

/// `{"key": "value"}` for a label object, or the manifest array shape
/// `[{"metadata": {"labels": {...}}}]` that `@>` matches against any
/// element.
fn label_document(key: &str, value: &Scalar, source: LabelSource) -> Value {
    let mut labels = Map::new();
    labels.insert(key.to_string(), Value::String(label_text(value)));
    let labels = Value::Object(labels);
    match source {
        LabelSource::Object => labels,
        LabelSource::Manifests => {
            let mut metadata = Map::new();
            metadata.insert("labels".to_string(), labels);
            let mut manifest = Map::new();
            manifest.insert("metadata".to_string(), Value::Object(metadata));
            Value::Array(vec![Value::Object(manifest)])
        }
    }
}

/// Label values are text; the parser only admits strings for them, and
/// anything else is rendered the way it would be written.
fn label_text(value: &Scalar) -> String {
    match value {
        Scalar::Text(s) => s.clone(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Time(t) => t.to_rfc3339(),
    }
}

/// Rewrites a LIKE pattern (`%`, `_`, `\` escape) as a GLOB pattern (`*`,
/// `?`), bracketing GLOB's own metacharacters so they match literally.
fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '\\' => {
                if let Some(escaped) = chars.next() {
                    push_glob_literal(&mut glob, escaped);
                }
            }
            other => push_glob_literal(&mut glob, other),
        }
    }
    glob
}

fn push_glob_literal(glob: &mut String, c: char) {
    if matches!(c, '*' | '?' | '[') {
        glob.push('[');
        glob.push(c);
        glob.push(']');
    } else {
        glob.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::BUNDLES;
    use super::super::parser::parse;
    use super::*;
    use serde_json::json;

    fn compiled(dialect: Dialect, input: &str) -> Filter {
        match parse(input, &BUNDLES) {
            Ok(Some(expr)) => compile(&expr, dialect, 1),
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    fn pg(input: &str) -> String {
        compiled(Dialect::Postgres, input).sql
    }

    fn lite(input: &str) -> String {
        compiled(Dialect::Sqlite, input).sql
    }

    fn text(s: &str) -> Bind {
        Bind::Text(s.to_string())
    }

    // --- Plain columns --------------------------------------------------

    #[test]
    fn plain_comparisons_are_the_same_on_both_dialects() {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let sql = |input| compiled(dialect, input).sql;
            assert_eq!(sql("version != 2"), "version <> $1");
            assert_eq!(sql("name in ('a', 'b')"), "name IN ($1, $2)");
            assert_eq!(sql("name not in ('a')"), "name NOT IN ($1)");
            assert_eq!(sql("deleted_at is null"), "deleted_at IS NULL");
            assert_eq!(sql("deleted_at is not null"), "deleted_at IS NOT NULL");
        }
    }

    #[test]
    fn every_compound_is_parenthesized() {
        assert_eq!(
            pg("name = 'a' or name = 'b' and (version = 1 or version = 2)"),
            "(name = $1 OR (name = $2 AND (version = $3 OR version = $4)))"
        );
    }

    #[test]
    fn not_is_pushed_down_with_de_morgan() {
        assert_eq!(pg("not (name = 'a' or version < 2)"), "(name <> $1 AND version >= $2)");
        assert_eq!(pg("not (name in ('a') and deleted_at is null)"), "(name NOT IN ($1) OR deleted_at IS NOT NULL)");
        assert_eq!(pg("not not version > 1"), "version > $1");
        assert_eq!(pg("not name not like 'a%'"), "name LIKE $1");
    }

    #[test]
    fn every_operator_has_an_inverse_under_not() {
        let cases = [("=", "<>"), ("!=", "="), ("<", ">="), ("<=", ">"), (">", "<="), (">=", "<")];
        for (op, inverse) in cases {
            assert_eq!(pg(&format!("not version {op} 1")), format!("version {inverse} $1"));
        }
    }

    #[test]
    fn values_are_bound_in_placeholder_order() {
        let f = compiled(Dialect::Postgres, "version = true and created_at < '2026-01-01' and name in ('a', 'b')");
        assert_eq!(f.sql, "(version = $1 AND created_at < $2 AND name IN ($3, $4))");
        let midnight =
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
        assert_eq!(f.binds[0], Bind::Int(1));
        assert_eq!(Some(&f.binds[1]), midnight.map(Bind::Time).as_ref());
        assert_eq!(f.binds[2..], [text("a"), text("b")]);
    }

    #[test]
    fn like_is_like_on_postgres_and_an_equivalent_glob_on_sqlite() {
        let f = compiled(Dialect::Postgres, r"name like 'web\_%'");
        assert_eq!(f.sql, "name LIKE $1");
        assert_eq!(f.binds, vec![text(r"web\_%")]);

        let f = compiled(Dialect::Sqlite, r"name not like 'web\_%'");
        assert_eq!(f.sql, "name NOT GLOB $1");
        assert_eq!(f.binds, vec![text("web_*")]);
    }

    #[test]
    fn like_patterns_translate_to_glob_with_literals_protected() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob(r"100\%"), "100%");
        assert_eq!(like_to_glob(r"a\\b"), r"a\b");
        assert_eq!(like_to_glob("*?[x]"), "[*][?][[]x]");
        assert_eq!(like_to_glob("é_"), "é?");
    }

    // --- Labels on PostgreSQL -----------------------------------------

    #[test]
    fn pg_label_equality_is_indexable_containment() {
        let f = compiled(Dialect::Postgres, "labels.env = 'prod'");
        assert_eq!(f.sql, "labels @> $1::jsonb");
        assert_eq!(f.binds, vec![Bind::Json(json!({"env": "prod"}))]);
    }

    #[test]
    fn pg_label_negations_match_rows_without_the_label() {
        assert_eq!(pg("labels.env != 'prod'"), "(labels @> $1::jsonb) IS NOT TRUE");
        assert_eq!(pg("not labels.env = 'prod'"), "(labels @> $1::jsonb) IS NOT TRUE");
        assert_eq!(
            pg("labels.tier not in ('db', 'cache')"),
            "(labels @> $1::jsonb OR labels @> $2::jsonb) IS NOT TRUE"
        );
    }

    #[test]
    fn pg_label_in_is_an_or_of_containments() {
        let f = compiled(Dialect::Postgres, "labels.tier in ('db', 'cache')");
        assert_eq!(f.sql, "(labels @> $1::jsonb OR labels @> $2::jsonb)");
        assert_eq!(f.binds, vec![Bind::Json(json!({"tier": "db"})), Bind::Json(json!({"tier": "cache"}))]);
        assert_eq!(pg("labels.tier in ('db')"), "labels @> $1::jsonb");
    }

    #[test]
    fn pg_label_like_ordering_and_null_read_the_value_as_text() {
        let f = compiled(Dialect::Postgres, "labels.app.kubernetes.io/name like 'we%'");
        assert_eq!(f.sql, "(labels ->> $1) LIKE $2");
        assert_eq!(f.binds, vec![text("app.kubernetes.io/name"), text("we%")]);
        assert_eq!(pg("labels.v >= 'b'"), "(labels ->> $1) >= $2");
        assert_eq!(pg("labels.v not like 'b%'"), "((labels ->> $1) LIKE $2) IS NOT TRUE");
        assert_eq!(pg("labels.v is null"), "(labels ->> $1) IS NULL");
        assert_eq!(pg("not labels.v is null"), "(labels ->> $1) IS NOT NULL");
    }

    // --- Labels on SQLite ---------------------------------------------

    #[test]
    fn sqlite_labels_use_json_extract_with_a_quoted_path() {
        let f = compiled(Dialect::Sqlite, "labels.app.kubernetes.io/name = 'web'");
        assert_eq!(f.sql, "json_extract(labels, $1) = $2");
        assert_eq!(f.binds, vec![text("$.\"app.kubernetes.io/name\""), text("web")]);
        assert_eq!(lite("labels.a in ('x', 'y')"), "json_extract(labels, $1) IN ($2, $3)");
        assert_eq!(lite("labels.a like 'x%'"), "json_extract(labels, $1) GLOB $2");
        assert_eq!(lite("labels.a < 'x'"), "json_extract(labels, $1) < $2");
        assert_eq!(lite("labels.a is not null"), "json_extract(labels, $1) IS NOT NULL");
    }

    #[test]
    fn sqlite_label_negations_match_rows_without_the_label() {
        assert_eq!(lite("labels.env != 'prod'"), "(json_extract(labels, $1) = $2) IS NOT TRUE");
        assert_eq!(lite("not labels.tier in ('db')"), "(json_extract(labels, $1) IN ($2)) IS NOT TRUE");
    }

    // --- Manifest labels ----------------------------------------------

    #[test]
    fn pg_manifest_equality_contains_a_manifest_with_the_label() {
        let f = compiled(Dialect::Postgres, "manifest_labels.app in ('a', 'b')");
        assert_eq!(f.sql, "(manifests @> $1::jsonb OR manifests @> $2::jsonb)");
        assert_eq!(
            f.binds,
            vec![
                Bind::Json(json!([{"metadata": {"labels": {"app": "a"}}}])),
                Bind::Json(json!([{"metadata": {"labels": {"app": "b"}}}])),
            ]
        );
        assert_eq!(pg("manifest_labels.app != 'a'"), "(manifests @> $1::jsonb) IS NOT TRUE");
    }

    #[test]
    fn pg_manifest_like_and_ordering_scan_the_array() {
        let exists = "EXISTS (SELECT 1 FROM jsonb_array_elements(manifests) AS m(v) \
                      WHERE (m.v -> 'metadata' -> 'labels' ->> $1)";
        assert_eq!(pg("manifest_labels.app like 'ng%'"), format!("{exists} LIKE $2)"));
        assert_eq!(pg("manifest_labels.app not like 'ng%'"), format!("NOT {exists} LIKE $2)"));
        assert_eq!(pg("manifest_labels.app > 'm'"), format!("{exists} > $2)"));
        assert_eq!(pg("manifest_labels.app is not null"), format!("{exists} IS NOT NULL)"));
        assert_eq!(pg("manifest_labels.app is null"), format!("NOT {exists} IS NOT NULL)"));
    }

    #[test]
    fn sqlite_manifest_tests_are_exists_over_json_each() {
        let exists = "EXISTS (SELECT 1 FROM json_each(manifests) AS m \
                      WHERE json_extract(m.value, $1)";
        let f = compiled(Dialect::Sqlite, "manifest_labels.app.kubernetes.io/name = 'web'");
        assert_eq!(f.sql, format!("{exists} = $2)"));
        assert_eq!(f.binds, vec![text("$.metadata.labels.\"app.kubernetes.io/name\""), text("web")]);
        assert_eq!(lite("manifest_labels.a != 'x'"), format!("NOT {exists} = $2)"));
        assert_eq!(lite("manifest_labels.a not in ('x', 'y')"), format!("NOT {exists} IN ($2, $3))"));
        assert_eq!(lite("manifest_labels.a like 'x%'"), format!("{exists} GLOB $2)"));
        assert_eq!(lite("manifest_labels.a is null"), format!("NOT {exists} IS NOT NULL)"));
    }

    // --- orderBy -------------------------------------------------------

    #[test]
    fn order_by_renders_columns_and_directions() {
        let keys =
            [SortKey { column: "consumer", descending: false }, SortKey { column: "created_at", descending: true }];
        assert_eq!(render_order_by(&keys).as_deref(), Some("consumer ASC, created_at DESC"));
        assert_eq!(render_order_by(&[]), None);
    }
}
