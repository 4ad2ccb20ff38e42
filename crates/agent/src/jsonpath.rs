//! The JSONPath subset OCM's status feedback uses: fields (`.status.readyReplicas`), quoted
//! keys (`.metadata.labels['app.kubernetes.io/name']`), indexes (`.status.loadBalancer.ingress[0]`)
//! and equality filters (`.status.conditions[?(@.type=="Available")].status`). Kubernetes'
//! `{...}` braces are accepted around the whole path.
//!
//! A path that selects several values yields the first, as OCM's agent reports one value per name.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSONPath {path:?} at position {position}: {message}")]
pub struct PathError {
    pub path: String,
    pub position: usize,
    pub message: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    /// `[?(@.a.b=="value")]`: the elements whose field at `path` equals `value`.
    Filter {
        path: Vec<String>,
        value: Value,
    },
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        let trimmed = text.trim();
        let inner = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(trimmed);
        Parser { text, chars: inner.char_indices().collect(), at: 0 }.parse()
    }

    /// The first value the path selects, if any.
    pub fn first<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        select(&self.steps, root)
    }
}

fn select<'v>(steps: &[Step], value: &'v Value) -> Option<&'v Value> {
    let Some((step, rest)) = steps.split_first() else { return Some(value) };
    match step {
        Step::Field(name) => select(rest, value.get(name.as_str())?),
        Step::Index(i) => select(rest, value.get(*i)?),
        Step::Filter { path, value: wanted } => value
            .as_array()?
            .iter()
            .filter(|item| field_at(item, path) == Some(wanted))
            .find_map(|item| select(rest, item)),
    }
}

fn field_at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key.as_str()))
}

struct Parser<'t> {
    text: &'t str,
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<JsonPath, PathError> {
        let mut steps = Vec::new();
        if self.peek() == Some('$') {
            self.at += 1;
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.at += 1;
                    steps.push(Step::Field(self.identifier()?));
                }
                '[' => {
                    self.at += 1;
                    steps.push(self.bracket()?);
                }
                _ => return Err(self.error("expected '.' or '['")),
            }
        }
        if steps.is_empty() {
            return Err(self.error("the path selects nothing; start it with '.', as in .status"));
        }
        Ok(JsonPath { steps })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|&(_, c)| c)
    }

    fn error(&self, message: &'static str) -> PathError {
        PathError { path: self.text.to_owned(), position: self.at, message }
    }

    fn expect(&mut self, wanted: char, message: &'static str) -> Result<(), PathError> {
        if self.peek() == Some(wanted) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(message))
        }
    }

    fn identifier(&mut self) -> Result<String, PathError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("expected a field name"));
        }
        Ok(self.chars[start..self.at].iter().map(|&(_, c)| c).collect())
    }

    fn bracket(&mut self) -> Result<Step, PathError> {
        let step = match self.peek() {
            Some('\'' | '"') => Step::Field(self.quoted()?),
            Some('?') => self.filter()?,
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let digits: String = self.chars[start..self.at].iter().map(|&(_, c)| c).collect();
                Step::Index(digits.parse().map_err(|_| self.error("index too large"))?)
            }
            _ => return Err(self.error("expected a quoted key, an index or a ?(...) filter")),
        };
        self.expect(']', "expected ']'")?;
        Ok(step)
    }

    fn quoted(&mut self) -> Result<String, PathError> {
        let Some(quote) = self.peek() else { return Err(self.error("expected a quote")) };
        self.at += 1;
        let start = self.at;
        while self.peek().is_some_and(|c| c != quote) {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().map(|&(_, c)| c).collect();
        self.expect(quote, "unterminated quoted string")?;
        Ok(text)
    }

    fn filter(&mut self) -> Result<Step, PathError> {
        self.expect('?', "expected '?'")?;
        self.expect('(', "expected '(' after '?'")?;
        self.expect('@', "expected '@' in the filter")?;
        let mut path = Vec::new();
        while self.peek() == Some('.') {
            self.at += 1;
            path.push(self.identifier()?);
        }
        if path.is_empty() {
            return Err(self.error("expected a field after '@'"));
        }
        self.skip_spaces();
        self.expect('=', "only == filters are supported")?;
        self.expect('=', "only == filters are supported")?;
        self.skip_spaces();
        let value = match self.peek() {
            Some('\'' | '"') => Value::String(self.quoted()?),
            _ => {
                let start = self.at;
                while self.peek().is_some_and(|c| c != ')' && !c.is_whitespace()) {
                    self.at += 1;
                }
                let literal: String = self.chars[start..self.at].iter().map(|&(_, c)| c).collect();
                serde_json::from_str(&literal).map_err(|_| self.error("expected a quoted string, number or boolean"))?
            }
        };
        self.skip_spaces();
        self.expect(')', "expected ')' to close the filter")?;
        Ok(Step::Filter { path, value })
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "status": {
                "readyReplicas": 2,
                "conditions": [
                    {"type": "Progressing", "status": "True"},
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
                ],
                "loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}
            }
        })
    }

    fn eval(path: &str) -> Option<Value> {
        JsonPath::parse(path).unwrap().first(&deployment()).cloned()
    }

    #[test]
    fn dotted_fields_select_nested_values() {
        assert_eq!(eval(".status.readyReplicas"), Some(json!(2)));
        assert_eq!(eval("{.status.readyReplicas}"), Some(json!(2)));
        assert_eq!(eval(".status.missing"), None);
    }

    #[test]
    fn filters_select_the_condition_of_a_type() {
        assert_eq!(eval(r#".status.conditions[?(@.type=="Available")].status"#), Some(json!("False")));
        assert_eq!(eval(".status.conditions[?(@.type == 'Progressing')].status"), Some(json!("True")));
        assert_eq!(eval(r#".status.conditions[?(@.type=="Ready")].status"#), None);
    }

    #[test]
    fn indexes_and_quoted_keys_work() {
        assert_eq!(eval(".status.loadBalancer.ingress[0].ip"), Some(json!("10.0.0.1")));
        assert_eq!(eval(".metadata.labels['app.kubernetes.io/name']"), Some(json!("web")));
    }

    #[test]
    fn malformed_paths_are_refused_with_a_position() {
        for bad in ["status", ".", ".a[", ".a[?(@.b>1)]", ".a['x", ""] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should not parse");
        }
        let error = JsonPath::parse(".a[?(@.b>1)]").unwrap_err();
        assert!(error.message.contains("=="), "{error}");
    }
}
