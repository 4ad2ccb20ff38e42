//! Errors in Go's words: `template: NAME:LINE: ...` for parse errors and
//! `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...` for execution errors, so a
//! package author sees what KUDO would have shown, and tests can compare with Go's output.

/// Line (1-based) and column (0-based byte offset in the line) of `pos`, as Go reports them.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = &src[..pos.min(src.len())];
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => before.len() - nl - 1,
        None => before.len(),
    };
    (line, col)
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {template}:{line}: {message}")]
pub struct ParseError {
    pub template: String,
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(template: &str, src: &str, pos: usize, message: String) -> ParseError {
        ParseError { template: template.to_string(), line: line_col(src, pos).0, message }
    }
}

/// A template that failed while rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {template}:{line}:{column}: executing \"{template}\" at <{node}>: {message}")]
pub struct ExecError {
    pub template: String,
    pub line: usize,
    pub column: usize,
    /// The node being evaluated, as Go prints it (`.Params.X`, `$dc.racks`, `div`).
    pub node: String,
    pub message: String,
}

/// Either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl Error {
    /// The error as KUDO reports it (and the goldens hold it): `parse: ...` or `render: ...`.
    pub fn kudo_text(&self) -> String {
        match self {
            Error::Parse(e) => format!("parse: {e}"),
            Error::Exec(e) => format!("render: {e}"),
        }
    }

    /// The line the error names.
    pub fn line(&self) -> usize {
        match self {
            Error::Parse(e) => e.line,
            Error::Exec(e) => e.line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_byte_offsets_from_the_line_start() {
        assert_eq!(line_col("ab\ncd{{", 5), (2, 2));
        assert_eq!(line_col("abc", 2), (1, 2));
    }
}
