//! The rule expression language of Mia's `auth.json` (SPEC §2), parsed once at startup into a
//! tree and evaluated per request without allocating.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ("==" | "===" | "!=" | "!==") operand )?
//! operand := "true" | "false" | STRING | "(" expr ")" | STRING "in" ("groups" | "permissions")
//!          | "groups" "." NAME | "groups" "[" STRING "]"
//!          | "permissions" "." NAME | "permissions" "[" STRING "]"
//!          | "clientType" | "isBackoffice"
//! ```
//! Strings take single or double quotes. A name after `.` may hold letters, digits, `_`, `-`
//! and `:`; anything else needs the bracket form (`permissions["a:b"]`).

/// What an expression is evaluated against; borrowed from the request and the session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub groups: &'a [String],
    pub permissions: &'a [String],
    pub client_type: Option<&'a str>,
    pub is_backoffice: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Str(String),
    Group(String),
    Permission(String),
    ClientType,
    IsBackoffice,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Bool(bool),
    Str(&'a str),
    Null,
}

impl Value<'_> {
    fn truthy(self) -> bool {
        match self {
            Value::Bool(b) => b,
            Value::Str(s) => !s.is_empty(),
            Value::Null => false,
        }
    }
}

impl Expr {
    /// Whether the expression holds in `ctx`.
    pub fn allows(&self, ctx: &Context<'_>) -> bool {
        self.value(ctx).truthy()
    }

    fn value<'a>(&'a self, ctx: &Context<'a>) -> Value<'a> {
        match self {
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Str(s) => Value::Str(s),
            Expr::Group(g) => Value::Bool(ctx.groups.iter().any(|x| x == g)),
            Expr::Permission(p) => Value::Bool(ctx.permissions.iter().any(|x| x == p)),
            Expr::ClientType => ctx.client_type.map_or(Value::Null, Value::Str),
            Expr::IsBackoffice => Value::Bool(ctx.is_backoffice),
            Expr::Not(e) => Value::Bool(!e.value(ctx).truthy()),
            Expr::And(a, b) => Value::Bool(a.value(ctx).truthy() && b.value(ctx).truthy()),
            Expr::Or(a, b) => Value::Bool(a.value(ctx).truthy() || b.value(ctx).truthy()),
            Expr::Eq(a, b) => Value::Bool(a.value(ctx) == b.value(ctx)),
            Expr::Ne(a, b) => Value::Bool(a.value(ctx) != b.value(ctx)),
        }
    }
}

/// A parse error with the 1-based column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Not,
    And,
    Or,
    Eq,
    Ne,
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '$')
}

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: &str| ParseError {
        column,
        message: message.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        let third = chars.get(i + 2).copied();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((Token::LParen, col));
                i += 1;
            }
            ')' => {
                out.push((Token::RParen, col));
                i += 1;
            }
            '[' => {
                out.push((Token::LBracket, col));
                i += 1;
            }
            ']' => {
                out.push((Token::RBracket, col));
                i += 1;
            }
            '.' => {
                out.push((Token::Dot, col));
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push((Token::And, col));
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push((Token::Or, col));
                i += 2;
            }
            '=' if next == Some('=') => {
                out.push((Token::Eq, col));
                i += if third == Some('=') { 3 } else { 2 };
            }
            '!' if next == Some('=') => {
                out.push((Token::Ne, col));
                i += if third == Some('=') { 3 } else { 2 };
            }
            '!' => {
                out.push((Token::Not, col));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(col, "unterminated string")),
                        Some('\\') => {
                            if let Some(escaped) = chars.get(i + 1) {
                                s.push(*escaped);
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push((Token::Str(s), col));
            }
            c if is_name_char(c) => {
                let start = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                out.push((Token::Ident(chars[start..i].iter().collect()), col));
            }
            other => return Err(err(col, &format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.end_column, |(_, c)| *c)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(format!("expected {what}"))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        match self.peek() {
            Some(Token::Eq) => {
                self.pos += 1;
                Ok(Expr::Eq(Box::new(left), Box::new(self.operand()?)))
            }
            Some(Token::Ne) => {
                self.pos += 1;
                Ok(Expr::Ne(Box::new(left), Box::new(self.operand()?)))
            }
            _ => Ok(left),
        }
    }

    /// `.name` or `["name"]` after `groups` / `permissions`.
    fn member(&mut self, of: &str) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Dot) => match self.next() {
                Some(Token::Ident(name)) => Ok(name),
                _ => {
                    self.pos -= 1;
                    self.fail(format!("expected a name after `{of}.`"))
                }
            },
            Some(Token::LBracket) => match self.next() {
                Some(Token::Str(name)) => {
                    self.expect(Token::RBracket, "`]`")?;
                    Ok(name)
                }
                _ => {
                    self.pos -= 1;
                    self.fail(format!("expected a quoted name in `{of}[…]`"))
                }
            },
            _ => {
                self.pos -= 1;
                self.fail(format!("expected `.name` or `[\"name\"]` after `{of}`"))
            }
        }
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::LParen) => {
                let inner = self.or()?;
                self.expect(Token::RParen, "`)`")?;
                Ok(inner)
            }
            Some(Token::Str(s)) => {
                if matches!(self.peek(), Some(Token::Ident(k)) if k == "in") {
                    self.pos += 1;
                    match self.next() {
                        Some(Token::Ident(t)) if t == "groups" => Ok(Expr::Group(s)),
                        Some(Token::Ident(t)) if t == "permissions" => Ok(Expr::Permission(s)),
                        _ => {
                            self.pos -= 1;
                            self.fail("expected `groups` or `permissions` after `in`")
                        }
                    }
                } else {
                    Ok(Expr::Str(s))
                }
            }
            Some(Token::Ident(id)) => match id.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "clientType" => Ok(Expr::ClientType),
                "isBackoffice" => Ok(Expr::IsBackoffice),
                "groups" => Ok(Expr::Group(self.member("groups")?)),
                "permissions" => Ok(Expr::Permission(self.member("permissions")?)),
                other => {
                    self.pos -= 1;
                    self.fail(format!("unknown name `{other}`"))
                }
            },
            Some(_) => {
                self.pos -= 1;
                self.fail("expected a value")
            }
            None => self.fail("unexpected end of expression"),
        }
    }
}

/// Parses `src`; an empty expression is an error.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end_column: src.chars().count() + 1,
    };
    let expr = p.or()?;
    if p.pos < p.tokens.len() {
        return p.fail("unexpected text after the expression");
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(
        groups: &'a [String],
        perms: &'a [String],
        client: Option<&'a str>,
        bo: bool,
    ) -> Context<'a> {
        Context {
            groups,
            permissions: perms,
            client_type: client,
            is_backoffice: bo,
        }
    }

    #[test]
    fn every_form_evaluates() {
        let groups = vec!["admin".to_string(), "team-a".to_string()];
        let perms = vec!["reports:read".to_string(), "write".to_string()];
        let c = ctx(&groups, &perms, Some("cms"), true);
        let none = ctx(&[], &[], None, false);
        let table: &[(&str, bool, bool)] = &[
            // expression, in `c`, in `none`
            ("true", true, true),
            ("false", false, false),
            ("groups.admin", true, false),
            ("groups.nope", false, false),
            ("groups.team-a", true, false),
            ("groups[\"admin\"]", true, false),
            ("\"admin\" in groups", true, false),
            ("'admin' in groups", true, false),
            ("\"x\" in groups", false, false),
            ("permissions.write", true, false),
            ("permissions[\"reports:read\"]", true, false),
            ("permissions.reports:read", true, false),
            ("'reports:read' in permissions", true, false),
            ("clientType == \"cms\"", true, false),
            ("clientType === 'cms'", true, false),
            ("clientType != \"cms\"", false, true),
            ("clientType !== 'web'", true, true),
            ("isBackoffice", true, false),
            ("!isBackoffice", false, true),
            ("isBackoffice == true", true, false),
            ("!groups.admin", false, true),
            ("!!groups.admin", true, false),
            ("groups.admin && permissions.write", true, false),
            ("groups.nope || permissions.write", true, false),
            ("groups.nope || groups.none", false, false),
            // && binds tighter than ||
            ("true || false && false", true, true),
            ("(true || false) && false", false, false),
            ("!false && true", true, true),
            ("!(groups.admin || groups.other)", false, true),
            (
                "  groups.admin   &&\t(clientType == 'cms' || isBackoffice)  ",
                true,
                false,
            ),
        ];
        for (src, in_c, in_none) in table {
            let e = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(e.allows(&c), *in_c, "{src} with groups");
            assert_eq!(e.allows(&none), *in_none, "{src} without");
        }
    }

    #[test]
    fn errors_give_the_column() {
        let table: &[(&str, usize)] = &[
            ("", 1),
            ("groups.", 8),
            ("groups", 7),
            ("groups[admin]", 8),
            ("groups.admin &&", 16),
            ("(true", 6),
            ("true)", 5),
            ("unknown", 1),
            ("'x' in users", 8),
            ("groups.admin & true", 14),
            ("'open", 1),
            ("true true", 6),
            ("clientType = 'x'", 12),
        ];
        for (src, column) in table {
            let err = parse(src)
                .err()
                .unwrap_or_else(|| panic!("{src:?} should not parse"));
            assert_eq!(err.column, *column, "{src:?}: {err}");
        }
    }
}
