//! The lossless concrete syntax tree: every token of the file, trivia included, in a tree of typed
//! nodes (rowan-style green tree, built by the parser through [`TreeBuilder`]). Printing the tree
//! gives back the source byte for byte; the formatter and tests rely on that.

use crate::lexer::Token;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Program,
    TargetScopeDecl,
    MetadataDecl,
    UsingDecl,
    ParamDecl,
    VarDecl,
    ResourceDecl,
    ModuleDecl,
    OutputDecl,
    Decorator,
    TypeExpr,
    ObjectExpr,
    ObjectProperty,
    ArrayExpr,
    ArrayItem,
    ForExpr,
    IfCondition,
    StringExpr,
    Literal,
    VariableAccess,
    Call,
    Arguments,
    PropertyAccess,
    IndexAccess,
    ResourceAccess,
    Unary,
    Binary,
    Ternary,
    Paren,
    Lambda,
    Spread,
    /// Tokens skipped while recovering from an error.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    Node(Node),
    /// An index into [`SyntaxTree::tokens`].
    Token(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub children: Vec<Element>,
}

impl Node {
    /// Visits the token indices under this node in source order.
    pub fn for_each_token(&self, f: &mut impl FnMut(u32)) {
        for child in &self.children {
            match child {
                Element::Node(node) => node.for_each_token(f),
                Element::Token(index) => f(*index),
            }
        }
    }

    pub fn count_nodes(&self, kind: NodeKind) -> usize {
        let own = usize::from(self.kind == kind);
        own + self
            .children
            .iter()
            .map(|c| match c {
                Element::Node(n) => n.count_nodes(kind),
                Element::Token(_) => 0,
            })
            .sum::<usize>()
    }
}

/// A file's tokens and the tree over them.
#[derive(Debug, Clone)]
pub struct SyntaxTree {
    pub tokens: Vec<Token>,
    pub root: Node,
}

impl SyntaxTree {
    /// The source text, rebuilt from the tree.
    pub fn text(&self, source: &str) -> String {
        let mut out = String::with_capacity(source.len());
        self.root
            .for_each_token(&mut |i| out.push_str(&source[self.tokens[i as usize].span.range()]));
        out
    }
}

/// Builds the tree while the parser runs: open nodes form a stack; a checkpoint lets a node be
/// started retroactively (binary operators wrap their left operand).
#[derive(Debug, Default)]
pub struct TreeBuilder {
    stack: Vec<Node>,
}

#[derive(Debug, Clone, Copy)]
pub struct Checkpoint(usize);

impl TreeBuilder {
    pub fn start(&mut self, kind: NodeKind) {
        self.stack.push(Node { kind, children: Vec::new() });
    }

    pub fn finish(&mut self) {
        let node = self.stack.pop().expect("unbalanced tree builder");
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(Element::Node(node)),
            None => self.stack.push(node),
        }
    }

    pub fn token(&mut self, index: u32) {
        if let Some(top) = self.stack.last_mut() {
            top.children.push(Element::Token(index));
        }
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.stack.last().map_or(0, |n| n.children.len()))
    }

    pub fn start_at(&mut self, checkpoint: Checkpoint, kind: NodeKind) {
        let top = self.stack.last_mut().expect("no open node");
        let at = checkpoint.0.min(top.children.len());
        let children = top.children.split_off(at);
        self.stack.push(Node { kind, children });
    }

    pub fn into_root(mut self) -> Node {
        while self.stack.len() > 1 {
            self.finish();
        }
        self.stack.pop().unwrap_or(Node { kind: NodeKind::Program, children: Vec::new() })
    }
}
