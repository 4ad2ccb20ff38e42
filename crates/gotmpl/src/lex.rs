//! The lexer: Go's `text/template/parse/lex.go` rules, producing the items the parser reads.
//!
//! Text runs until `{{`. `{{- ` trims the white space (` \t\r\n`) before it, ` -}}` the white
//! space after it; `{{/* ... */}}` is a comment and must close right at the delimiter.
//! Positions are byte offsets in the source, from which errors compute `line:column` as Go does.

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Comment,
    Ident(String),
    /// `.Name`: the name without its dot.
    Field(String),
    /// `$name` or `$`.
    Variable(String),
    Dot,
    /// A quoted string: its source text and its value.
    Str(String, String),
    Number(String),
    Char(String),
    Bool(bool),
    Nil,
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Keyword(Keyword),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub tok: Tok,
    pub pos: usize,
    /// White space comes right before it (Go's lexer emits it as an item; only field chains
    /// care: `x.f` is a chain, `x .f` two operands).
    pub spaced: bool,
}

const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn has_left_trim(rest: &[u8]) -> bool {
    rest.len() >= 2 && rest[0] == b'-' && is_space(rest[1])
}

fn has_right_trim(rest: &[u8]) -> bool {
    rest.len() >= 2 && is_space(rest[0]) && rest[1] == b'-'
}

/// Splits `src` into items.
pub fn lex(name: &str, src: &str) -> Result<Vec<Item>, ParseError> {
    Lexer { name, src, bytes: src.as_bytes(), pos: 0, items: Vec::new() }.run()
}

struct Lexer<'a> {
    name: &'a str,
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    items: Vec<Item>,
}

impl<'a> Lexer<'a> {
    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.name, self.src, at, message.into())
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        let spaced = pos > 0 && is_space(self.bytes[pos - 1]);
        self.items.push(Item { tok, pos, spaced });
    }

    fn run(mut self) -> Result<Vec<Item>, ParseError> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let found = self.src[start..].find("{{");
            let end = found.map_or(self.src.len(), |x| start + x);
            let mut text = &self.src[start..end];
            if trim_next {
                text = text.trim_start_matches(SPACE);
            }
            let left_trim = found.is_some() && has_left_trim(&self.bytes[end + 2..]);
            if left_trim {
                text = text.trim_end_matches(SPACE);
            }
            if !text.is_empty() {
                let at = end - text.len();
                self.emit(Tok::Text(text.to_string()), at);
            }
            if found.is_none() {
                self.emit(Tok::Eof, self.src.len());
                return Ok(self.items);
            }
            self.pos = end + 2 + if left_trim { 2 } else { 0 };
            trim_next = if self.src[self.pos..].starts_with("/*") {
                self.comment(end)?
            } else {
                self.emit(Tok::LeftDelim, end);
                self.action()?
            };
        }
    }

    /// Whether the right delimiter starts here, and whether it trims.
    fn at_right_delim(&self) -> Option<bool> {
        let rest = &self.bytes[self.pos..];
        if has_right_trim(rest) && rest[2..].starts_with(b"}}") {
            Some(true)
        } else if rest.starts_with(b"}}") {
            Some(false)
        } else {
            None
        }
    }

    fn close(&mut self, trim: bool) {
        self.pos += 2 + if trim { 2 } else { 0 };
    }

    fn comment(&mut self, open: usize) -> Result<bool, ParseError> {
        let body = self.pos + 2;
        let Some(x) = self.src[body..].find("*/") else { return Err(self.error(open, "unclosed comment")) };
        self.pos = body + x + 2;
        let Some(trim) = self.at_right_delim() else {
            return Err(self.error(open, "comment ends before closing delimiter"));
        };
        self.emit(Tok::Comment, open);
        self.close(trim);
        Ok(trim)
    }

    /// Items inside one action, through its right delimiter; returns whether it trims after.
    fn action(&mut self) -> Result<bool, ParseError> {
        let mut depth = 0usize;
        loop {
            if let Some(trim) = self.at_right_delim() {
                if depth > 0 {
                    return Err(self.error(self.pos, "unclosed left paren"));
                }
                self.emit(Tok::RightDelim, self.pos);
                self.close(trim);
                return Ok(trim);
            }
            let start = self.pos;
            let Some(c) = self.src[start..].chars().next() else {
                return Err(self.error(start, "unclosed action"));
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => self.pos += 1,
                '=' => self.single(Tok::Assign),
                ':' => {
                    if self.bytes.get(start + 1) != Some(&b'=') {
                        return Err(self.error(start, "expected :="));
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => self.single(Tok::Pipe),
                ',' => self.single(Tok::Comma),
                '(' => {
                    depth += 1;
                    self.single(Tok::LeftParen);
                }
                ')' => {
                    if depth == 0 {
                        return Err(self.error(start, "unexpected right paren U+0029 ')'"));
                    }
                    depth -= 1;
                    self.single(Tok::RightParen);
                }
                '"' => self.quote()?,
                '`' => self.raw_quote()?,
                '\'' => self.char_constant()?,
                '$' => {
                    let name = self.alphanumeric(start + 1)?;
                    self.emit(Tok::Variable(format!("${name}")), start);
                }
                '.' if !self.bytes.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                    let name = self.alphanumeric(start + 1)?;
                    let tok = if name.is_empty() { Tok::Dot } else { Tok::Field(name) };
                    self.emit(tok, start);
                }
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if c == '_' || c.is_alphanumeric() => self.identifier()?,
                c => return Err(self.error(start, format!("unrecognized character in action: {}", unicode_name(c)))),
            }
        }
    }

    fn single(&mut self, tok: Tok) {
        self.emit(tok, self.pos);
        self.pos += 1;
    }

    /// The run of letters, digits and `_` from `from`; it must end where an item may.
    fn alphanumeric(&mut self, from: usize) -> Result<String, ParseError> {
        let len: usize =
            self.src[from..].chars().take_while(|c| *c == '_' || c.is_alphanumeric()).map(char::len_utf8).sum();
        self.pos = from + len;
        self.check_terminator()?;
        Ok(self.src[from..from + len].to_string())
    }

    fn check_terminator(&self) -> Result<(), ParseError> {
        let Some(c) = self.src[self.pos..].chars().next() else { return Ok(()) };
        if matches!(c, ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') || self.at_right_delim().is_some()
        {
            return Ok(());
        }
        Err(self.error(self.pos, format!("bad character {}", unicode_name(c))))
    }

    fn identifier(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let word = self.alphanumeric(start)?;
        let tok = match word.as_str() {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            "nil" => Tok::Nil,
            "if" => Tok::Keyword(Keyword::If),
            "else" => Tok::Keyword(Keyword::Else),
            "end" => Tok::Keyword(Keyword::End),
            "range" => Tok::Keyword(Keyword::Range),
            "with" => Tok::Keyword(Keyword::With),
            "define" => Tok::Keyword(Keyword::Define),
            "template" => Tok::Keyword(Keyword::Template),
            "block" => Tok::Keyword(Keyword::Block),
            "break" => Tok::Keyword(Keyword::Break),
            "continue" => Tok::Keyword(Keyword::Continue),
            _ => Tok::Ident(word),
        };
        self.emit(tok, start);
        Ok(())
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let text: &str = &self.src[start..];
        let len = text
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphanumeric()
                    || *c == '.'
                    || *c == '_'
                    || (*i == 0 && matches!(c, '+' | '-'))
                    || (matches!(c, '+' | '-') && *i > 0 && matches!(text.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P'))
            })
            .count();
        let literal = &text[..len];
        self.pos = start + len;
        if crate::number::parse_number(literal).is_none() {
            return Err(self.error(start, format!("bad number syntax: {literal:?}")));
        }
        self.emit(Tok::Number(literal.to_string()), start);
        Ok(())
    }

    fn quote(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut value = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    let text = self.src[start..self.pos].to_string();
                    self.emit(Tok::Str(text, value), start);
                    return Ok(());
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match unescape(e, &mut chars) {
                        Some(c) => value.push(c),
                        None => return Err(self.error(start, "invalid syntax")),
                    }
                }
                c => value.push(c),
            }
        }
        Err(self.error(start, "unterminated quoted string"))
    }

    fn raw_quote(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let Some(x) = self.src[start + 1..].find('`') else {
            return Err(self.error(start, "unterminated raw quoted string"));
        };
        self.pos = start + 1 + x + 1;
        let value = self.src[start + 1..start + 1 + x].replace('\r', "");
        self.emit(Tok::Str(self.src[start..self.pos].to_string(), value), start);
        Ok(())
    }

    fn char_constant(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut escaped = false;
        for (i, c) in self.src[start + 1..].char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => {
                    self.pos = start + 1 + i + 1;
                    self.emit(Tok::Char(self.src[start..self.pos].to_string()), start);
                    return Ok(());
                }
                '\n' => break,
                _ => escaped = false,
            }
        }
        Err(self.error(start, "unterminated character constant"))
    }
}

/// One escape of a Go string literal after its backslash.
fn unescape(e: char, rest: &mut std::str::CharIndices<'_>) -> Option<char> {
    let hex = |rest: &mut std::str::CharIndices<'_>, n: usize| {
        let digits: String = rest.by_ref().take(n).map(|(_, c)| c).collect();
        (digits.len() == n).then(|| u32::from_str_radix(&digits, 16).ok()).flatten().and_then(char::from_u32)
    };
    Some(match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        'x' => return hex(rest, 2),
        'u' => return hex(rest, 4),
        'U' => return hex(rest, 8),
        '0'..='7' => {
            let digits: String = std::iter::once(e).chain(rest.by_ref().take(2).map(|(_, c)| c)).collect();
            return u32::from_str_radix(&digits, 8).ok().and_then(char::from_u32);
        }
        _ => return None,
    })
}

/// Go's `%#U` of a character: `U+0040 '@'`.
fn unicode_name(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex("t", src).unwrap().into_iter().map(|i| i.tok).collect()
    }

    #[test]
    fn trim_markers_eat_white_space_on_their_side_only() {
        assert_eq!(
            toks("a \n{{- .X -}}\n b"),
            [
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("X".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(toks("{{-3}}")[1], Tok::Number("-3".into()));
    }

    #[test]
    fn comments_vanish_and_may_trim() {
        assert_eq!(toks("a {{- /* x */ -}} b"), [Tok::Text("a".into()), Tok::Comment, Tok::Text("b".into()), Tok::Eof]);
        assert!(lex("t", "{{/* x */ }}").is_err(), "a comment must close at the delimiter");
    }

    #[test]
    fn actions_split_into_go_items() {
        assert_eq!(
            toks(r#"{{ $x := index $.Params.A 0 | printf "%d\n" }}"#)[1..10],
            [
                Tok::Variable("$x".into()),
                Tok::Declare,
                Tok::Ident("index".into()),
                Tok::Variable("$".into()),
                Tok::Field("Params".into()),
                Tok::Field("A".into()),
                Tok::Number("0".into()),
                Tok::Pipe,
                Tok::Ident("printf".into()),
            ]
        );
    }
}
