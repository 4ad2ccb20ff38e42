//! Splits search and sort text into tokens.
//!
//! Keywords are not recognised here: they come out as words and the parser
//! decides, so a keyword can never be mistaken for a field in one place and
//! a keyword in another. Positions are 1-based character offsets because
//! they are shown to people, who count characters, not UTF-8 bytes.

use super::SearchError;

/// Longest input accepted, in characters; longer input is refused before
/// any work is done on it.
pub const MAX_INPUT_CHARS: usize = 4096;

/// Words and strings are this long at most when quoted back in messages, so
/// an error about a huge token stays readable.
const MAX_QUOTED_CHARS: usize = 40;

/// A comparison operator, as lexed and as compiled to SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator that is true exactly where this one is false, for
    /// non-NULL operands; lets `not` be pushed into a comparison.
    pub(crate) fn inverse(self) -> Self {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A field name or a keyword.
    Word(String),
    /// A single-quoted string, with `''` already turned into `'`.
    Str(String),
    Int(i64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// 1-based character offset of the token's first character.
    pub(crate) pos: usize,
    /// The token exactly as typed, for quoting it back in errors.
    pub(crate) text: String,
}

impl Token {
    /// Whether this is the given keyword, in any letter case.
    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    /// How the token is named in "found ..." messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            TokenKind::End => "end of input".to_string(),
            TokenKind::Str(_) => format!("string {}", abbreviate(&self.text)),
            TokenKind::Int(_) => format!("integer {}", abbreviate(&self.text)),
            _ => format!("'{}'", abbreviate(&self.text)),
        }
    }
}

/// Cuts long text so messages stay short.
pub(crate) fn abbreviate(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_QUOTED_CHARS - 3).collect();
    format!("{head}...")
}

/// The tokens of an input, with the end-of-input token kept apart so the
/// parser can always look at "the next token" without running off the end.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub(crate) tokens: Vec<Token>,
    pub(crate) end: Token,
}

/// Tokenizes `input`, refusing oversized input up front.
pub(crate) fn tokenize(input: &str) -> Result<Lexed, SearchError> {
    let chars: Vec<char> = input.chars().take(MAX_INPUT_CHARS + 1).collect();
    if chars.len() > MAX_INPUT_CHARS {
        return Err(SearchError::new(
            MAX_INPUT_CHARS + 1,
            format!("expected at most {MAX_INPUT_CHARS} characters, found more"),
        ));
    }
    Lexer { chars, at: 0 }.run()
}

struct Lexer {
    chars: Vec<char>,
    /// 0-based index of the next unread character.
    at: usize,
}

impl Lexer {
    fn run(mut self) -> Result<Lexed, SearchError> {
        let mut tokens = Vec::new();
        loop {
            self.skip_whitespace();
            let Some(c) = self.current() else {
                let end = Token { kind: TokenKind::End, pos: self.at + 1, text: String::new() };
                return Ok(Lexed { tokens, end });
            };
            tokens.push(self.token(c)?);
        }
    }

    fn current(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next_is(&self, wanted: impl Fn(char) -> bool) -> bool {
        self.chars.get(self.at + 1).is_some_and(|&c| wanted(c))
    }

    fn skip_whitespace(&mut self) {
        while self.current().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn token(&mut self, c: char) -> Result<Token, SearchError> {
        let start = self.at;
        let kind = match c {
            '(' => self.single(TokenKind::LParen),
            ')' => self.single(TokenKind::RParen),
            ',' => self.single(TokenKind::Comma),
            '\'' => self.string()?,
            '=' | '!' | '<' | '>' => self.operator(c)?,
            '-' if self.next_is(|n| n.is_ascii_digit()) => self.integer()?,
            c if c.is_ascii_digit() => self.integer()?,
            c if is_word_start(c) => self.word(),
            other => return Err(stray(start + 1, other)),
        };
        Ok(Token { kind, pos: start + 1, text: self.chars[start..self.at].iter().collect() })
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.at += 1;
        kind
    }

    /// Reads a quoted string; a doubled quote stands for one quote, as in
    /// SQL, so people can paste values they already know how to write.
    fn string(&mut self) -> Result<TokenKind, SearchError> {
        let opening = self.at + 1;
        let mut value = String::new();
        self.at += 1;
        loop {
            match self.current() {
                None => {
                    return Err(SearchError::new(
                        opening,
                        "unterminated string: expected a closing ' before end of input",
                    ));
                }
                Some('\'') if self.next_is(|n| n == '\'') => {
                    value.push('\'');
                    self.at += 2;
                }
                Some('\'') => {
                    self.at += 1;
                    return Ok(TokenKind::Str(value));
                }
                Some(c) => {
                    value.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn operator(&mut self, first: char) -> Result<TokenKind, SearchError> {
        let second = self.chars.get(self.at + 1).copied();
        let (op, len) = match (first, second) {
            ('=', _) => (CmpOp::Eq, 1),
            ('!', Some('=')) => (CmpOp::Ne, 2),
            ('<', Some('>')) => (CmpOp::Ne, 2),
            ('<', Some('=')) => (CmpOp::Le, 2),
            ('<', _) => (CmpOp::Lt, 1),
            ('>', Some('=')) => (CmpOp::Ge, 2),
            ('>', _) => (CmpOp::Gt, 1),
            _ => {
                return Err(SearchError::new(self.at + 1, "expected '!=' or the keyword 'not', found '!'"));
            }
        };
        self.at += len;
        Ok(TokenKind::Op(op))
    }

    /// Reads an optionally negative integer. Digits running into letters or
    /// a dot (`2x`, `1.5`) are refused whole rather than split into two
    /// tokens that would produce a confusing error later.
    fn integer(&mut self) -> Result<TokenKind, SearchError> {
        let start = self.at;
        self.at += 1;
        while self.current().is_some_and(is_word_continue) {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().collect();
        let digits = text.strip_prefix('-').unwrap_or(&text);
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(SearchError::new(
                start + 1,
                format!(
                    "expected an integer, found '{}'; only whole numbers are supported \
                     and text must be quoted",
                    abbreviate(&text)
                ),
            ));
        }
        text.parse::<i64>().map(TokenKind::Int).map_err(|_| {
            SearchError::new(
                start + 1,
                format!("expected an integer between {} and {}, found {}", i64::MIN, i64::MAX, abbreviate(&text)),
            )
        })
    }

    fn word(&mut self) -> TokenKind {
        let start = self.at;
        while self.current().is_some_and(is_word_continue) {
            self.at += 1;
        }
        TokenKind::Word(self.chars[start..self.at].iter().collect())
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Dots, slashes and dashes continue a word so that label keys such as
/// `app.kubernetes.io/name` need no quoting.
fn is_word_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

fn stray(position: usize, c: char) -> SearchError {
    let hint = if c == '"' { "; strings use single quotes" } else { "" };
    let shown = if c.is_control() { c.escape_debug().to_string() } else { c.to_string() };
    SearchError::new(position, format!("expected a field, value, operator or parenthesis, found '{shown}'{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        match tokenize(input) {
            Ok(lexed) => lexed.tokens.into_iter().map(|t| t.kind).collect(),
            Err(e) => panic!("{input:?} failed: {e}"),
        }
    }

    fn error(input: &str) -> String {
        match tokenize(input) {
            Err(e) => e.to_string(),
            Ok(lexed) => panic!("{input:?} should fail, gave {:?}", lexed.tokens),
        }
    }

    fn word(w: &str) -> TokenKind {
        TokenKind::Word(w.to_string())
    }

    fn string(s: &str) -> TokenKind {
        TokenKind::Str(s.to_string())
    }

    #[test]
    fn splits_fields_operators_and_literals() {
        use TokenKind::*;
        assert_eq!(
            kinds("version>=2 and name in ('a',b)"),
            vec![
                word("version"),
                Op(CmpOp::Ge),
                Int(2),
                word("and"),
                word("name"),
                word("in"),
                LParen,
                string("a"),
                Comma,
                word("b"),
                RParen,
            ]
        );
    }

    #[test]
    fn every_comparison_operator_is_recognised() {
        let ops: Vec<_> = ["=", "!=", "<>", "<", "<=", ">", ">="].iter().flat_map(|op| kinds(op)).collect();
        use CmpOp::*;
        let expected = [Eq, Ne, Ne, Lt, Le, Gt, Ge].map(TokenKind::Op);
        assert_eq!(ops, expected);
    }

    #[test]
    fn label_keys_with_dots_slashes_and_dashes_are_one_word() {
        assert_eq!(kinds("labels.app.kubernetes.io/name-x_1"), vec![word("labels.app.kubernetes.io/name-x_1")]);
    }

    #[test]
    fn a_doubled_quote_inside_a_string_is_one_quote() {
        assert_eq!(kinds("'it''s'"), vec![string("it's")]);
        assert_eq!(kinds("''"), vec![string("")]);
        assert_eq!(kinds("''''"), vec![string("'")]);
    }

    #[test]
    fn integers_may_be_negative_and_span_the_i64_range() {
        assert_eq!(kinds("-42"), vec![TokenKind::Int(-42)]);
        assert_eq!(
            kinds("-9223372036854775808 9223372036854775807"),
            vec![TokenKind::Int(i64::MIN), TokenKind::Int(i64::MAX)]
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let lexed = tokenize("'héé' = x").ok();
        let positions: Vec<usize> =
            lexed.map(|l| l.tokens.iter().chain([&l.end]).map(|t| t.pos).collect()).unwrap_or_default();
        assert_eq!(positions, vec![1, 7, 9, 10]);
    }

    #[test]
    fn an_unterminated_string_points_at_its_opening_quote() {
        assert_eq!(
            error("name = 'abc"),
            "at position 8: unterminated string: expected a closing ' before end of input"
        );
    }

    #[test]
    fn stray_characters_are_named() {
        assert_eq!(
            error("name = \"x\""),
            "at position 8: expected a field, value, operator or parenthesis, \
             found '\"'; strings use single quotes"
        );
        assert_eq!(error("a # b"), "at position 3: expected a field, value, operator or parenthesis, found '#'");
        assert_eq!(error("a ! b"), "at position 3: expected '!=' or the keyword 'not', found '!'");
    }

    #[test]
    fn numbers_must_be_whole_and_in_range() {
        assert_eq!(
            error("v = 1.5"),
            "at position 5: expected an integer, found '1.5'; only whole numbers are \
             supported and text must be quoted"
        );
        assert_eq!(
            error("v = 99999999999999999999"),
            "at position 5: expected an integer between -9223372036854775808 and \
             9223372036854775807, found 99999999999999999999"
        );
    }

    #[test]
    fn oversized_input_is_refused_before_lexing() {
        let long = "a".repeat(MAX_INPUT_CHARS + 1);
        assert_eq!(error(&long), "at position 4097: expected at most 4096 characters, found more");
        assert!(tokenize(&"a".repeat(MAX_INPUT_CHARS)).is_ok());
    }

    #[test]
    fn tokens_describe_themselves_for_messages() {
        let lexed = tokenize("name 'x' 7 (").ok();
        let described: Vec<String> =
            lexed.map(|l| l.tokens.iter().chain([&l.end]).map(Token::describe).collect()).unwrap_or_default();
        assert_eq!(described, ["'name'", "string 'x'", "integer 7", "'('", "end of input"]);
        assert_eq!(abbreviate(&"x".repeat(50)), format!("{}...", "x".repeat(37)));
    }
}
