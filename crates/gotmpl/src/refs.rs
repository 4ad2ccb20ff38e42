//! The data fields a template reads, from its tree: what `package verify` needs to find
//! parameters a template uses but `params.yaml` does not declare.

use crate::parse::{Arg, Node, Pipe};

/// Collects field chains read from the root; `root` says whether dot is the root here.
pub fn nodes(nodes: &[Node], root: bool, found: &mut Vec<Vec<String>>) {
    for node in nodes {
        match node {
            Node::Action(pipe) => self::pipe(pipe, root, found),
            Node::If(branch) => {
                self::pipe(&branch.pipe, root, found);
                self::nodes(&branch.list, root, found);
                self::nodes(branch.else_list.as_deref().unwrap_or_default(), root, found);
            }
            // Inside range and with, dot is something else; only `$` still names the root.
            Node::Range(branch) | Node::With(branch) => {
                self::pipe(&branch.pipe, root, found);
                self::nodes(&branch.list, false, found);
                self::nodes(branch.else_list.as_deref().unwrap_or_default(), root, found);
            }
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

fn pipe(pipe: &Pipe, root: bool, found: &mut Vec<Vec<String>>) {
    for cmd in &pipe.cmds {
        for arg in &cmd.args {
            self::arg(arg, root, found);
        }
    }
}

fn arg(arg: &Arg, root: bool, found: &mut Vec<Vec<String>>) {
    match arg {
        Arg::Field { names, .. } if root => found.push(names.clone()),
        Arg::Variable { name, names, .. } if name == "$" && !names.is_empty() => found.push(names.clone()),
        Arg::Pipe(inner) => pipe(inner, root, found),
        Arg::Chain { pipe: inner, .. } => pipe(inner, root, found),
        _ => {}
    }
}
