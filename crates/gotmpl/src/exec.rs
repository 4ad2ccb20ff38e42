//! The executor: walks the tree over the data as Go's `text/template/exec.go` does, with
//! `missingkey=error` (a missing map key is an error, not `<no value>`).
//!
//! Values are borrowed from the data wherever they can be (`Cow`), so rendering copies only
//! what functions make.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{ExecError, line_col};
use crate::funcs::{Func, Param};
use crate::parse::{Arg, Branch, Command, Node, Pipe};
use crate::value::Value;

type Val<'d> = Cow<'d, Value>;

/// How a list ended: on its own, or at `{{break}}`/`{{continue}}`.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Where and why execution failed, before it is placed in the source.
struct Fail {
    pos: usize,
    node: String,
    message: String,
}

type Result<T> = std::result::Result<T, Fail>;

/// The node being evaluated, which errors name. Go moves it at the same points (each
/// pipeline, command word, argument and call), and so do we: where Go blames a surprising node
/// (a chain's field error on the last argument of its pipeline), we blame the same one.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Arg(&'t Arg),
    Command(&'t Command),
    Pipe(&'t Pipe),
}

impl At<'_> {
    fn fail(self, message: impl Into<String>) -> Fail {
        let (pos, node) = match self {
            At::None => (0, String::new()),
            At::Arg(arg) => (arg.pos(), arg.to_string()),
            At::Command(cmd) => (cmd.pos, cmd.to_string()),
            At::Pipe(pipe) => (pipe.pos, pipe.to_string()),
        };
        Fail { pos, node, message: message.into() }
    }
}

pub struct Limits {
    /// Most bytes of output; past it rendering stops with an error.
    pub max_output: usize,
}

pub fn execute(
    name: &str,
    src: &str,
    nodes: &[Node],
    data: &Value,
    funcs: &HashMap<&'static str, Func>,
    limits: &Limits,
) -> std::result::Result<String, ExecError> {
    let vars = vec![("$", Cow::Borrowed(data))];
    let mut state = State { vars, out: String::new(), funcs, limits, at: At::None };
    match state.walk(&Cow::Borrowed(data), nodes) {
        Ok(_) => Ok(state.out),
        Err(f) => {
            let (line, column) = line_col(src, f.pos);
            Err(ExecError { template: name.to_string(), line, column, node: f.node, message: f.message })
        }
    }
}

struct State<'t, 'd> {
    vars: Vec<(&'t str, Val<'d>)>,
    out: String,
    funcs: &'t HashMap<&'static str, Func>,
    limits: &'t Limits,
    at: At<'t>,
}

impl<'t, 'd> State<'t, 'd> {
    fn walk(&mut self, dot: &Val<'d>, nodes: &'t [Node]) -> Result<Flow> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.write(text)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print(&value)?;
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.if_with(dot, branch, false)?,
                Node::With(branch) => self.if_with(dot, branch, true)?,
                Node::Range(branch) => {
                    self.range(dot, branch)?;
                    Flow::Normal
                }
                Node::Break(_) => Flow::Break,
                Node::Continue(_) => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// An action's value: `<no value>` for nil, as `text/template` prints it.
    fn print(&mut self, value: &Value) -> Result<()> {
        match value {
            Value::Nil => self.write("<no value>"),
            Value::String(s) => self.write(s),
            other => {
                let mut text = String::new();
                other.write_go(&mut text);
                self.write(&text)
            }
        }
    }

    fn write(&mut self, text: &str) -> Result<()> {
        if self.out.len() + text.len() > self.limits.max_output {
            return Err(self.at.fail(format!("output exceeds {} bytes", self.limits.max_output)));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn if_with(&mut self, dot: &Val<'d>, branch: &'t Branch, with: bool) -> Result<Flow> {
        let mark = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let flow = if value.truth() {
            if with { self.walk(&value, &branch.list)? } else { self.walk(dot, &branch.list)? }
        } else if let Some(else_list) = &branch.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, dot: &Val<'d>, branch: &'t Branch) -> Result<()> {
        let mark = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let items = match elements(value) {
            Ok(items) => items,
            Err(shown) => return Err(self.at.fail(format!("range can't iterate over {shown}"))),
        };
        if items.is_empty() {
            if let Some(else_list) = &branch.else_list {
                self.walk(dot, else_list)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        let decls = branch.pipe.decl.len();
        for (index, elem) in items {
            // The pipeline pushed its variables: the last is the element, the one before the
            // index or key.
            if decls > 0 {
                let top = self.vars.len() - 1;
                self.vars[top].1 = elem.clone();
            }
            if decls > 1 {
                let second = self.vars.len() - 2;
                self.vars[second].1 = index;
            }
            let inner = self.vars.len();
            let flow = self.walk(&elem, &branch.list)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipeline(&mut self, dot: &Val<'d>, pipe: &'t Pipe) -> Result<Val<'d>> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Val<'d>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Cow::Owned(Value::Nil));
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name.as_str()) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn command(&mut self, dot: &Val<'d>, cmd: &'t Command, last: Option<Val<'d>>) -> Result<Val<'d>> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { names, .. } => {
                self.at = At::Arg(first);
                self.field_chain(dot.clone(), names, &cmd.args, last)
            }
            Arg::Chain { pipe, names, .. } => {
                let receiver = self.pipeline(dot, pipe)?;
                self.field_chain(receiver, names, &cmd.args, last)
            }
            Arg::Variable { name, names, .. } => {
                self.at = At::Arg(first);
                let value = self.variable(name)?;
                if names.is_empty() {
                    self.not_a_function(&cmd.args, last.is_some())?;
                    return Ok(value);
                }
                self.field_chain(value, names, &cmd.args, last)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&cmd.args, last.is_some())?;
                self.pipeline(dot, pipe)
            }
            Arg::Ident { name, .. } => self.function(dot, first, At::Command(cmd), name, &cmd.args[1..], last),
            constant => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, last.is_some())?;
                match constant {
                    Arg::Dot(_) => Ok(dot.clone()),
                    Arg::Nil(_) => Err(self.at.fail("nil is not a command")),
                    other => Ok(Cow::Owned(constant_value(other))),
                }
            }
        }
    }

    fn not_a_function(&self, args: &[Arg], has_last: bool) -> Result<()> {
        if args.len() > 1 || has_last {
            return Err(self.at.fail(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn variable(&self, name: &str) -> Result<Val<'d>> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.at.fail(format!("undefined variable: {name}"))),
        }
    }

    /// `.a.b.c` on `receiver`; only the last field may receive arguments (which a map's
    /// field never accepts).
    fn field_chain(
        &self,
        mut receiver: Val<'d>,
        names: &[String],
        args: &[Arg],
        last: Option<Val<'d>>,
    ) -> Result<Val<'d>> {
        for (n, name) in names.iter().enumerate() {
            if n + 1 == names.len() && (args.len() > 1 || last.is_some()) {
                return Err(self.at.fail(format!("{name} is not a method but has arguments")));
            }
            receiver = field(receiver, name).map_err(|message| self.at.fail(message))?;
        }
        Ok(receiver)
    }

    /// A call of `name`: `ident` is the function's word, `call` what a failed call blames (the
    /// whole command, or the word alone when it is an argument).
    fn function(
        &mut self,
        dot: &Val<'d>,
        ident: &'t Arg,
        call: At<'t>,
        name: &str,
        args: &'t [Arg],
        last: Option<Val<'d>>,
    ) -> Result<Val<'d>> {
        self.at = At::Arg(ident);
        let Some(func) = self.funcs.get(name).copied() else {
            return Err(self.at.fail(format!("{name:?} is not a defined function")));
        };
        let given = args.len() + usize::from(last.is_some());
        let want = func.params.len();
        match func.variadic {
            Some(_) if given < want => {
                let message = format!("wrong number of args for {name}: want at least {want} got {}", args.len());
                return Err(self.at.fail(message));
            }
            None if given != want => {
                return Err(self.at.fail(format!("wrong number of args for {name}: want {want} got {given}")));
            }
            _ => {}
        }
        if name == "and" || name == "or" {
            return self.and_or(dot, name == "or", args, last);
        }
        let mut values = Vec::with_capacity(given);
        for (n, arg) in args.iter().enumerate() {
            let param = func.params.get(n).copied().or(func.variadic).unwrap_or(Param::Any);
            values.push(self.arg(dot, param, arg)?.into_owned());
        }
        if let Some(last) = last {
            let param = func.params.get(args.len()).copied().or(func.variadic).unwrap_or(Param::Any);
            values.push(check_type(last, param).map_err(|m| self.at.fail(m))?.into_owned());
        }
        match (func.call)(&values) {
            Ok(value) => Ok(Cow::Owned(value)),
            Err(message) => Err(call.fail(format!("error calling {name}: {message}"))),
        }
    }

    /// Go's `and`/`or`: arguments evaluated in order until one decides, that one returned.
    fn and_or(&mut self, dot: &Val<'d>, or: bool, args: &'t [Arg], last: Option<Val<'d>>) -> Result<Val<'d>> {
        let mut value = Cow::Owned(Value::Nil);
        for arg in args {
            value = self.arg(dot, Param::Any, arg)?;
            if value.truth() == or {
                return Ok(value);
            }
        }
        Ok(last.unwrap_or(value))
    }

    /// One argument, evaluated and checked against its parameter's type.
    fn arg(&mut self, dot: &Val<'d>, param: Param, arg: &'t Arg) -> Result<Val<'d>> {
        self.at = At::Arg(arg);
        let value = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match param {
                    Param::Any => Ok(Cow::Owned(Value::Nil)),
                    Param::Map => Ok(Cow::Owned(Value::Map(Default::default()))),
                    other => Err(self.at.fail(format!("cannot assign nil to {}", go_type(other)))),
                };
            }
            Arg::Field { names, .. } => self.field_chain(dot.clone(), names, &[], None)?,
            Arg::Variable { name, names, .. } => {
                let value = self.variable(name)?;
                self.field_chain(value, names, &[], None)?
            }
            Arg::Chain { pipe, names, .. } => {
                let receiver = self.pipeline(dot, pipe)?;
                self.field_chain(receiver, names, &[], None)?
            }
            Arg::Pipe(pipe) => self.pipeline(dot, pipe)?,
            Arg::Ident { name, .. } => self.function(dot, arg, At::Arg(arg), name, &[], None)?,
            constant => return constant_for(param, constant).map(Cow::Owned).map_err(|m| self.at.fail(m)),
        };
        check_type(value, param).map_err(|m| self.at.fail(m))
    }
}

/// What `range` visits: (index or key, element) pairs, or the value shown when it cannot.
#[allow(clippy::type_complexity)]
fn elements(value: Val<'_>) -> std::result::Result<Vec<(Val<'_>, Val<'_>)>, String> {
    let index = |i: usize| Cow::Owned(Value::Int(i as i64));
    Ok(match value {
        Cow::Borrowed(Value::List(items)) => {
            items.iter().enumerate().map(|(i, v)| (index(i), Cow::Borrowed(v))).collect()
        }
        Cow::Owned(Value::List(items)) => {
            items.into_iter().enumerate().map(|(i, v)| (index(i), Cow::Owned(v))).collect()
        }
        Cow::Borrowed(Value::Map(map)) => {
            map.iter().map(|(k, v)| (Cow::Owned(Value::String(k.clone())), Cow::Borrowed(v))).collect()
        }
        Cow::Owned(Value::Map(map)) => {
            map.into_iter().map(|(k, v)| (Cow::Owned(Value::String(k)), Cow::Owned(v))).collect()
        }
        Cow::Borrowed(Value::Nil) | Cow::Owned(Value::Nil) => vec![],
        other => return Err(other.to_go_string()),
    })
}

/// A field of a map; anything else has no fields.
fn field<'d>(receiver: Val<'d>, name: &str) -> std::result::Result<Val<'d>, String> {
    match receiver {
        Cow::Borrowed(Value::Map(map)) => map.get(name).map(Cow::Borrowed),
        Cow::Owned(Value::Map(mut map)) => map.remove(name).map(Cow::Owned),
        Cow::Borrowed(Value::Nil) | Cow::Owned(Value::Nil) => {
            return Err(format!("nil pointer evaluating interface {{}}.{name}"));
        }
        other => return Err(format!("can't evaluate field {name} in type {}", other.type_name())),
    }
    .ok_or_else(|| format!("map has no entry for key {name:?}"))
}

/// A literal's value where any type is accepted: numbers are Go's ideal constants.
fn constant_value(arg: &Arg) -> Value {
    match arg {
        Arg::Bool(_, b) => Value::Bool(*b),
        Arg::Str { value, .. } => Value::String(value.clone()),
        Arg::Number(_, n) => {
            let floaty = n.text.contains(['.', 'e', 'E', 'p', 'P']) && !n.text.to_ascii_lowercase().starts_with("0x");
            match (n.int, n.float) {
                (Some(i), _) if !floaty => Value::Int(i),
                (_, Some(f)) => Value::Float(f),
                (Some(i), None) => Value::Int(i),
                (None, None) => Value::Nil,
            }
        }
        _ => Value::Nil,
    }
}

/// A literal for a typed parameter: Go converts constants, and refuses the wrong kind.
fn constant_for(param: Param, arg: &Arg) -> std::result::Result<Value, String> {
    match (param, arg) {
        (Param::Any, _) => Ok(constant_value(arg)),
        (Param::Str, Arg::Str { value, .. }) => Ok(Value::String(value.clone())),
        (Param::Int, Arg::Number(_, n)) if n.int.is_some() => Ok(Value::Int(n.int.unwrap_or_default())),
        (Param::Bool, Arg::Bool(_, b)) => Ok(Value::Bool(*b)),
        (Param::Str, _) => Err(format!("expected string; found {arg}")),
        (Param::Int, _) => Err(format!("expected integer; found {arg}")),
        (Param::Bool, _) => Err(format!("expected bool; found {arg}")),
        (Param::Map, _) => Err(format!("can't handle {arg} for arg of type map[string]interface {{}}")),
    }
}

fn go_type(param: Param) -> &'static str {
    match param {
        Param::Any => "interface {}",
        Param::Str => "string",
        Param::Int => "int",
        Param::Bool => "bool",
        Param::Map => "map[string]interface {}",
    }
}

/// Go's `validateType`: a value fills a typed parameter only with that very type.
fn check_type(value: Val<'_>, param: Param) -> std::result::Result<Val<'_>, String> {
    let fits = match (param, value.as_ref()) {
        (Param::Any, _) => true,
        (Param::Str, Value::String(_)) | (Param::Int, Value::Int(_)) | (Param::Bool, Value::Bool(_)) => true,
        (Param::Map, Value::Map(_)) => true,
        (Param::Map, Value::Nil) => return Ok(Cow::Owned(Value::Map(Default::default()))),
        (other, Value::Nil) => return Err(format!("invalid value; expected {}", go_type(other))),
        _ => false,
    };
    if fits {
        Ok(value)
    } else {
        Err(format!("wrong type for value; expected {}; got {}", go_type(param), value.type_name()))
    }
}
