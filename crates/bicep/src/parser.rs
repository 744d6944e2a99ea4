//! The error-tolerant recursive-descent parser. It never fails: it always returns the lossless tree,
//! the typed program and the syntax diagnostics (Bicep's BCP codes). After an error it skips to the
//! end of the line (or the closing bracket) and goes on, so one mistake gives one diagnostic.

use crate::ast::*;
use crate::diagnostics::Diagnostic;
use crate::lexer::{lex, string_piece_value, Token, TokenKind};
use crate::span::Span;
use crate::syntax::{NodeKind, SyntaxTree, TreeBuilder};

/// Deeper nesting than this is refused (BRT002) rather than risking the stack.
const MAX_DEPTH: u32 = 64;

/// The result of parsing one file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub tree: SyntaxTree,
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn parse(source: &str) -> Parsed {
    let (tokens, mut diagnostics) = lex(source);
    let mut parser = Parser {
        src: source,
        tokens,
        pos: 0,
        builder: TreeBuilder::default(),
        diagnostics: Vec::new(),
        last_end: 0,
        depth: 0,
    };
    let program = parser.program();
    let Parser { tokens, builder, diagnostics: parse_diagnostics, .. } = parser;
    diagnostics.extend(parse_diagnostics);
    Parsed { tree: SyntaxTree { tokens, root: builder.into_root() }, program, diagnostics }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    builder: TreeBuilder,
    diagnostics: Vec<Diagnostic>,
    last_end: usize,
    depth: u32,
}

fn binary_op(kind: TokenKind) -> Option<(BinaryOp, u8)> {
    Some(match kind {
        TokenKind::DoubleQuestion => (BinaryOp::Coalesce, 1),
        TokenKind::LogicalOr => (BinaryOp::Or, 2),
        TokenKind::LogicalAnd => (BinaryOp::And, 3),
        TokenKind::Equals => (BinaryOp::Equals, 4),
        TokenKind::NotEquals => (BinaryOp::NotEquals, 4),
        TokenKind::EqualsInsensitive => (BinaryOp::EqualsInsensitive, 4),
        TokenKind::NotEqualsInsensitive => (BinaryOp::NotEqualsInsensitive, 4),
        TokenKind::Less => (BinaryOp::Less, 5),
        TokenKind::LessOrEquals => (BinaryOp::LessOrEquals, 5),
        TokenKind::Greater => (BinaryOp::Greater, 5),
        TokenKind::GreaterOrEquals => (BinaryOp::GreaterOrEquals, 5),
        TokenKind::Plus => (BinaryOp::Add, 6),
        TokenKind::Minus => (BinaryOp::Subtract, 6),
        TokenKind::Asterisk => (BinaryOp::Multiply, 7),
        TokenKind::Slash => (BinaryOp::Divide, 7),
        TokenKind::Modulo => (BinaryOp::Modulo, 7),
        _ => return None,
    })
}

impl Parser<'_> {
    // ---- token access -------------------------------------------------------------------------

    /// Index of the n-th non-trivia token at or after `pos`.
    fn nth_index(&self, n: usize) -> Option<usize> {
        let mut seen = 0;
        let mut i = self.pos;
        while i < self.tokens.len() {
            if !self.tokens[i].kind.is_trivia() {
                if seen == n {
                    return Some(i);
                }
                seen += 1;
            }
            i += 1;
        }
        None
    }

    fn nth(&self, n: usize) -> Option<TokenKind> {
        self.nth_index(n).map(|i| self.tokens[i].kind)
    }

    fn current(&self) -> Option<TokenKind> {
        self.nth(0)
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.current() == Some(kind)
    }

    fn current_span(&self) -> Span {
        match self.nth_index(0) {
            Some(i) => self.tokens[i].span,
            None => Span::new(self.src.len(), self.src.len()),
        }
    }

    fn current_text(&self) -> &str {
        match self.nth_index(0) {
            Some(i) => &self.src[self.tokens[i].span.range()],
            None => "",
        }
    }

    fn at_ident(&self, text: &str) -> bool {
        self.at(TokenKind::Identifier) && self.current_text() == text
    }

    fn nth_is_ident(&self, n: usize, text: &str) -> bool {
        self.nth_index(n).is_some_and(|i| {
            self.tokens[i].kind == TokenKind::Identifier
                && &self.src[self.tokens[i].span.range()] == text
        })
    }

    fn flush_trivia(&mut self) {
        while self.pos < self.tokens.len() && self.tokens[self.pos].kind.is_trivia() {
            self.builder.token(self.pos as u32);
            self.pos += 1;
        }
    }

    /// Consumes the current (non-trivia) token.
    fn bump(&mut self) -> Token {
        self.flush_trivia();
        let token = self.tokens[self.pos];
        self.builder.token(self.pos as u32);
        self.pos += 1;
        self.last_end = token.span.end as usize;
        token
    }

    fn eat(&mut self, kind: TokenKind) -> bool {
        if self.at(kind) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_newlines(&mut self) {
        while self.at(TokenKind::NewLine) {
            self.bump();
        }
    }

    fn text(&self, token: Token) -> &str {
        &self.src[token.span.range()]
    }

    fn error(&mut self, code: &'static str, message: impl Into<String>, span: Span) {
        // One diagnostic per position: recovery can revisit the same spot.
        if self.diagnostics.last().is_some_and(|d| d.span.start == span.start && d.code == code) {
            return;
        }
        self.diagnostics.push(Diagnostic::error(code, message, span));
    }

    fn expected_char(&mut self, c: &str) {
        let span = self.current_span();
        self.error("BCP018", format!("Expected the \"{c}\" character at this location."), span);
    }

    fn expect(&mut self, kind: TokenKind, c: &str) -> bool {
        if self.eat(kind) {
            true
        } else {
            self.expected_char(c);
            false
        }
    }

    /// Skips to the end of the line (the newline itself stays) inside an `Error` node.
    fn recover_line(&mut self) {
        self.builder.start(NodeKind::Error);
        let mut depth = 0i32;
        while let Some(kind) = self.current() {
            match kind {
                TokenKind::NewLine if depth <= 0 => break,
                TokenKind::LeftBrace | TokenKind::LeftSquare | TokenKind::LeftParen => depth += 1,
                TokenKind::RightBrace | TokenKind::RightSquare | TokenKind::RightParen => {
                    if depth <= 0 {
                        break;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.bump();
        }
        self.builder.finish();
    }

    fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.last_end.max(start))
    }

    fn ident(&mut self) -> Ident {
        let token = self.bump();
        Ident { name: self.text(token).to_owned(), span: token.span }
    }

    // ---- statements ---------------------------------------------------------------------------

    fn program(&mut self) -> Program {
        self.builder.start(NodeKind::Program);
        let mut decls = Vec::new();
        loop {
            self.skip_newlines();
            if self.current().is_none() {
                break;
            }
            let before = self.pos;
            let decl = self.statement();
            decls.push(decl);
            if !matches!(self.current(), None | Some(TokenKind::NewLine)) {
                let span = self.current_span();
                self.error("BCP019", "Expected a new line character at this location.", span);
                self.recover_line();
            }
            if self.pos == before {
                // Guarantees progress whatever went wrong.
                self.builder.start(NodeKind::Error);
                self.bump();
                self.builder.finish();
            }
        }
        self.flush_trivia();
        self.builder.finish();
        Program { decls }
    }

    fn decorators(&mut self) -> Vec<Decorator> {
        let mut decorators = Vec::new();
        while self.at(TokenKind::At) {
            self.builder.start(NodeKind::Decorator);
            let start = self.bump().span.start as usize;
            let mut namespace = None;
            if !self.at(TokenKind::Identifier) {
                let span = self.current_span();
                self.error(
                    "BCP123",
                    "Expected a namespace or decorator name at this location.",
                    span,
                );
                self.recover_line();
                self.builder.finish();
                self.skip_newlines();
                continue;
            }
            let mut name = self.ident();
            if self.at(TokenKind::Dot) && self.nth(1) == Some(TokenKind::Identifier) {
                self.bump();
                namespace = Some(name);
                name = self.ident();
            }
            let args = if self.at(TokenKind::LeftParen) {
                self.arguments()
            } else {
                self.expected_char("(");
                Vec::new()
            };
            let span = self.span_from(start);
            self.builder.finish();
            decorators.push(Decorator { namespace, name, args, span });
            if !matches!(self.current(), Some(TokenKind::NewLine) | None) {
                let span = self.current_span();
                self.error("BCP019", "Expected a new line character at this location.", span);
                self.recover_line();
            }
            self.skip_newlines();
        }
        decorators
    }

    fn statement(&mut self) -> Decl {
        let start = self.current_span().start as usize;
        let checkpoint = self.builder.checkpoint();
        let decorators = self.decorators();
        let keyword = if self.at(TokenKind::Identifier) {
            self.current_text().to_owned()
        } else {
            String::new()
        };
        let (node, kind) = match keyword.as_str() {
            "targetScope" => (NodeKind::TargetScopeDecl, None),
            "metadata" => (NodeKind::MetadataDecl, None),
            "using" => (NodeKind::UsingDecl, None),
            "param" => (NodeKind::ParamDecl, None),
            "var" => (NodeKind::VarDecl, None),
            "resource" => (NodeKind::ResourceDecl, None),
            "module" => (NodeKind::ModuleDecl, None),
            "output" => (NodeKind::OutputDecl, None),
            "type" | "func" | "import" | "extension" | "provider" | "assert" | "test"
            | "extends" => (NodeKind::Error, Some(keyword.clone())),
            _ => (NodeKind::Error, None),
        };
        self.builder.start_at(checkpoint, node);
        let kind = match (node, kind) {
            (NodeKind::Error, unsupported) => {
                let span = self.current_span();
                if let Some(keyword) = unsupported {
                    self.error(
                        "BRT001",
                        format!("\"{keyword}\" declarations are not supported by berth's Bicep compiler; the supported subset is targetScope, metadata, param, var, resource, module and output."),
                        span,
                    );
                } else if !decorators.is_empty() {
                    self.error("BCP132", "Expected a declaration after the decorator.", span);
                } else {
                    self.error("BCP007", "This declaration type is not recognized. Specify a metadata, parameter, variable, resource, or output declaration.", span);
                }
                self.recover_line();
                DeclKind::Error
            }
            (NodeKind::TargetScopeDecl, _) => {
                self.bump();
                self.expect(TokenKind::Assignment, "=");
                DeclKind::TargetScope { value: self.expr() }
            }
            (NodeKind::MetadataDecl, _) => {
                self.bump();
                match self.declared_name("BCP022", "Expected a property name at this location.") {
                    Some(name) => {
                        self.expect(TokenKind::Assignment, "=");
                        DeclKind::Metadata { name, value: self.expr() }
                    }
                    None => DeclKind::Error,
                }
            }
            (NodeKind::UsingDecl, _) => {
                self.bump();
                DeclKind::Using { path: self.expr() }
            }
            (NodeKind::ParamDecl, _) => self.param(),
            (NodeKind::VarDecl, _) => {
                self.bump();
                match self
                    .declared_name("BCP015", "Expected a variable identifier at this location.")
                {
                    Some(name) => {
                        if self.at(TokenKind::Identifier) {
                            // A typed variable (`var x string = ...`): the type is checked by nobody here.
                            self.type_ref();
                        }
                        if self.expect(TokenKind::Assignment, "=") {
                            DeclKind::Var { name, value: self.expr() }
                        } else {
                            self.recover_line();
                            DeclKind::Error
                        }
                    }
                    None => DeclKind::Error,
                }
            }
            (NodeKind::ResourceDecl, _) => self.resource(),
            (NodeKind::ModuleDecl, _) => self.module(),
            (NodeKind::OutputDecl, _) => {
                self.bump();
                match self
                    .declared_name("BCP016", "Expected an output identifier at this location.")
                {
                    Some(name) => {
                        let ty = self.type_ref();
                        if self.expect(TokenKind::Assignment, "=") {
                            DeclKind::Output { name, ty, value: self.expr() }
                        } else {
                            self.recover_line();
                            DeclKind::Error
                        }
                    }
                    None => DeclKind::Error,
                }
            }
            _ => DeclKind::Error,
        };
        self.builder.finish();
        Decl { decorators, kind, span: self.span_from(start) }
    }

    fn declared_name(&mut self, code: &'static str, message: &'static str) -> Option<Ident> {
        if self.at(TokenKind::Identifier) {
            Some(self.ident())
        } else {
            let span = self.current_span();
            self.error(code, message, span);
            self.recover_line();
            None
        }
    }

    fn param(&mut self) -> DeclKind {
        self.bump();
        let Some(name) =
            self.declared_name("BCP013", "Expected a parameter identifier at this location.")
        else {
            return DeclKind::Error;
        };
        // `.bicepparam` files assign without a type: `param x = value`.
        if self.eat(TokenKind::Assignment) {
            return DeclKind::Param { name, ty: None, default: Some(self.expr()) };
        }
        let ty = self.type_ref();
        if ty.is_none() {
            return DeclKind::Param { name, ty, default: None };
        }
        let default = if self.eat(TokenKind::Assignment) {
            Some(self.expr())
        } else {
            if !matches!(self.current(), None | Some(TokenKind::NewLine)) {
                let span = self.current_span();
                self.error(
                    "BCP008",
                    "Expected the \"=\" token, or a newline at this location.",
                    span,
                );
                self.recover_line();
            }
            None
        };
        DeclKind::Param { name, ty, default }
    }

    /// A type: `string`, `sys.string`, `resource 'T@v'`; anything richer is kept as `Other`.
    fn type_ref(&mut self) -> Option<TypeRef> {
        self.builder.start(NodeKind::TypeExpr);
        let start = self.current_span().start as usize;
        let result = if self.at_ident("resource")
            && matches!(self.nth(1), Some(TokenKind::StringComplete))
        {
            self.bump();
            let token = self.bump();
            let value = string_piece_value(token.kind, self.text(token));
            Some(TypeRef::Resource(
                StringLit { segments: vec![value], exprs: Vec::new(), multiline: false },
                self.span_from(start),
            ))
        } else if self.at(TokenKind::Identifier)
            && matches!(self.nth(1), None | Some(TokenKind::NewLine | TokenKind::Assignment))
        {
            Some(TypeRef::Named(self.ident()))
        } else if matches!(self.current(), None | Some(TokenKind::NewLine | TokenKind::Assignment))
        {
            let span = self.current_span();
            self.error(
                "BCP279",
                "Expected a type at this location. Please specify a valid type expression or one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".",
                span,
            );
            None
        } else {
            // Unions, arrays, object types...: read to the `=` or the end of the line.
            let mut depth = 0i32;
            while let Some(kind) = self.current() {
                match kind {
                    TokenKind::NewLine | TokenKind::Assignment if depth <= 0 => break,
                    TokenKind::LeftBrace | TokenKind::LeftSquare | TokenKind::LeftParen => {
                        depth += 1
                    }
                    TokenKind::RightBrace | TokenKind::RightSquare | TokenKind::RightParen => {
                        depth -= 1
                    }
                    _ => {}
                }
                self.bump();
            }
            Some(TypeRef::Other(self.span_from(start)))
        };
        self.builder.finish();
        result
    }

    fn resource(&mut self) -> DeclKind {
        self.bump();
        let Some(name) =
            self.declared_name("BCP017", "Expected a resource identifier at this location.")
        else {
            return DeclKind::Error;
        };
        if !matches!(self.current(), Some(TokenKind::StringComplete | TokenKind::StringLeftPiece)) {
            let span = self.current_span();
            self.error("BCP068", "Expected a resource type string. Specify a valid resource type of format \"<type-name>@<apiVersion>\".", span);
            self.recover_line();
            return DeclKind::Error;
        }
        let type_string = self.primary();
        let existing = if self.at_ident("existing") {
            self.bump();
            true
        } else {
            false
        };
        if !self.expect(TokenKind::Assignment, "=") {
            self.recover_line();
            return DeclKind::Error;
        }
        let body = self.body();
        DeclKind::Resource { name, type_string, existing, body }
    }

    fn module(&mut self) -> DeclKind {
        self.bump();
        let Some(name) =
            self.declared_name("BCP096", "Expected a module identifier at this location.")
        else {
            return DeclKind::Error;
        };
        if !matches!(self.current(), Some(TokenKind::StringComplete | TokenKind::StringLeftPiece)) {
            let span = self.current_span();
            self.error(
                "BCP097",
                "Expected a module path string. This should be a relative path to another bicep file, e.g. 'myModule.bicep' or '../parent/myModule.bicep'",
                span,
            );
            self.recover_line();
            return DeclKind::Error;
        }
        let path = self.primary();
        if !self.expect(TokenKind::Assignment, "=") {
            self.recover_line();
            return DeclKind::Error;
        }
        let body = self.body();
        DeclKind::Module { name, path, body }
    }

    /// A resource or module body: `{...}`, `if (c) {...}` or `[for ...: ...]`.
    fn body(&mut self) -> Expr {
        match self.current() {
            Some(TokenKind::LeftBrace) => self.object(),
            Some(TokenKind::LeftSquare) => self.array_or_for(),
            Some(TokenKind::Identifier) if self.at_ident("if") => self.if_condition(),
            _ => {
                let span = self.current_span();
                self.error("BCP118", "Expected the \"{\" character, the \"[\" character, or the \"if\" keyword at this location.", span);
                self.recover_line();
                Expr::error(span)
            }
        }
    }

    fn if_condition(&mut self) -> Expr {
        self.builder.start(NodeKind::IfCondition);
        let start = self.bump().span.start as usize;
        let condition = if self.at(TokenKind::LeftParen) {
            self.builder.start(NodeKind::Paren);
            self.bump();
            let condition = self.expr();
            self.expect(TokenKind::RightParen, ")");
            self.builder.finish();
            condition
        } else {
            self.expected_char("(");
            Expr::error(self.current_span())
        };
        let body = if self.at(TokenKind::LeftBrace) {
            self.object()
        } else {
            self.expected_char("{");
            Expr::error(self.current_span())
        };
        self.builder.finish();
        Expr {
            kind: ExprKind::If { condition: Box::new(condition), body: Box::new(body) },
            span: self.span_from(start),
        }
    }

    // ---- expressions --------------------------------------------------------------------------

    pub fn expr(&mut self) -> Expr {
        if self.depth >= MAX_DEPTH {
            let span = self.current_span();
            self.error(
                "BRT002",
                format!("The expression is nested more than {MAX_DEPTH} levels deep."),
                span,
            );
            self.recover_line();
            return Expr::error(span);
        }
        self.depth += 1;
        let result = self.ternary();
        self.depth -= 1;
        result
    }

    fn ternary(&mut self) -> Expr {
        let checkpoint = self.builder.checkpoint();
        let condition = self.binary(1);
        if !self.at(TokenKind::Question) {
            return condition;
        }
        self.builder.start_at(checkpoint, NodeKind::Ternary);
        self.bump();
        self.skip_newlines();
        let when_true = self.expr();
        self.skip_newlines();
        let when_false = if self.expect(TokenKind::Colon, ":") {
            self.skip_newlines();
            self.expr()
        } else {
            Expr::error(self.current_span())
        };
        self.builder.finish();
        let span = condition.span.cover(self.span_from(condition.span.start as usize));
        Expr {
            kind: ExprKind::Ternary {
                condition: Box::new(condition),
                when_true: Box::new(when_true),
                when_false: Box::new(when_false),
            },
            span,
        }
    }

    fn binary(&mut self, min_precedence: u8) -> Expr {
        let checkpoint = self.builder.checkpoint();
        let mut left = self.unary();
        while let Some((op, precedence)) = self.current().and_then(binary_op) {
            if precedence < min_precedence {
                break;
            }
            self.builder.start_at(checkpoint, NodeKind::Binary);
            self.bump();
            self.skip_newlines();
            let right = self.binary(precedence + 1);
            self.builder.finish();
            let span = left.span.cover(right.span).cover(self.span_from(left.span.start as usize));
            left = Expr {
                kind: ExprKind::Binary { op, left: Box::new(left), right: Box::new(right) },
                span,
            };
        }
        left
    }

    fn unary(&mut self) -> Expr {
        let op = match self.current() {
            Some(TokenKind::Exclamation) => UnaryOp::Not,
            Some(TokenKind::Minus) => UnaryOp::Minus,
            _ => return self.postfix(),
        };
        if self.depth >= MAX_DEPTH {
            return self.expr();
        }
        self.builder.start(NodeKind::Unary);
        let start = self.bump().span.start as usize;
        self.depth += 1;
        let operand = self.unary();
        self.depth -= 1;
        self.builder.finish();
        Expr { kind: ExprKind::Unary { op, expr: Box::new(operand) }, span: self.span_from(start) }
    }

    fn postfix(&mut self) -> Expr {
        let checkpoint = self.builder.checkpoint();
        let mut expr = self.primary();
        loop {
            match self.current() {
                Some(TokenKind::Dot) => {
                    self.builder.start_at(checkpoint, NodeKind::PropertyAccess);
                    self.bump();
                    let safe = self.eat(TokenKind::Question);
                    if !matches!(
                        self.current(),
                        Some(
                            TokenKind::Identifier
                                | TokenKind::TrueKeyword
                                | TokenKind::FalseKeyword
                                | TokenKind::NullKeyword
                        )
                    ) {
                        let span = self.current_span();
                        self.error(
                            "BCP020",
                            "Expected a function or property name at this location.",
                            span,
                        );
                        self.builder.finish();
                        let span = expr.span.cover(self.span_from(expr.span.start as usize));
                        return Expr::error(span);
                    }
                    let name = self.ident();
                    if !safe && self.at(TokenKind::LeftParen) {
                        let args = self.arguments();
                        self.builder.finish();
                        let span = self.span_from(expr.span.start as usize);
                        expr = Expr {
                            kind: ExprKind::MethodCall { base: Box::new(expr), name, args },
                            span,
                        };
                    } else {
                        self.builder.finish();
                        let span = self.span_from(expr.span.start as usize);
                        expr = Expr {
                            kind: ExprKind::Property { base: Box::new(expr), name, safe },
                            span,
                        };
                    }
                }
                Some(TokenKind::LeftSquare) => {
                    self.builder.start_at(checkpoint, NodeKind::IndexAccess);
                    self.bump();
                    let safe = self.eat(TokenKind::Question);
                    let index = self.expr();
                    self.expect(TokenKind::RightSquare, "]");
                    self.builder.finish();
                    let span = self.span_from(expr.span.start as usize);
                    expr = Expr {
                        kind: ExprKind::Index {
                            base: Box::new(expr),
                            index: Box::new(index),
                            safe,
                        },
                        span,
                    };
                }
                Some(TokenKind::DoubleColon) => {
                    self.builder.start_at(checkpoint, NodeKind::ResourceAccess);
                    self.bump();
                    if !self.at(TokenKind::Identifier) {
                        let span = self.current_span();
                        self.error(
                            "BCP017",
                            "Expected a resource identifier at this location.",
                            span,
                        );
                        self.builder.finish();
                        return Expr::error(expr.span);
                    }
                    let name = self.ident();
                    self.builder.finish();
                    let span = self.span_from(expr.span.start as usize);
                    expr = Expr {
                        kind: ExprKind::ResourceAccess { base: Box::new(expr), name },
                        span,
                    };
                }
                _ => return expr,
            }
        }
    }

    fn arguments(&mut self) -> Vec<Expr> {
        self.builder.start(NodeKind::Arguments);
        self.bump();
        let mut args = Vec::new();
        loop {
            self.skip_newlines();
            match self.current() {
                Some(TokenKind::RightParen) => {
                    self.bump();
                    break;
                }
                None => {
                    self.expected_char(")");
                    break;
                }
                _ => {}
            }
            let before = self.pos;
            args.push(self.expr());
            self.skip_newlines();
            if self.eat(TokenKind::Comma) {
                continue;
            }
            if !self.at(TokenKind::RightParen) {
                self.expected_char(")");
                // Skip to the closing parenthesis of this call if it is on this line.
                self.recover_line();
                self.eat(TokenKind::RightParen);
                break;
            }
            if self.pos == before {
                break;
            }
        }
        self.builder.finish();
        args
    }

    fn is_lambda_start(&self) -> bool {
        // `x => ...`
        if self.at(TokenKind::Identifier) && self.nth(1) == Some(TokenKind::Arrow) {
            return true;
        }
        if !self.at(TokenKind::LeftParen) {
            return false;
        }
        let mut n = 1;
        loop {
            match self.nth(n) {
                Some(TokenKind::RightParen) => return self.nth(n + 1) == Some(TokenKind::Arrow),
                Some(TokenKind::Identifier | TokenKind::Comma | TokenKind::NewLine) => n += 1,
                _ => return false,
            }
        }
    }

    fn lambda(&mut self) -> Expr {
        self.builder.start(NodeKind::Lambda);
        let start = self.current_span().start as usize;
        let mut params = Vec::new();
        if self.at(TokenKind::Identifier) {
            params.push(self.ident());
        } else {
            self.bump();
            loop {
                self.skip_newlines();
                match self.current() {
                    Some(TokenKind::Identifier) => params.push(self.ident()),
                    Some(TokenKind::Comma) => {
                        self.bump();
                    }
                    _ => break,
                }
            }
            self.expect(TokenKind::RightParen, ")");
        }
        self.expect(TokenKind::Arrow, "=>");
        self.skip_newlines();
        let body = self.expr();
        self.builder.finish();
        Expr {
            kind: ExprKind::Lambda { params, body: Box::new(body) },
            span: self.span_from(start),
        }
    }

    fn primary(&mut self) -> Expr {
        let span = self.current_span();
        let start = span.start as usize;
        if self.is_lambda_start() {
            return self.lambda();
        }
        match self.current() {
            Some(TokenKind::Integer) => {
                self.builder.start(NodeKind::Literal);
                let token = self.bump();
                self.builder.finish();
                match self.text(token).parse::<i64>() {
                    Ok(value) => Expr { kind: ExprKind::Int(value), span: token.span },
                    Err(_) => {
                        self.error("BCP010", "Expected a valid 64-bit signed integer.", token.span);
                        Expr::error(token.span)
                    }
                }
            }
            Some(kind @ (TokenKind::TrueKeyword | TokenKind::FalseKeyword)) => {
                self.builder.start(NodeKind::Literal);
                let token = self.bump();
                self.builder.finish();
                Expr { kind: ExprKind::Bool(kind == TokenKind::TrueKeyword), span: token.span }
            }
            Some(TokenKind::NullKeyword) => {
                self.builder.start(NodeKind::Literal);
                let token = self.bump();
                self.builder.finish();
                Expr { kind: ExprKind::Null, span: token.span }
            }
            Some(
                TokenKind::StringComplete | TokenKind::MultilineString | TokenKind::StringLeftPiece,
            ) => self.string(),
            Some(TokenKind::Identifier) => {
                if self.nth(1) == Some(TokenKind::LeftParen) {
                    self.builder.start(NodeKind::Call);
                    let name = self.ident();
                    let args = self.arguments();
                    self.builder.finish();
                    Expr { kind: ExprKind::Call { name, args }, span: self.span_from(start) }
                } else {
                    self.builder.start(NodeKind::VariableAccess);
                    let name = self.ident();
                    self.builder.finish();
                    let span = name.span;
                    Expr { kind: ExprKind::Variable(name), span }
                }
            }
            Some(TokenKind::LeftParen) => {
                self.builder.start(NodeKind::Paren);
                self.bump();
                self.skip_newlines();
                let inner = self.expr();
                self.skip_newlines();
                self.expect(TokenKind::RightParen, ")");
                self.builder.finish();
                Expr { kind: ExprKind::Paren(Box::new(inner)), span: self.span_from(start) }
            }
            Some(TokenKind::LeftSquare) => self.array_or_for(),
            Some(TokenKind::LeftBrace) => self.object(),
            _ => {
                self.error(
                    "BCP009",
                    "Expected a literal value, an array, an object, a parenthesized expression, or a function call at this location.",
                    span,
                );
                // Consume one stray token so the caller makes progress, but never a line end or a closer.
                if !matches!(
                    self.current(),
                    None | Some(
                        TokenKind::NewLine
                            | TokenKind::RightBrace
                            | TokenKind::RightSquare
                            | TokenKind::RightParen
                            | TokenKind::Comma
                            | TokenKind::Colon
                            | TokenKind::StringMiddlePiece
                            | TokenKind::StringRightPiece
                    )
                ) {
                    self.builder.start(NodeKind::Error);
                    self.bump();
                    self.builder.finish();
                }
                Expr::error(span)
            }
        }
    }

    fn string(&mut self) -> Expr {
        self.builder.start(NodeKind::StringExpr);
        let first = self.bump();
        let start = first.span.start as usize;
        let text = self.text(first).to_owned();
        let mut segments = vec![string_piece_value(first.kind, &text)];
        let mut exprs = Vec::new();
        let multiline = first.kind == TokenKind::MultilineString;
        if first.kind == TokenKind::StringLeftPiece {
            loop {
                if self.depth >= MAX_DEPTH {
                    self.expr();
                    break;
                }
                self.depth += 1;
                exprs.push(self.expr());
                self.depth -= 1;
                match self.current() {
                    Some(kind @ (TokenKind::StringMiddlePiece | TokenKind::StringRightPiece)) => {
                        let token = self.bump();
                        let text = self.text(token).to_owned();
                        segments.push(string_piece_value(kind, &text));
                        if kind == TokenKind::StringRightPiece {
                            break;
                        }
                    }
                    _ => {
                        let span = self.current_span();
                        self.error(
                            "BCP064",
                            "Found unexpected tokens in interpolated expression.",
                            span,
                        );
                        // Skip to the rest of the string, or give up at the end of the line.
                        while let Some(kind) = self.current() {
                            if matches!(kind, TokenKind::NewLine) {
                                break;
                            }
                            let token = self.bump();
                            if matches!(
                                kind,
                                TokenKind::StringMiddlePiece | TokenKind::StringRightPiece
                            ) {
                                let text = self.text(token).to_owned();
                                segments.push(string_piece_value(kind, &text));
                                if kind == TokenKind::StringRightPiece {
                                    break;
                                }
                                break;
                            }
                        }
                        break;
                    }
                }
            }
        }
        while segments.len() < exprs.len() + 1 {
            segments.push(String::new());
        }
        self.builder.finish();
        Expr {
            kind: ExprKind::String(StringLit { segments, exprs, multiline }),
            span: self.span_from(start),
        }
    }

    fn array_or_for(&mut self) -> Expr {
        let start = self.current_span().start as usize;
        // `[for ...]`: the `for` may sit on the next line.
        let mut n = 1;
        while self.nth(n) == Some(TokenKind::NewLine) {
            n += 1;
        }
        if self.nth_is_ident(n, "for") {
            return self.for_expr(start);
        }
        self.builder.start(NodeKind::ArrayExpr);
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            match self.current() {
                Some(TokenKind::RightSquare) => {
                    self.bump();
                    break;
                }
                None => {
                    self.expected_char("]");
                    break;
                }
                _ => {}
            }
            let before = self.pos;
            self.builder.start(NodeKind::ArrayItem);
            if self.at(TokenKind::Ellipsis) {
                self.bump();
            }
            items.push(self.expr());
            self.builder.finish();
            let comma = self.eat(TokenKind::Comma);
            if !comma
                && !matches!(
                    self.current(),
                    Some(TokenKind::NewLine | TokenKind::RightSquare) | None
                )
            {
                let span = self.current_span();
                self.error(
                    "BCP236",
                    "Expected a new line or comma character at this location.",
                    span,
                );
                self.recover_line();
            }
            if self.pos == before {
                self.builder.start(NodeKind::Error);
                self.bump();
                self.builder.finish();
            }
        }
        self.builder.finish();
        Expr { kind: ExprKind::Array(items), span: self.span_from(start) }
    }

    fn for_expr(&mut self, start: usize) -> Expr {
        self.builder.start(NodeKind::ForExpr);
        self.bump(); // [
        self.skip_newlines();
        self.bump(); // for
        let mut item = None;
        let mut index = None;
        if self.at(TokenKind::Identifier) && !self.at_ident("in") {
            item = Some(self.ident());
        } else if self.eat(TokenKind::LeftParen) {
            if self.at(TokenKind::Identifier) {
                item = Some(self.ident());
            }
            if self.eat(TokenKind::Comma) && self.at(TokenKind::Identifier) {
                index = Some(self.ident());
            }
            self.expect(TokenKind::RightParen, ")");
        }
        if item.is_none() {
            let span = self.current_span();
            self.error(
                "BCP136",
                "Expected a loop item variable identifier at this location.",
                span,
            );
        }
        let iterable = if self.at_ident("in") {
            self.bump();
            self.expr()
        } else {
            let span = self.current_span();
            self.error("BCP012", "Expected the \"in\" keyword at this location.", span);
            Expr::error(span)
        };
        self.expect(TokenKind::Colon, ":");
        self.skip_newlines();
        let body = if self.at_ident("if") { self.if_condition() } else { self.expr() };
        self.skip_newlines();
        if !self.eat(TokenKind::RightSquare) {
            self.expected_char("]");
            self.recover_line();
            self.eat(TokenKind::RightSquare);
        }
        self.builder.finish();
        Expr {
            kind: ExprKind::For(Box::new(ForExpr { item, index, iterable, body })),
            span: self.span_from(start),
        }
    }

    fn object(&mut self) -> Expr {
        self.builder.start(NodeKind::ObjectExpr);
        let start = self.bump().span.start as usize;
        let mut members = Vec::new();
        loop {
            self.skip_newlines();
            match self.current() {
                Some(TokenKind::RightBrace) => {
                    self.bump();
                    break;
                }
                None => {
                    self.expected_char("}");
                    break;
                }
                _ => {}
            }
            let before = self.pos;
            if self.at(TokenKind::At)
                || (self.at_ident("resource") && self.nth(1) == Some(TokenKind::Identifier))
            {
                let decl = self.statement();
                members.push(ObjectMember::Resource(Box::new(decl)));
            } else if self.at(TokenKind::Ellipsis) {
                self.builder.start(NodeKind::Spread);
                self.bump();
                let value = self.expr();
                self.builder.finish();
                members.push(ObjectMember::Spread(value));
            } else {
                self.builder.start(NodeKind::ObjectProperty);
                let key = match self.current() {
                    Some(
                        TokenKind::Identifier
                        | TokenKind::TrueKeyword
                        | TokenKind::FalseKeyword
                        | TokenKind::NullKeyword,
                    ) => Some(PropertyKey::Ident(self.ident())),
                    Some(
                        TokenKind::StringComplete
                        | TokenKind::StringLeftPiece
                        | TokenKind::MultilineString,
                    ) => {
                        let key = self.string();
                        match key.kind {
                            ExprKind::String(s) => Some(PropertyKey::String(s, key.span)),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                match key {
                    Some(key) => {
                        if self.expect(TokenKind::Colon, ":") {
                            let value = self.expr();
                            let span = key.span().cover(value.span);
                            members.push(ObjectMember::Property(Property { key, value, span }));
                        } else {
                            self.recover_line();
                        }
                    }
                    None => {
                        let span = self.current_span();
                        self.error("BCP022", "Expected a property name at this location.", span);
                        self.recover_line();
                    }
                }
                self.builder.finish();
            }
            let comma = self.eat(TokenKind::Comma);
            if !comma
                && !matches!(
                    self.current(),
                    Some(TokenKind::NewLine | TokenKind::RightBrace) | None
                )
            {
                let span = self.current_span();
                self.error(
                    "BCP236",
                    "Expected a new line or comma character at this location.",
                    span,
                );
                self.recover_line();
            }
            if self.pos == before {
                self.builder.start(NodeKind::Error);
                self.bump();
                self.builder.finish();
            }
        }
        self.builder.finish();
        Expr { kind: ExprKind::Object(members), span: self.span_from(start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(source: &str) -> Vec<String> {
        parse(source).diagnostics.iter().map(|d| d.code.to_string()).collect()
    }

    #[test]
    fn lossless_on_broken_input() {
        for source in [
            "param",
            "resource x 'a@b' = {\n  name: \n",
            "var x = [for i in : {",
            "output o string = '${'",
            "@@@\n}}}{{{",
        ] {
            let parsed = parse(source);
            assert_eq!(parsed.tree.text(source), source);
        }
    }

    #[test]
    fn precedence_and_ternary() {
        let parsed = parse("var x = a || b && c == d + e * f ? 1 : 2\n");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let DeclKind::Var { value, .. } = &parsed.program.decls[0].kind else { panic!() };
        let ExprKind::Ternary { condition, .. } = &value.kind else { panic!("{value:?}") };
        let ExprKind::Binary { op: BinaryOp::Or, right, .. } = &condition.kind else { panic!() };
        let ExprKind::Binary { op: BinaryOp::And, .. } = &right.kind else { panic!() };
    }

    #[test]
    fn syntax_errors_have_bicep_codes() {
        assert_eq!(codes("foo bar\n"), ["BCP007"]);
        assert_eq!(codes("param\n"), ["BCP013"]);
        assert_eq!(codes("var x = \n"), ["BCP009"]);
        assert_eq!(codes("var x = \"a\"\n"), ["BCP103", "BCP009"]);
        assert_eq!(codes("var x = 'abc\n"), ["BCP004"]);
        assert_eq!(codes("var x = {\n a 1\n}\n"), ["BCP018"]);
    }

    #[test]
    fn loops_conditions_lambdas_and_nested_resources() {
        let source = "resource a 'A/b@1' = [for (x, i) in range(0, 2): if (i > 0) {\n  name: 'n${x}'\n  resource c 'd' = {\n    name: 'c'\n  }\n}]\nvar m = map([1, 2], i => i * 2)\nvar r = reduce([1], 0, (a, b) => a + b)\n";
        let parsed = parse(source);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        assert_eq!(parsed.program.decls.len(), 3);
    }
}
