//! The search AST and the recursive-descent parser that builds it.
//!
//! Fields are resolved and literals type-checked while parsing, not later,
//! because only here do we still know which token to blame: every error
//! points at the token that caused it. What comes out is therefore already
//! valid, and compiling it to SQL cannot fail.

use chrono::{DateTime, NaiveDate, Utc};

use super::lexer::{Lexed, Token, TokenKind, abbreviate, tokenize};
use super::{Field, FieldKind, Schema, SearchError};

/// Deepest nesting of `not` and parentheses; recursion is bounded by this
/// so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons in one search, which bounds the size of the SQL.
pub const MAX_COMPARISONS: usize = 200;
/// Most values in one `in (...)` list.
pub const MAX_IN_VALUES: usize = 100;
/// Longest label key, as in Kubernetes (a 253-character DNS prefix is the
/// longest part a key can have).
const MAX_LABEL_KEY_CHARS: usize = 253;

/// Words that can never name a field.
pub(crate) use super::lexer::CmpOp;

const KEYWORDS: [&str; 9] = ["and", "or", "not", "in", "like", "is", "null", "true", "false"];

/// A parsed search. `And` and `Or` hold every operand of a chain at once,
/// so long chains do not become deep trees.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Test(Comparison),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) target: Target,
    pub(crate) test: Test,
}

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Column(&'static str),
    Label { column: &'static str, key: String, source: LabelSource },
}

/// Where the labels of a label field live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelSource {
    /// The column is the label object itself.
    Object,
    /// The column is an array of manifests, each with `metadata.labels`.
    Manifests,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Compare(CmpOp, Scalar),
    In { negated: bool, values: Vec<Scalar> },
    Like { negated: bool, pattern: String },
    IsNull { negated: bool },
}

/// A literal after type checking, in the type its field needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// One `orderBy` term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub(crate) column: &'static str,
    pub(crate) descending: bool,
}

/// Parses a search; `None` when the input holds no tokens at all.
pub(crate) fn parse(input: &str, schema: &Schema) -> Result<Option<Expr>, SearchError> {
    let lexed = tokenize(input)?;
    if lexed.tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser::new(lexed, schema);
    let expr = parser.or()?;
    parser.finish()?;
    Ok(Some(expr))
}

/// Parses an `orderBy` list; empty when the input is blank.
pub(crate) fn parse_order_by(input: &str, schema: &Schema) -> Result<Vec<SortKey>, SearchError> {
    let lexed = tokenize(input)?;
    if lexed.tokens.is_empty() {
        return Ok(Vec::new());
    }
    Parser::new(lexed, schema).sort_keys()
}

/// A literal before type checking.
enum Literal {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
}

/// A field reference resolved against the schema.
struct Resolved {
    kind: FieldKind,
    target: Target,
    /// How to name it in messages: "field 'version'", "label 'labels.env'".
    subject: String,
}

struct Parser<'s> {
    tokens: Vec<Token>,
    end: Token,
    /// Index of the next token; `tokens.len()` means the end.
    at: usize,
    schema: &'s Schema,
    depth: usize,
    comparisons: usize,
}

impl<'s> Parser<'s> {
    fn new(lexed: Lexed, schema: &'s Schema) -> Self {
        Self { tokens: lexed.tokens, end: lexed.end, at: 0, schema, depth: 0, comparisons: 0 }
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.at).unwrap_or(&self.end)
    }

    fn previous(&self) -> Option<&Token> {
        self.at.checked_sub(1).and_then(|i| self.tokens.get(i))
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    /// "expected X after Y, found Z", blaming the next token.
    fn expected(&self, what: &str) -> SearchError {
        let found = self.peek();
        let after = self.previous().map(|p| format!(" after {}", p.describe())).unwrap_or_default();
        SearchError::new(found.pos, format!("expected {what}{after}, found {}", found.describe()))
    }

    fn finish(&self) -> Result<(), SearchError> {
        match self.peek().kind {
            TokenKind::End => Ok(()),
            TokenKind::RParen => Err(SearchError::new(
                self.peek().pos,
                "expected 'and', 'or' or end of input, found ')' without a matching '('",
            )),
            _ => Err(self.expected("'and', 'or' or end of input")),
        }
    }

    fn or(&mut self) -> Result<Expr, SearchError> {
        let mut terms = vec![self.and()?];
        while self.peek().is_keyword("or") {
            self.bump();
            terms.push(self.and()?);
        }
        Ok(chain(terms, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, SearchError> {
        let mut terms = vec![self.unary()?];
        while self.peek().is_keyword("and") {
            self.bump();
            terms.push(self.unary()?);
        }
        Ok(chain(terms, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, SearchError> {
        let token = self.peek().clone();
        if token.is_keyword("not") {
            self.nested(&token, |p| {
                p.bump();
                Ok(Expr::Not(Box::new(p.unary()?)))
            })
        } else if token.kind == TokenKind::LParen {
            self.nested(&token, |p| {
                p.bump();
                let inner = p.or()?;
                p.close(&token)?;
                Ok(inner)
            })
        } else {
            self.comparison()
        }
    }

    /// Runs `body` one nesting level deeper, refusing to go past the limit.
    fn nested(
        &mut self,
        token: &Token,
        body: impl FnOnce(&mut Self) -> Result<Expr, SearchError>,
    ) -> Result<Expr, SearchError> {
        if self.depth >= MAX_DEPTH {
            return Err(SearchError::new(
                token.pos,
                format!("expected at most {MAX_DEPTH} levels of 'not' and parentheses, found more"),
            ));
        }
        self.depth += 1;
        let result = body(self);
        self.depth -= 1;
        result
    }

    fn close(&mut self, open: &Token) -> Result<(), SearchError> {
        if self.peek().kind == TokenKind::RParen {
            self.bump();
            return Ok(());
        }
        Err(self.expected(&format!("'and', 'or' or ')' to close the '(' at position {}", open.pos)))
    }

    fn comparison(&mut self) -> Result<Expr, SearchError> {
        let token = self.peek().clone();
        let name = match &token.kind {
            TokenKind::Word(w) if !is_keyword(w) => w.clone(),
            _ => return Err(self.expected("a field name")),
        };
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(SearchError::new(
                token.pos,
                format!("expected at most {MAX_COMPARISONS} comparisons, found more"),
            ));
        }
        let field = resolve(self.schema, &name, token.pos)?;
        self.bump();
        let test = self.test(&field)?;
        Ok(Expr::Test(Comparison { target: field.target, test }))
    }

    fn test(&mut self, field: &Resolved) -> Result<Test, SearchError> {
        let token = self.peek().clone();
        if let TokenKind::Op(op) = token.kind {
            self.bump();
            return self.compare(op, field);
        }
        if token.is_keyword("in") {
            self.bump();
            return self.in_list(field, false);
        }
        if token.is_keyword("like") {
            return self.like(field, false);
        }
        if token.is_keyword("not") {
            self.bump();
            return self.negated_test(field);
        }
        if token.is_keyword("is") {
            self.bump();
            return self.is_null();
        }
        Err(self.expected(
            "an operator (=, !=, <>, <, <=, >, >=, in, not in, like, not like, \
             is null, is not null)",
        ))
    }

    fn negated_test(&mut self, field: &Resolved) -> Result<Test, SearchError> {
        if self.peek().is_keyword("in") {
            self.bump();
            return self.in_list(field, true);
        }
        if self.peek().is_keyword("like") {
            return self.like(field, true);
        }
        Err(self.expected("'in' or 'like'"))
    }

    fn is_null(&mut self) -> Result<Test, SearchError> {
        let negated = self.peek().is_keyword("not");
        if negated {
            self.bump();
        }
        if !self.peek().is_keyword("null") {
            let wanted = if negated { "'null'" } else { "'null' or 'not null'" };
            return Err(self.expected(wanted));
        }
        self.bump();
        Ok(Test::IsNull { negated })
    }

    fn compare(&mut self, op: CmpOp, field: &Resolved) -> Result<Test, SearchError> {
        let op_text = self.previous().map(|t| t.text.clone()).unwrap_or_default();
        let (literal, token) = self.literal()?;
        if let Literal::Null = literal {
            let advice = match op {
                CmpOp::Eq => "use 'is null'",
                CmpOp::Ne => "use 'is not null'",
                _ => "null has no order; use 'is null' or 'is not null'",
            };
            return Err(SearchError::new(
                token.pos,
                format!("expected a value after '{op_text}', found '{}'; {advice}", token.text),
            ));
        }
        Ok(Test::Compare(op, typed(field, literal, &token)?))
    }

    fn in_list(&mut self, field: &Resolved, negated: bool) -> Result<Test, SearchError> {
        if self.peek().kind != TokenKind::LParen {
            return Err(self.expected("'(' to start the list"));
        }
        self.bump();
        if self.peek().kind == TokenKind::RParen {
            return Err(self.expected("a value (an 'in' list needs at least one)"));
        }
        let mut values = Vec::new();
        loop {
            if values.len() == MAX_IN_VALUES {
                return Err(SearchError::new(
                    self.peek().pos,
                    format!("expected at most {MAX_IN_VALUES} values in an 'in' list, found more"),
                ));
            }
            let (literal, token) = self.literal()?;
            if let Literal::Null = literal {
                return Err(SearchError::new(
                    token.pos,
                    format!("expected a value in the 'in' list, found '{}'; use 'is null'", token.text),
                ));
            }
            values.push(typed(field, literal, &token)?);
            match self.peek().kind {
                TokenKind::Comma => {
                    self.bump();
                }
                TokenKind::RParen => {
                    self.bump();
                    return Ok(Test::In { negated, values });
                }
                _ => return Err(self.expected("',' or ')'")),
            }
        }
    }

    /// Parses `like 'pattern'`; the `like` keyword is still the next token
    /// so a field of the wrong kind can be blamed on it.
    fn like(&mut self, field: &Resolved, negated: bool) -> Result<Test, SearchError> {
        let keyword = self.bump();
        if matches!(field.kind, FieldKind::Int | FieldKind::Time) {
            return Err(SearchError::new(
                keyword.pos,
                format!(
                    "expected a text or label field before 'like', found {}, which holds {}",
                    field.subject,
                    kind_noun(field.kind)
                ),
            ));
        }
        let token = self.peek().clone();
        let TokenKind::Str(pattern) = &token.kind else {
            return Err(self.expected("a quoted pattern"));
        };
        check_pattern(pattern, token.pos)?;
        self.bump();
        Ok(Test::Like { negated, pattern: pattern.clone() })
    }

    fn literal(&mut self) -> Result<(Literal, Token), SearchError> {
        let token = self.peek().clone();
        let literal = match &token.kind {
            TokenKind::Str(s) => Literal::Str(s.clone()),
            TokenKind::Int(i) => Literal::Int(*i),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            TokenKind::Word(w) if !is_keyword(w) => {
                let e = self.expected("a value");
                let hint = format!("; text needs single quotes, as in '{}'", abbreviate(w));
                return Err(SearchError::new(e.position, e.message + &hint));
            }
            _ => return Err(self.expected("a value")),
        };
        self.bump();
        Ok((literal, token))
    }

    fn sort_keys(&mut self) -> Result<Vec<SortKey>, SearchError> {
        let mut keys: Vec<SortKey> = Vec::new();
        loop {
            let token = self.peek().clone();
            let TokenKind::Word(name) = &token.kind else {
                return Err(self.expected("a field name"));
            };
            let field = sortable_field(self.schema, name, token.pos)?;
            if keys.iter().any(|k| k.column == field.column) {
                return Err(SearchError::new(token.pos, format!("expected each field once, found '{name}' again")));
            }
            self.bump();
            let descending = self.direction();
            keys.push(SortKey { column: field.column, descending: descending.unwrap_or(false) });
            match self.peek().kind {
                TokenKind::Comma => {
                    self.bump();
                }
                TokenKind::End => return Ok(keys),
                _ if descending.is_some() => return Err(self.expected("',' or end of input")),
                _ => return Err(self.expected("'asc', 'desc', ',' or end of input")),
            }
        }
    }

    /// Reads an optional `asc`/`desc`; `Some(true)` for descending.
    fn direction(&mut self) -> Option<bool> {
        let descending = if self.peek().is_keyword("asc") {
            false
        } else if self.peek().is_keyword("desc") {
            true
        } else {
            return None;
        };
        self.bump();
        Some(descending)
    }
}

/// A chain of one operand is just that operand.
fn chain(terms: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    match <[Expr; 1]>::try_from(terms) {
        Ok([only]) => only,
        Err(terms) => make(terms),
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn is_label(kind: FieldKind) -> bool {
    matches!(kind, FieldKind::Labels | FieldKind::ManifestLabels)
}

fn kind_noun(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "text",
        FieldKind::Int => "integers",
        FieldKind::Time => "times",
        FieldKind::Labels | FieldKind::ManifestLabels => "labels",
    }
}

fn find(schema: &Schema, name: &str) -> Option<&'static Field> {
    schema.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Finds the field a word names, splitting `<label field>.<key>`.
fn resolve(schema: &Schema, name: &str, pos: usize) -> Result<Resolved, SearchError> {
    if let Some(field) = find(schema, name) {
        if is_label(field.kind) {
            return Err(SearchError::new(
                pos,
                format!("expected a label key after '{name}', as in '{name}.<key>', found none"),
            ));
        }
        return Ok(Resolved {
            kind: field.kind,
            target: Target::Column(field.column),
            subject: format!("field '{}'", field.name),
        });
    }
    if let Some((prefix, key)) = name.split_once('.')
        && let Some(field) = find(schema, prefix)
    {
        return resolve_label(field, prefix, key, pos);
    }
    Err(unknown_field(schema, name, pos))
}

fn resolve_label(field: &'static Field, prefix: &str, key: &str, pos: usize) -> Result<Resolved, SearchError> {
    let source = match field.kind {
        FieldKind::Labels => LabelSource::Object,
        FieldKind::ManifestLabels => LabelSource::Manifests,
        _ => {
            return Err(SearchError::new(
                pos,
                format!(
                    "expected a label field before '.{}', found '{prefix}', which holds {}",
                    abbreviate(key),
                    kind_noun(field.kind)
                ),
            ));
        }
    };
    let key_pos = pos + prefix.chars().count() + 1;
    check_label_key(prefix, key, key_pos)?;
    Ok(Resolved {
        kind: field.kind,
        target: Target::Label { column: field.column, key: key.to_string(), source },
        subject: format!("label '{}.{}'", field.name, abbreviate(key)),
    })
}

fn check_label_key(prefix: &str, key: &str, pos: usize) -> Result<(), SearchError> {
    let length = key.chars().count();
    let problem = if key.is_empty() {
        format!("expected a label key after '{prefix}.', found none")
    } else if length > MAX_LABEL_KEY_CHARS {
        format!("expected a label key of at most {MAX_LABEL_KEY_CHARS} characters, found {length}")
    } else if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')) {
        format!("expected a label key of letters, digits, '.', '_', '/' and '-', found '{}'", abbreviate(key))
    } else {
        return Ok(());
    };
    Err(SearchError::new(pos, problem))
}

fn unknown_field(schema: &Schema, name: &str, pos: usize) -> SearchError {
    let valid: Vec<String> = schema
        .fields
        .iter()
        .map(|f| match is_label(f.kind) {
            true => format!("{}.<key>", f.name),
            false => f.name.to_string(),
        })
        .collect();
    let mut message = format!("unknown field '{}'; valid fields: {}", abbreviate(name), valid.join(", "));
    let (prefix, key) = match name.split_once('.') {
        Some((prefix, key)) => (prefix, Some(key)),
        None => (name, None),
    };
    if let Some(field) = closest(schema.fields.iter(), prefix) {
        let suggestion = match key.filter(|_| is_label(field.kind)) {
            Some(key) => format!("{}.{}", field.name, abbreviate(key)),
            None => field.name.to_string(),
        };
        message.push_str(&format!("; did you mean '{suggestion}'?"));
    }
    SearchError::new(pos, message)
}

/// The field whose name is within two edits of `typed`, to catch typos.
fn closest<'f>(fields: impl Iterator<Item = &'f Field>, typed: &str) -> Option<&'f Field> {
    let typed = typed.to_ascii_lowercase();
    fields
        .map(|f| (edit_distance(&typed, &f.name.to_ascii_lowercase()), f))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Levenshtein distance with adjacent swaps counted as one edit, since
/// swapped letters are the most common typo in names.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] is the distance between the first i chars of a and the
    // first j of b; the first row and column are pure insertions.
    let mut rows: Vec<Vec<usize>> =
        (0..=a.len()).map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = rows[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(rows[i - 1][j] + 1).min(rows[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Checks a literal against what its field holds.
fn typed(field: &Resolved, literal: Literal, token: &Token) -> Result<Scalar, SearchError> {
    let scalar = match (field.kind, literal) {
        (FieldKind::Text | FieldKind::Labels | FieldKind::ManifestLabels, Literal::Str(s)) => Some(Scalar::Text(s)),
        (FieldKind::Int, Literal::Int(i)) => Some(Scalar::Int(i)),
        (FieldKind::Int, Literal::Bool(b)) => Some(Scalar::Int(i64::from(b))),
        (FieldKind::Time, Literal::Str(s)) => parse_time(&s).map(Scalar::Time),
        _ => None,
    };
    scalar.ok_or_else(|| {
        SearchError::new(
            token.pos,
            format!("expected {} for {}, found {}", expectation(field.kind), field.subject, token.describe()),
        )
    })
}

fn expectation(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "a quoted string",
        FieldKind::Labels | FieldKind::ManifestLabels => "a quoted string (label values are text)",
        FieldKind::Int => "an integer",
        FieldKind::Time => "a quoted RFC 3339 time such as '2026-01-01T00:00:00Z' or a date such as '2026-01-01'",
    }
}

/// Accepts RFC 3339 or a bare `YYYY-MM-DD`, which means midnight UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.to_utc());
    }
    let is_date_shaped = text.len() == 10
        && text.char_indices().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if !is_date_shaped {
        return None;
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Refuses a pattern ending in a lone `\`: PostgreSQL would fail on it at
/// run time, and here we can still say where it is.
fn check_pattern(pattern: &str, pos: usize) -> Result<(), SearchError> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next().is_none() {
            return Err(SearchError::new(
                pos,
                "expected a character after the final '\\' of the pattern, found the \
                 closing quote; write '\\\\' for a literal backslash",
            ));
        }
    }
    Ok(())
}

/// Resolves an `orderBy` field, which must be a sortable plain column.
fn sortable_field(schema: &Schema, name: &str, pos: usize) -> Result<&'static Field, SearchError> {
    let sortable = || schema.fields.iter().filter(|f| f.sortable && !is_label(f.kind));
    let names: Vec<&str> = sortable().map(|f| f.name).collect();
    let names = match names.is_empty() {
        true => "nothing".to_string(),
        false => names.join(", "),
    };
    let resource = schema.resource;
    let direct = find(schema, name);
    if let Some(field) = direct
        && field.sortable
        && !is_label(field.kind)
    {
        return Ok(field);
    }
    let known = direct.is_some() || name.split_once('.').is_some_and(|(prefix, _)| find(schema, prefix).is_some());
    if known {
        return Err(SearchError::new(
            pos,
            format!("expected a sortable field, found '{}'; {resource} can be sorted by: {names}", abbreviate(name)),
        ));
    }
    let mut message = format!("unknown field '{}'; {resource} can be sorted by: {names}", abbreviate(name));
    if let Some(field) = closest(sortable(), name) {
        message.push_str(&format!("; did you mean '{}'?", field.name));
    }
    Err(SearchError::new(pos, message))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::BUNDLES;
    use super::*;

    /// Renders the AST as an s-expression so tests can state its shape.
    fn shape(expr: &Expr) -> String {
        let list = |op: &str, terms: &[Expr]| {
            let inner: Vec<String> = terms.iter().map(shape).collect();
            format!("({op} {})", inner.join(" "))
        };
        match expr {
            Expr::And(terms) => list("and", terms),
            Expr::Or(terms) => list("or", terms),
            Expr::Not(inner) => format!("(not {})", shape(inner)),
            Expr::Test(c) => test_shape(c),
        }
    }

    fn test_shape(c: &Comparison) -> String {
        let target = match &c.target {
            Target::Column(column) => column.to_string(),
            Target::Label { column, key, .. } => format!("{column}[{key}]"),
        };
        let not = |negated: &bool| if *negated { "not " } else { "" };
        match &c.test {
            Test::Compare(op, v) => format!("{target} {} {}", op.sql(), scalar(v)),
            Test::In { negated, values } => {
                let values: Vec<String> = values.iter().map(scalar).collect();
                format!("{target} {}in {}", not(negated), values.join(","))
            }
            Test::Like { negated, pattern } => {
                format!("{target} {}like {pattern}", not(negated))
            }
            Test::IsNull { negated } => format!("{target} is {}null", not(negated)),
        }
    }

    fn scalar(v: &Scalar) -> String {
        match v {
            Scalar::Text(s) => format!("'{s}'"),
            Scalar::Int(i) => i.to_string(),
            Scalar::Time(t) => t.to_rfc3339(),
        }
    }

    fn parsed(input: &str) -> String {
        match parse(input, &BUNDLES) {
            Ok(Some(expr)) => shape(&expr),
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    fn error(input: &str) -> String {
        match parse(input, &BUNDLES) {
            Err(e) => e.to_string(),
            Ok(expr) => panic!("{input:?} should fail, gave {expr:?}"),
        }
    }

    fn sort(input: &str) -> Result<Vec<(&'static str, bool)>, String> {
        parse_order_by(input, &BUNDLES)
            .map(|keys| keys.iter().map(|k| (k.column, k.descending)).collect())
            .map_err(|e| e.to_string())
    }

    // --- Structure and precedence -------------------------------------

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(parsed("name = 'a' or name = 'b' and version = 1"), "(or name = 'a' (and name = 'b' version = 1))");
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(
            parsed("(name = 'a' or name = 'b') and version = 1"),
            "(and (or name = 'a' name = 'b') version = 1)"
        );
    }

    #[test]
    fn not_applies_to_the_next_operand_only() {
        assert_eq!(parsed("not name = 'a' and version = 1"), "(and (not name = 'a') version = 1)");
        assert_eq!(parsed("not not name = 'a'"), "(not (not name = 'a'))");
    }

    #[test]
    fn chains_stay_flat() {
        assert_eq!(parsed("version = 1 or version = 2 or version = 3"), "(or version = 1 version = 2 version = 3)");
    }

    #[test]
    fn keywords_ignore_letter_case() {
        assert_eq!(
            parsed("NOT name LIKE 'a%' AnD version IN (1) Or deleted_at IS NOT NULL"),
            "(or (and (not name like a%) version in 1) deleted_at is not null)"
        );
    }

    #[test]
    fn field_names_ignore_letter_case_and_map_to_columns() {
        assert_eq!(parsed("Consumer_Name = 'c1'"), "consumer = 'c1'");
    }

    #[test]
    fn every_comparison_form_parses() {
        let cases = [
            ("version != 1", "version <> 1"),
            ("version <> 1", "version <> 1"),
            ("version < -1", "version < -1"),
            ("version <= 1", "version <= 1"),
            ("version > 1", "version > 1"),
            ("version >= 1", "version >= 1"),
            ("name in ('a', 'b')", "name in 'a','b'"),
            ("name not in ('a')", "name not in 'a'"),
            ("name like 'a%'", "name like a%"),
            ("name not like 'a%'", "name not like a%"),
            ("deleted_at is null", "deleted_at is null"),
            ("deleted_at is not null", "deleted_at is not null"),
        ];
        for (input, expected) in cases {
            assert_eq!(parsed(input), expected, "{input}");
        }
    }

    #[test]
    fn booleans_are_integers_one_and_zero() {
        assert_eq!(parsed("version = true or version in (false)"), "(or version = 1 version in 0)");
    }

    #[test]
    fn label_fields_split_at_the_first_dot() {
        assert_eq!(parsed("labels.app.kubernetes.io/name = 'web'"), "labels[app.kubernetes.io/name] = 'web'");
        assert_eq!(parsed("manifest_labels.app = 'nginx'"), "manifests[app] = 'nginx'");
    }

    #[test]
    fn times_are_rfc3339_or_dates_at_midnight_utc() {
        assert_eq!(parsed("created_at >= '2026-01-01T02:00:00+02:00'"), "created_at >= 2026-01-01T00:00:00+00:00");
        assert_eq!(parsed("created_at < '2026-03-01'"), "created_at < 2026-03-01T00:00:00+00:00");
    }

    // --- Errors: syntax -----------------------------------------------

    #[test]
    fn a_missing_value_is_reported_at_end_of_input() {
        assert_eq!(error("consumer_name = "), "at position 17: expected a value after '=', found end of input");
    }

    #[test]
    fn unquoted_text_gets_a_hint() {
        assert_eq!(
            error("name = web"),
            "at position 8: expected a value after '=', found 'web'; \
             text needs single quotes, as in 'web'"
        );
    }

    #[test]
    fn a_missing_operator_lists_the_operators() {
        assert_eq!(
            error("name 'a'"),
            "at position 6: expected an operator (=, !=, <>, <, <=, >, >=, in, not in, \
             like, not like, is null, is not null) after 'name', found string 'a'"
        );
    }

    #[test]
    fn a_dangling_connective_wants_a_field() {
        assert_eq!(error("name = 'a' and"), "at position 15: expected a field name after 'and', found end of input");
        assert_eq!(error("and name = 'a'"), "at position 1: expected a field name, found 'and'");
    }

    #[test]
    fn trailing_tokens_are_refused() {
        assert_eq!(
            error("name = 'a' version = 1"),
            "at position 12: expected 'and', 'or' or end of input after string 'a', \
             found 'version'"
        );
    }

    #[test]
    fn parentheses_must_balance() {
        assert_eq!(
            error("(name = 'a'"),
            "at position 12: expected 'and', 'or' or ')' to close the '(' at position 1 \
             after string 'a', found end of input"
        );
        assert_eq!(
            error("name = 'a')"),
            "at position 11: expected 'and', 'or' or end of input, \
             found ')' without a matching '('"
        );
        assert_eq!(error("()"), "at position 2: expected a field name after '(', found ')'");
    }

    #[test]
    fn in_lists_need_parentheses_and_at_least_one_value() {
        assert_eq!(error("name in 'a'"), "at position 9: expected '(' to start the list after 'in', found string 'a'");
        assert_eq!(
            error("name in ()"),
            "at position 10: expected a value (an 'in' list needs at least one) \
             after '(', found ')'"
        );
        assert_eq!(error("name in ('a',)"), "at position 14: expected a value after ',', found ')'");
        assert_eq!(
            error("name in ('a' 'b')"),
            "at position 14: expected ',' or ')' after string 'a', found string 'b'"
        );
    }

    #[test]
    fn not_and_is_must_be_completed() {
        assert_eq!(error("name not = 'a'"), "at position 10: expected 'in' or 'like' after 'not', found '='");
        assert_eq!(
            error("deleted_at is 'x'"),
            "at position 15: expected 'null' or 'not null' after 'is', found string 'x'"
        );
        assert_eq!(error("deleted_at is not 1"), "at position 19: expected 'null' after 'not', found integer 1");
    }

    // --- Errors: fields and types -------------------------------------

    #[test]
    fn unknown_fields_list_the_valid_ones_and_suggest_a_fix() {
        assert_eq!(
            error("nmae = 'x'"),
            "at position 1: unknown field 'nmae'; valid fields: id, consumer_name, name, \
             version, created_at, deleted_at, labels.<key>, manifest_labels.<key>; \
             did you mean 'name'?"
        );
        assert_eq!(
            error("lables.env = 'x'"),
            "at position 1: unknown field 'lables.env'; valid fields: id, consumer_name, \
             name, version, created_at, deleted_at, labels.<key>, manifest_labels.<key>; \
             did you mean 'labels.env'?"
        );
        assert_eq!(
            error("zzz = 'x'"),
            "at position 1: unknown field 'zzz'; valid fields: id, consumer_name, name, \
             version, created_at, deleted_at, labels.<key>, manifest_labels.<key>"
        );
    }

    #[test]
    fn label_fields_need_a_valid_key() {
        assert_eq!(
            error("labels = 'x'"),
            "at position 1: expected a label key after 'labels', as in 'labels.<key>', \
             found none"
        );
        assert_eq!(error("labels. = 'x'"), "at position 8: expected a label key after 'labels.', found none");
        let long = format!("labels.{} = 'x'", "k".repeat(254));
        assert_eq!(error(&long), "at position 8: expected a label key of at most 253 characters, found 254");
        assert!(parse(&format!("labels.{} = 'x'", "k".repeat(253)), &BUNDLES).is_ok());
    }

    #[test]
    fn plain_fields_take_no_key() {
        assert_eq!(
            error("name.first = 'x'"),
            "at position 1: expected a label field before '.first', found 'name', \
             which holds text"
        );
    }

    #[test]
    fn key_characters_are_checked_even_past_the_lexer() {
        let e = check_label_key("labels", "a b", 8).map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("at position 8: expected a label key of letters, digits, '.', '_', '/' \
                 and '-', found 'a b'"
                .to_string())
        );
    }

    #[test]
    fn integer_fields_need_integers() {
        assert_eq!(error("version = '2'"), "at position 11: expected an integer for field 'version', found string '2'");
        assert_eq!(
            error("version in (1, 'x')"),
            "at position 16: expected an integer for field 'version', found string 'x'"
        );
    }

    #[test]
    fn text_and_label_fields_need_quoted_strings() {
        assert_eq!(error("name = 5"), "at position 8: expected a quoted string for field 'name', found integer 5");
        assert_eq!(
            error("labels.replicas = 3"),
            "at position 19: expected a quoted string (label values are text) for \
             label 'labels.replicas', found integer 3"
        );
        assert_eq!(error("name = true"), "at position 8: expected a quoted string for field 'name', found 'true'");
    }

    #[test]
    fn time_fields_need_rfc3339_or_a_date() {
        let expected = "expected a quoted RFC 3339 time such as '2026-01-01T00:00:00Z' \
                        or a date such as '2026-01-01' for field 'created_at'";
        assert_eq!(error("created_at > 'yesterday'"), format!("at position 14: {expected}, found string 'yesterday'"));
        assert_eq!(
            error("created_at > '2026-13-01'"),
            format!("at position 14: {expected}, found string '2026-13-01'")
        );
        assert_eq!(error("created_at > '2026-1-1'"), format!("at position 14: {expected}, found string '2026-1-1'"));
        assert_eq!(error("created_at > 1"), format!("at position 14: {expected}, found integer 1"));
    }

    #[test]
    fn like_is_only_for_text_and_labels() {
        assert_eq!(
            error("version like '1%'"),
            "at position 9: expected a text or label field before 'like', \
             found field 'version', which holds integers"
        );
        assert_eq!(
            error("created_at not like '2026%'"),
            "at position 16: expected a text or label field before 'like', \
             found field 'created_at', which holds times"
        );
        assert_eq!(error("name like 5"), "at position 11: expected a quoted pattern after 'like', found integer 5");
        assert!(parse("labels.env like 'p%'", &BUNDLES).is_ok());
        assert!(parse("manifest_labels.app not like 'p%'", &BUNDLES).is_ok());
    }

    #[test]
    fn a_pattern_cannot_end_with_a_lone_escape() {
        assert_eq!(
            error(r"name like 'a\'"),
            r"at position 11: expected a character after the final '\' of the pattern, found the closing quote; write '\\' for a literal backslash"
        );
        assert!(parse(r"name like 'a\\'", &BUNDLES).is_ok());
        assert!(parse(r"name like 'a\%'", &BUNDLES).is_ok());
    }

    #[test]
    fn null_is_only_compared_with_is() {
        assert_eq!(
            error("deleted_at = null"),
            "at position 14: expected a value after '=', found 'null'; use 'is null'"
        );
        assert_eq!(
            error("deleted_at <> NULL"),
            "at position 15: expected a value after '<>', found 'NULL'; use 'is not null'"
        );
        assert_eq!(
            error("version > null"),
            "at position 11: expected a value after '>', found 'null'; \
             null has no order; use 'is null' or 'is not null'"
        );
        assert_eq!(
            error("name in ('a', null)"),
            "at position 15: expected a value in the 'in' list, found 'null'; use 'is null'"
        );
    }

    // --- Errors: abuse limits -----------------------------------------

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}name = 'a'{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok, &BUNDLES).is_ok());
        let deep = format!("{}name = 'a'", "(".repeat(MAX_DEPTH + 1));
        assert_eq!(error(&deep), "at position 33: expected at most 32 levels of 'not' and parentheses, found more");
        let nots = format!("{}name = 'a'", "not ".repeat(MAX_DEPTH + 1));
        assert_eq!(error(&nots), "at position 129: expected at most 32 levels of 'not' and parentheses, found more");
    }

    #[test]
    fn pathological_nesting_fails_cleanly_instead_of_overflowing() {
        assert!(parse(&"(".repeat(4096), &BUNDLES).is_err());
        assert!(parse(&"not ".repeat(1024), &BUNDLES).is_err());
    }

    #[test]
    fn comparisons_are_limited() {
        let search = |n: usize| vec!["version=1"; n].join(" or ");
        assert!(parse(&search(MAX_COMPARISONS), &BUNDLES).is_ok());
        assert_eq!(
            error(&search(MAX_COMPARISONS + 1)),
            "at position 2601: expected at most 200 comparisons, found more"
        );
    }

    #[test]
    fn in_lists_are_limited() {
        let list = |n: usize| format!("version in ({})", vec!["1"; n].join(","));
        assert!(parse(&list(MAX_IN_VALUES), &BUNDLES).is_ok());
        assert_eq!(
            error(&list(MAX_IN_VALUES + 1)),
            "at position 213: expected at most 100 values in an 'in' list, found more"
        );
    }

    // --- orderBy -------------------------------------------------------

    #[test]
    fn order_by_defaults_to_ascending() {
        assert_eq!(
            sort("name, version DESC, created_at asc"),
            Ok(vec![("name", false), ("version", true), ("created_at", false)])
        );
    }

    #[test]
    fn order_by_refuses_unknown_and_unsortable_fields() {
        assert_eq!(
            sort("nmae"),
            Err("at position 1: unknown field 'nmae'; bundles can be sorted by: id, \
                 consumer_name, name, version, created_at; did you mean 'name'?"
                .to_string())
        );
        assert_eq!(
            sort("deleted_at"),
            Err("at position 1: expected a sortable field, found 'deleted_at'; bundles \
                 can be sorted by: id, consumer_name, name, version, created_at"
                .to_string())
        );
        // Label fields have no single value per row, whatever the schema says.
        assert_eq!(
            sort("name, labels.env"),
            Err("at position 7: expected a sortable field, found 'labels.env'; bundles \
                 can be sorted by: id, consumer_name, name, version, created_at"
                .to_string())
        );
    }

    #[test]
    fn order_by_refuses_bad_directions_duplicates_and_stray_tokens() {
        assert_eq!(
            sort("name up"),
            Err("at position 6: expected 'asc', 'desc', ',' or end of input after \
                 'name', found 'up'"
                .to_string())
        );
        assert_eq!(
            sort("name desc desc"),
            Err("at position 11: expected ',' or end of input after 'desc', found 'desc'".to_string())
        );
        assert_eq!(
            sort("name, NAME desc"),
            Err("at position 7: expected each field once, found 'NAME' again".to_string())
        );
        assert_eq!(
            sort("name,"),
            Err("at position 6: expected a field name after ',', found end of input".to_string())
        );
        assert_eq!(
            sort("name; drop table x"),
            Err("at position 5: expected a field, value, operator or parenthesis, \
                 found ';'"
                .to_string())
        );
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("version", "version"), 0);
    }
}
