//! The typed syntax the compiler works on, produced by the parser next to the lossless tree. Every
//! node carries its span; parts the parser could not read are `ExprKind::Error` (the diagnostic is
//! already recorded), so later stages never see partial nodes as valid.

use crate::span::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Equals,
    NotEquals,
    EqualsInsensitive,
    NotEqualsInsensitive,
    Less,
    LessOrEquals,
    Greater,
    GreaterOrEquals,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Coalesce,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Equals => "==",
            BinaryOp::NotEquals => "!=",
            BinaryOp::EqualsInsensitive => "=~",
            BinaryOp::NotEqualsInsensitive => "!~",
            BinaryOp::Less => "<",
            BinaryOp::LessOrEquals => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterOrEquals => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Coalesce => "??",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Minus,
}

/// A string: literal segments around interpolated expressions (`segments.len() == exprs.len() + 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    pub segments: Vec<String>,
    pub exprs: Vec<Expr>,
    pub multiline: bool,
}

impl StringLit {
    pub fn literal(&self) -> Option<&str> {
        if self.exprs.is_empty() {
            self.segments.first().map(String::as_str)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyKey {
    Ident(Ident),
    String(StringLit, Span),
}

impl PropertyKey {
    /// The key's text when it is not interpolated.
    pub fn text(&self) -> Option<&str> {
        match self {
            PropertyKey::Ident(i) => Some(&i.name),
            PropertyKey::String(s, _) => s.literal(),
        }
    }

    pub fn span(&self) -> Span {
        match self {
            PropertyKey::Ident(i) => i.span,
            PropertyKey::String(_, span) => *span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: PropertyKey,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectMember {
    Property(Property),
    /// A nested `resource` declaration inside a resource body.
    Resource(Box<Decl>),
    Spread(Expr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForExpr {
    pub item: Option<Ident>,
    pub index: Option<Ident>,
    pub iterable: Expr,
    pub body: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    String(StringLit),
    Int(i64),
    Bool(bool),
    Null,
    Array(Vec<Expr>),
    Object(Vec<ObjectMember>),
    Variable(Ident),
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    /// `base.name(args)`: a namespace function (`az.resourceGroup()`) or a resource method (`stg.listKeys()`).
    MethodCall {
        base: Box<Expr>,
        name: Ident,
        args: Vec<Expr>,
    },
    Property {
        base: Box<Expr>,
        name: Ident,
        safe: bool,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
        safe: bool,
    },
    /// `parent::child`
    ResourceAccess {
        base: Box<Expr>,
        name: Ident,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Ternary {
        condition: Box<Expr>,
        when_true: Box<Expr>,
        when_false: Box<Expr>,
    },
    Paren(Box<Expr>),
    For(Box<ForExpr>),
    /// `if (condition) { ... }` as a resource or module body.
    If {
        condition: Box<Expr>,
        body: Box<Expr>,
    },
    Lambda {
        params: Vec<Ident>,
        body: Box<Expr>,
    },
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

impl Expr {
    pub fn error(span: Span) -> Self {
        Self { kind: ExprKind::Error, span }
    }

    /// Removes parentheses.
    pub fn unparen(&self) -> &Expr {
        match &self.kind {
            ExprKind::Paren(inner) => inner.unparen(),
            _ => self,
        }
    }

    /// The object's properties, when this is an object literal.
    pub fn object_members(&self) -> Option<&[ObjectMember]> {
        match &self.kind {
            ExprKind::Object(members) => Some(members),
            _ => None,
        }
    }

    /// A property of an object literal by name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.object_members()?.iter().find_map(|m| match m {
            ObjectMember::Property(p) if p.key.text() == Some(name) => Some(p),
            _ => None,
        })
    }

    pub fn string_literal(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::String(s) => s.literal(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decorator {
    pub namespace: Option<Ident>,
    pub name: Ident,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// A declared type: a name (`string`, `int`, ...), `resource 'T@v'`, or something outside the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    Named(Ident),
    Resource(StringLit, Span),
    Other(Span),
}

impl TypeRef {
    pub fn span(&self) -> Span {
        match self {
            TypeRef::Named(i) => i.span,
            TypeRef::Resource(_, s) | TypeRef::Other(s) => *s,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            TypeRef::Named(i) => Some(&i.name),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclKind {
    TargetScope {
        value: Expr,
    },
    Metadata {
        name: Ident,
        value: Expr,
    },
    Using {
        path: Expr,
    },
    Param {
        name: Ident,
        ty: Option<TypeRef>,
        default: Option<Expr>,
    },
    Var {
        name: Ident,
        value: Expr,
    },
    Resource {
        name: Ident,
        type_string: Expr,
        existing: bool,
        body: Expr,
    },
    Module {
        name: Ident,
        path: Expr,
        body: Expr,
    },
    Output {
        name: Ident,
        ty: Option<TypeRef>,
        value: Expr,
    },
    /// A line the parser could not read as a declaration.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decl {
    pub decorators: Vec<Decorator>,
    pub kind: DeclKind,
    pub span: Span,
}

impl Decl {
    pub fn name(&self) -> Option<&Ident> {
        match &self.kind {
            DeclKind::Metadata { name, .. }
            | DeclKind::Param { name, .. }
            | DeclKind::Var { name, .. }
            | DeclKind::Resource { name, .. }
            | DeclKind::Module { name, .. }
            | DeclKind::Output { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn decorator(&self, name: &str) -> Option<&Decorator> {
        self.decorators.iter().find(|d| d.name.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    pub decls: Vec<Decl>,
}
