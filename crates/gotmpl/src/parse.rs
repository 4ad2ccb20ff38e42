//! The parser: items into Go's node tree (`text/template/parse`), with Go's parse-time checks —
//! every function must exist, every variable must be declared in scope, `{{end}}`s must
//! match — and Go's positions, so errors point where Go's do.

use std::fmt;

use crate::error::ParseError;
use crate::lex::{Item, Keyword, Tok};
pub use crate::number::{Number, parse_number};

/// A parsed template body.
#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break(usize),
    Continue(usize),
}

/// `if`, `range` and `with`: a pipeline, the list it guards and the `else` list.
#[derive(Debug, Clone)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    /// Variables the pipeline declares (`:=`) or assigns (`=`).
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B`
    Field {
        pos: usize,
        names: Vec<String>,
    },
    /// `$x.A.B` (names empty: `$x`)
    Variable {
        pos: usize,
        name: String,
        names: Vec<String>,
    },
    /// `(pipeline).A.B`
    Chain {
        pos: usize,
        pipe: Box<Pipe>,
        names: Vec<String>,
    },
    Ident {
        pos: usize,
        name: String,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    Str {
        pos: usize,
        text: String,
        value: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Ident { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _) => *pos,
            Arg::Pipe(pipe) => pipe.pos,
        }
    }
}

fn dotted(names: &[String]) -> String {
    names.iter().map(|n| format!(".{n}")).collect()
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { names, .. } => write!(f, "{}", dotted(names)),
            Arg::Variable { name, names, .. } => write!(f, "{name}{}", dotted(names)),
            Arg::Chain { pipe, names, .. } => write!(f, "({pipe}){}", dotted(names)),
            Arg::Ident { name, .. } => write!(f, "{name}"),
            Arg::Dot(_) => write!(f, "."),
            Arg::Nil(_) => write!(f, "nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => write!(f, "{}", n.text),
            Arg::Str { text, .. } => write!(f, "{text}"),
            Arg::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, arg) in self.args.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{} {} ", self.decl.join(", "), if self.is_assign { "=" } else { ":=" })?;
        }
        for (n, cmd) in self.cmds.iter().enumerate() {
            if n > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

/// Names a template may call, checked at parse time as Go checks its function map.
pub trait Functions {
    fn has(&self, name: &str) -> bool;
}

pub fn parse(name: &str, src: &str, items: Vec<Item>, funcs: &dyn Functions) -> Result<Vec<Node>, ParseError> {
    let mut parser = Parser { name, src, items, at: 0, vars: vec!["$".to_string()], funcs, range_depth: 0 };
    let (list, end) = parser.list()?;
    match end {
        Closer::Eof => Ok(list),
        Closer::EndKeyword(pos) => Err(parser.error(pos, "unexpected {{end}}")),
        Closer::Else(pos, _) => Err(parser.error(pos, "unexpected {{else}}")),
    }
}

/// What ended a list.
enum Closer {
    Eof,
    EndKeyword(usize),
    /// `{{else}}`, or `{{else if ...}}`/`{{else with ...}}` (the keyword).
    Else(usize, Option<Keyword>),
}

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    items: Vec<Item>,
    at: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    funcs: &'a dyn Functions,
    range_depth: usize,
}

impl Parser<'_> {
    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.name, self.src, pos, message.into())
    }

    fn peek(&self) -> &Item {
        &self.items[self.at.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let item = self.peek().clone();
        self.at = (self.at + 1).min(self.items.len());
        item
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), ParseError> {
        let item = self.next();
        if item.tok != Tok::RightDelim {
            return Err(self.error(item.pos, format!("unexpected {} in {context}", describe(&item.tok))));
        }
        Ok(())
    }

    fn list(&mut self) -> Result<(Vec<Node>, Closer), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let item = self.next();
            match item.tok {
                Tok::Eof => return Ok((nodes, Closer::Eof)),
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::Comment => {}
                Tok::LeftDelim => {
                    if let Some(end) = self.action(&mut nodes)? {
                        return Ok((nodes, end));
                    }
                }
                other => return Err(self.error(item.pos, format!("unexpected {}", describe(&other)))),
            }
        }
    }

    /// One action after `{{`; returns what ends the enclosing list, if it is `end`/`else`.
    fn action(&mut self, nodes: &mut Vec<Node>) -> Result<Option<Closer>, ParseError> {
        let item = self.peek().clone();
        let Tok::Keyword(keyword) = item.tok else {
            let pipe = self.pipeline("command", false)?;
            nodes.push(Node::Action(pipe));
            return Ok(None);
        };
        self.next();
        match keyword {
            Keyword::End => {
                self.expect_right_delim("end")?;
                return Ok(Some(Closer::EndKeyword(item.pos)));
            }
            Keyword::Else => {
                let next = self.peek().tok.clone();
                if let Tok::Keyword(k @ (Keyword::If | Keyword::With)) = next {
                    return Ok(Some(Closer::Else(item.pos, Some(k))));
                }
                self.expect_right_delim("else")?;
                return Ok(Some(Closer::Else(item.pos, None)));
            }
            Keyword::If => nodes.push(Node::If(self.branch(Keyword::If)?)),
            Keyword::With => nodes.push(Node::With(self.branch(Keyword::With)?)),
            Keyword::Range => nodes.push(Node::Range(self.branch(Keyword::Range)?)),
            Keyword::Break | Keyword::Continue => {
                if self.range_depth == 0 {
                    let word = if keyword == Keyword::Break { "break" } else { "continue" };
                    return Err(self.error(item.pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                self.expect_right_delim(if keyword == Keyword::Break { "break" } else { "continue" })?;
                nodes.push(if keyword == Keyword::Break { Node::Break(item.pos) } else { Node::Continue(item.pos) });
            }
            Keyword::Define | Keyword::Template | Keyword::Block => {
                return Err(
                    self.error(item.pos, "define, template and block are not supported: KUDO renders each file alone")
                );
            }
        }
        Ok(None)
    }

    /// `if`/`with`/`range` through its `{{end}}`; variables it declares end with it.
    fn branch(&mut self, keyword: Keyword) -> Result<Branch, ParseError> {
        let mark = self.vars.len();
        let range = keyword == Keyword::Range;
        let context = match keyword {
            Keyword::If => "if",
            Keyword::With => "with",
            _ => "range",
        };
        let pipe = self.pipeline(context, range)?;
        self.range_depth += usize::from(range);
        let listed = self.list();
        self.range_depth -= usize::from(range);
        let (list, end) = listed?;
        let else_list = match end {
            Closer::EndKeyword(_) => None,
            Closer::Eof => return Err(self.error(self.src.len(), "unexpected EOF")),
            // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing this `{{end}}`.
            Closer::Else(_, Some(next)) => {
                self.next();
                let inner = self.branch(next)?;
                Some(vec![if next == Keyword::If { Node::If(inner) } else { Node::With(inner) }])
            }
            Closer::Else(_, None) => match self.list()? {
                (nodes, Closer::EndKeyword(_)) => Some(nodes),
                (_, Closer::Else(pos, _)) => return Err(self.error(pos, "expected end; found {{else}}")),
                (_, Closer::Eof) => return Err(self.error(self.src.len(), "unexpected EOF")),
            },
        };
        self.vars.truncate(mark);
        Ok(Branch { pipe, list, else_list })
    }

    /// A pipeline through the right delimiter.
    fn pipeline(&mut self, context: &str, range: bool) -> Result<Pipe, ParseError> {
        let pos = self.peek().pos;
        let (decl, is_assign) = self.declarations(range)?;
        let cmds = self.commands(context, &Tok::RightDelim)?;
        self.finish_pipe(pos, decl, is_assign, cmds, context)
    }

    /// Commands separated by `|`, through `close`.
    fn commands(&mut self, context: &str, close: &Tok) -> Result<Vec<Command>, ParseError> {
        let mut cmds = Vec::new();
        loop {
            let item = self.peek().clone();
            if &item.tok == close && cmds.is_empty() {
                return Err(self.error(item.pos, format!("missing value for {context}")));
            }
            if matches!(item.tok, Tok::RightDelim | Tok::Eof) && close == &Tok::RightParen {
                return Err(self.error(item.pos, "unclosed left paren"));
            }
            cmds.push(self.command()?);
            let item = self.next();
            match item.tok {
                Tok::Pipe => continue,
                ref tok if tok == close => return Ok(cmds),
                Tok::RightDelim | Tok::Eof if close == &Tok::RightParen => {
                    return Err(self.error(item.pos, "unclosed left paren"));
                }
                other => return Err(self.error(item.pos, format!("unexpected {} in {context}", describe(&other)))),
            }
        }
    }

    fn finish_pipe(
        &self,
        pos: usize,
        decl: Vec<String>,
        is_assign: bool,
        cmds: Vec<Command>,
        context: &str,
    ) -> Result<Pipe, ParseError> {
        if cmds.is_empty() {
            return Err(self.error(pos, format!("missing value for {context}")));
        }
        for (n, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(cmd.args[0], Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. }) {
                return Err(self.error(cmd.pos, format!("non executable command in pipeline stage {}", n + 1)));
            }
        }
        Ok(Pipe { pos, decl, is_assign, cmds })
    }

    /// `$x :=`, `$x =`, or in a range `$i, $v :=`; declared variables enter the scope.
    fn declarations(&mut self, range: bool) -> Result<(Vec<String>, bool), ParseError> {
        let start = self.at;
        let Tok::Variable(first) = self.peek().tok.clone() else { return Ok((vec![], false)) };
        self.next();
        let mut names = vec![first];
        if range && self.peek().tok == Tok::Comma {
            self.next();
            let item = self.next();
            let Tok::Variable(second) = item.tok else {
                return Err(self.error(item.pos, "range can only initialize variables"));
            };
            names.push(second);
        }
        match self.peek().tok {
            Tok::Declare => {
                self.next();
                self.vars.extend(names.iter().cloned());
                Ok((names, false))
            }
            Tok::Assign if names.len() == 1 => {
                self.next();
                let pos = self.items[start].pos;
                self.check_var(pos, &names[0])?;
                Ok((names, true))
            }
            _ => {
                self.at = start;
                Ok((vec![], false))
            }
        }
    }

    fn check_var(&self, pos: usize, name: &str) -> Result<(), ParseError> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err(self.error(pos, format!("undefined variable {name:?}")))
        }
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            match self.peek().tok {
                Tok::RightDelim | Tok::RightParen | Tok::Pipe => break,
                _ => args.push(self.operand()?),
            }
        }
        if args.is_empty() {
            return Err(self.error(pos, "empty command"));
        }
        Ok(Command { pos, args })
    }

    /// A term and the fields that follow it (`(x).a.b`, `$x.a`, `.a.b`).
    fn operand(&mut self) -> Result<Arg, ParseError> {
        let term = self.term()?;
        if !self.adjacent_field() {
            return Ok(term);
        }
        let chain_pos = self.peek().pos;
        let mut names = Vec::new();
        while self.adjacent_field() {
            let Tok::Field(name) = self.next().tok else { break };
            names.push(name);
        }
        Ok(match term {
            Arg::Field { names: mut first, .. } => {
                first.extend(names);
                Arg::Field { pos: chain_pos, names: first }
            }
            Arg::Variable { name, names: mut first, .. } => {
                first.extend(names);
                Arg::Variable { pos: chain_pos, name, names: first }
            }
            Arg::Pipe(pipe) => Arg::Chain { pos: chain_pos, pipe, names },
            other => return Err(self.error(chain_pos, format!("unexpected . after term {:?}", other.to_string()))),
        })
    }

    /// A field right after the previous item, with no space: `x.f`, not `x .f`.
    fn adjacent_field(&self) -> bool {
        let item = self.peek();
        matches!(item.tok, Tok::Field(_)) && !item.spaced
    }

    fn term(&mut self) -> Result<Arg, ParseError> {
        let item = self.next();
        let pos = item.pos;
        Ok(match item.tok {
            Tok::Ident(name) => {
                if !self.funcs.has(&name) {
                    return Err(self.error(pos, format!("function {name:?} not defined")));
                }
                Arg::Ident { pos, name }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(name) => {
                self.check_var(pos, &name)?;
                Arg::Variable { pos, name, names: vec![] }
            }
            Tok::Field(name) => Arg::Field { pos, names: vec![name] },
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::Number(text) => match parse_number(&text) {
                Some(n) => Arg::Number(pos, n),
                None => return Err(self.error(pos, format!("illegal number syntax: {text:?}"))),
            },
            Tok::Char(text) => match char_value(&text) {
                Some(c) => Arg::Number(pos, Number { text, int: Some(c), float: Some(c as f64) }),
                None => return Err(self.error(pos, format!("malformed character constant: {text}"))),
            },
            Tok::Str(text, value) => Arg::Str { pos, text, value },
            Tok::LeftParen => {
                let pipe = self.paren_pipeline(pos)?;
                Arg::Pipe(Box::new(pipe))
            }
            other => return Err(self.error(pos, format!("unexpected {} in operand", describe(&other)))),
        })
    }

    fn paren_pipeline(&mut self, pos: usize) -> Result<Pipe, ParseError> {
        let (decl, is_assign) = self.declarations(false)?;
        let context = "parenthesized pipeline";
        let cmds = self.commands(context, &Tok::RightParen)?;
        self.finish_pipe(pos, decl, is_assign, cmds, context)
    }
}

fn char_value(text: &str) -> Option<i64> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = inner.chars();
    let c = match chars.next()? {
        '\\' => match chars.next()? {
            'n' => '\n',
            't' => '\t',
            '\\' => '\\',
            '\'' => '\'',
            _ => return None,
        },
        c => c,
    };
    chars.next().is_none().then_some(c as i64)
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::RightDelim => "\"}}\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Ident(n) => format!("<{n}>"),
        Tok::Str(text, _) => text.clone(),
        Tok::Number(n) => format!("<{n}>"),
        other => format!("{other:?}"),
    }
}
