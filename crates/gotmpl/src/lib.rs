//! Go's `text/template` with sprig's functions, configured as KUDO renders operator packages
//! (`missingkey=error`, sprig's text functions without the environment ones, plus `toYaml`):
//! the same text byte for byte, and the same errors, naming template, line, column and key.
//!
//! ```
//! use maestro_gotmpl::{Template, Value};
//! let template = Template::parse("t.yaml", "replicas: {{ .Params.N | int | add 1 }}\n").unwrap();
//! let params = Value::Map([("N".to_string(), Value::from("2"))].into());
//! let data = Value::Map([("Params".to_string(), params)].into());
//! assert_eq!(template.render(&data).unwrap(), "replicas: 3\n");
//! ```
//!
//! Modules: [`lex`] (Go's lexer rules), [`parse`] (Go's node tree and parse-time checks),
//! [`exec`] (the walk over the data), [`funcs`] (builtins, sprig, `toYaml`), [`kudo`] (the data
//! KUDO gives templates: typed parameters), [`value`] (Go's
//! types as the template sees them), [`format`] (Go's `%v`, `%q`, `printf`), [`yaml`]
//! (yaml.v2's output), [`error`].
//!
//! Not supported, because KUDO renders each file alone: `define`, `template`, `block`.
//! Everything a template could make grow without bound is bounded ([`Limits`]).

pub mod error;
pub mod exec;
pub mod format;
pub mod funcs;
pub mod kudo;
pub mod lex;
pub mod number;
pub mod parse;
mod refs;
pub mod value;
pub mod yaml;

pub use error::{Error, ExecError, ParseError};
pub use value::Value;

/// Bounds on one template.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source accepted.
    pub max_source: usize,
    /// Deepest nesting of blocks and parentheses.
    pub max_depth: usize,
    /// Most bytes one render may produce.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_source: 1 << 20, max_depth: 100, max_output: 16 << 20 }
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    nodes: Vec<parse::Node>,
    limits: Limits,
}

struct Kudo;

impl parse::Functions for Kudo {
    fn has(&self, name: &str) -> bool {
        funcs::kudo().contains_key(name)
    }
}

impl Template {
    /// Parses `source` as the template `name` (the name errors carry), with KUDO's functions.
    pub fn parse(name: &str, source: &str) -> Result<Template, ParseError> {
        Self::parse_with(name, source, Limits::default())
    }

    pub fn parse_with(name: &str, source: &str, limits: Limits) -> Result<Template, ParseError> {
        if source.len() > limits.max_source {
            let message = format!("template is {} bytes, over the limit of {}", source.len(), limits.max_source);
            return Err(ParseError { template: name.to_string(), line: 1, message });
        }
        let items = lex::lex(name, source)?;
        check_depth(name, source, &items, limits.max_depth)?;
        let nodes = parse::parse(name, source, items, &Kudo)?;
        Ok(Template { name: name.to_string(), source: source.to_string(), nodes, limits })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders with `data` as dot (and `$`).
    pub fn render(&self, data: &Value) -> Result<String, ExecError> {
        let limits = exec::Limits { max_output: self.limits.max_output };
        exec::execute(&self.name, &self.source, &self.nodes, data, funcs::kudo(), &limits)
    }
}

/// Refuses nesting deeper than `max` before the recursive parser sees it.
fn check_depth(name: &str, source: &str, items: &[lex::Item], max: usize) -> Result<(), ParseError> {
    use lex::{Keyword, Tok};
    let mut depth: usize = 0;
    let mut after_delim = false;
    for item in items {
        let opens = matches!(item.tok, Tok::LeftParen)
            || after_delim && matches!(item.tok, Tok::Keyword(Keyword::If | Keyword::Range | Keyword::With));
        let closes = matches!(item.tok, Tok::RightParen) || after_delim && item.tok == Tok::Keyword(Keyword::End);
        if opens {
            depth += 1;
            if depth > max {
                return Err(ParseError::new(name, source, item.pos, format!("nesting deeper than {max}")));
            }
        }
        if closes {
            depth = depth.saturating_sub(1);
        }
        after_delim = item.tok == Tok::LeftDelim;
    }
    Ok(())
}

/// Parses and renders in one go, as KUDO does for each template; [`Error::kudo_text`] words a
/// failure as KUDO's goldens hold it.
pub fn render(name: &str, source: &str, data: &Value) -> Result<String, Error> {
    Ok(Template::parse(name, source)?.render(data)?)
}

impl Template {
    /// The fields this template reads from the data's root: `.A.B` where dot is the root (not
    /// inside `range` or `with`) and `$.A.B` anywhere, as name chains. What `package verify`
    /// checks parameters and implicit names against.
    pub fn root_fields(&self) -> Vec<Vec<String>> {
        let mut found = Vec::new();
        refs::nodes(&self.nodes, true, &mut found);
        found
    }
}
