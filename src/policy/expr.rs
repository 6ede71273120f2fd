//! The rule expression language of Mia's `auth.json` (SPEC §2), parsed once at startup into a
//! tree and evaluated per request without allocating.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ("==" | "===" | "!=" | "!==" | "<" | "<=" | ">" | ">=") operand )?
//! operand := "true" | "false" | STRING | NUMBER | "(" expr ")" | STRING "in" LIST
//!          | "[" STRING ( "," STRING )* "]" "in" LIST
//!          | "groups" "." NAME | "groups" "[" STRING "]"
//!          | "permissions" "." NAME | "permissions" "[" STRING "]"
//!          | "clientType" | "isBackoffice" | "acr" | "authAge"
//! LIST    := "groups" | "permissions" | "amr"
//! ```
//! `acr` is the authentication context class the identity provider asserted at the session's
//! login (a string, or null when it asserted none), `amr` the list of its authentication
//! methods (`"otp" in amr`), and `authAge` the seconds since that login (`authAge < 600`), null
//! when the IdP did not say when. A NUMBER is a whole number of at most 12 digits. `<`, `<=`,
//! `>` and `>=` compare two numbers; with anything else (a null `authAge`) they are false, so
//! a rule on the login's age refuses a session whose age is unknown.
//! `["admin", "user"] in groups` holds when any of the listed groups does (Mia's documented
//! form: "users in the admin or the user group"). Strings take single or double quotes. A name after `.` may hold letters, digits, `_`, `-`
//! and `:`; anything else needs the bracket form (`permissions["a:b"]`).
//!
//! # Bounded by construction
//!
//! Expressions come from the operator (`auth.json`, the TOML) and from the path of a `/auth/<rule>`
//! request, so a hostile one must not stop the daemon. An expression longer than
//! [`MAX_EXPRESSION_BYTES`] is refused before it is even tokenized, and one nesting `(` and `!`
//! deeper than [`MAX_NESTING`] is refused before the parser recurses any further; both errors
//! name the limit and the column. `&&` and `||` chains are parsed in loops into n-ary nodes, so a
//! long `a || b || c …` is one flat node, not a deep tree. The tree is therefore at most about
//! twice `MAX_NESTING` deep, which bounds the recursion of evaluation, `Clone`, `Debug` and drop.

mod lexer;

use lexer::{tokenize, Token};

/// What an expression is evaluated against, and who asks; borrowed from the request and the
/// session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// A session is presented (its groups and permissions below); false for an anonymous
    /// request, whose groups and permissions are empty.
    pub session: bool,
    pub groups: &'a [String],
    pub permissions: &'a [String],
    pub client_type: Option<&'a str>,
    pub is_backoffice: bool,
    /// The `acr` the IdP asserted at the session's login.
    pub acr: Option<&'a str>,
    /// The `amr` the IdP asserted at the session's login.
    pub amr: &'a [String],
    /// Seconds since the IdP's login (`auth_time`), when the IdP said.
    pub auth_age: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Str(String),
    Group(String),
    Permission(String),
    Num(i64),
    ClientType,
    IsBackoffice,
    Acr,
    /// One method in `amr`.
    Amr(String),
    AuthAge,
    Not(Box<Expr>),
    /// All of (two or more); a whole `a && b && c` chain is one node.
    And(Vec<Expr>),
    /// Any of (two or more); a whole `a || b || c` chain is one node.
    Or(Vec<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    /// `a < b`, `a <= b`, `a > b`, `a >= b`: true only when both are numbers.
    Cmp(Box<Expr>, Ordering, Box<Expr>),
}

/// What a comparison between numbers asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Bool(bool),
    Str(&'a str),
    Num(i64),
    Null,
}

impl Value<'_> {
    fn truthy(self) -> bool {
        match self {
            Value::Bool(b) => b,
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => n != 0,
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
            Expr::Num(n) => Value::Num(*n),
            Expr::ClientType => ctx.client_type.map_or(Value::Null, Value::Str),
            Expr::IsBackoffice => Value::Bool(ctx.is_backoffice),
            Expr::Acr => ctx.acr.map_or(Value::Null, Value::Str),
            Expr::Amr(m) => Value::Bool(ctx.amr.iter().any(|x| x == m)),
            Expr::AuthAge => ctx.auth_age.map_or(Value::Null, Value::Num),
            Expr::Not(e) => Value::Bool(!e.value(ctx).truthy()),
            Expr::And(all) => Value::Bool(all.iter().all(|e| e.value(ctx).truthy())),
            Expr::Or(any) => Value::Bool(any.iter().any(|e| e.value(ctx).truthy())),
            Expr::Eq(a, b) => Value::Bool(a.value(ctx) == b.value(ctx)),
            Expr::Ne(a, b) => Value::Bool(a.value(ctx) != b.value(ctx)),
            Expr::Cmp(a, op, b) => Value::Bool(match (a.value(ctx), b.value(ctx)) {
                (Value::Num(a), Value::Num(b)) => match op {
                    Ordering::Lt => a < b,
                    Ordering::Le => a <= b,
                    Ordering::Gt => a > b,
                    Ordering::Ge => a >= b,
                },
                _ => false,
            }),
        }
    }
}

/// The longest expression accepted, in bytes (of the decoded text, for a location's rule).
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// The most digits a number may have (about 31 700 years in seconds).
pub const MAX_NUMBER_DIGITS: usize = 12;

/// The deepest nesting of `(` and `!` accepted (`!(!(a))` nests 3 deep).
pub const MAX_NESTING: usize = 32;

/// A parse error with the 1-based column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end_column: usize,
    /// How many `(` and `!` enclose the current position; never above `MAX_NESTING`.
    depth: usize,
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

    /// Steps into one more `(` or `!` (the token at the current position), or refuses to.
    /// Called before the recursion, so the stack never grows past `MAX_NESTING` levels.
    fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_NESTING {
            return self.fail(format!(
                "nested deeper than {MAX_NESTING} levels of `(` and `!`"
            ));
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut any = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 {
            any.swap_remove(0)
        } else {
            Expr::Or(any)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut all = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 {
            all.swap_remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
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
            Some(t @ (Token::Lt | Token::Le | Token::Gt | Token::Ge)) => {
                let op = match t {
                    Token::Lt => Ordering::Lt,
                    Token::Le => Ordering::Le,
                    Token::Gt => Ordering::Gt,
                    _ => Ordering::Ge,
                };
                self.pos += 1;
                Ok(Expr::Cmp(Box::new(left), op, Box::new(self.operand()?)))
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

    /// After `in`: `groups`, `permissions` or `amr`, holding when any of `names` is there.
    fn membership(&mut self, names: Vec<String>) -> Result<Expr, ParseError> {
        let one: fn(String) -> Expr = match self.next() {
            Some(Token::Ident(t)) if t == "groups" => Expr::Group,
            Some(Token::Ident(t)) if t == "permissions" => Expr::Permission,
            Some(Token::Ident(t)) if t == "amr" => Expr::Amr,
            _ => {
                self.pos -= 1;
                return self.fail("expected `groups`, `permissions` or `amr` after `in`");
            }
        };
        let mut any: Vec<Expr> = names.into_iter().map(one).collect();
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        })
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::LParen) => {
                self.pos -= 1;
                self.enter()?;
                let inner = self.or()?;
                self.expect(Token::RParen, "`)`")?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::Str(s)) => {
                if matches!(self.peek(), Some(Token::Ident(k)) if k == "in") {
                    self.pos += 1;
                    self.membership(vec![s])
                } else {
                    Ok(Expr::Str(s))
                }
            }
            Some(Token::LBracket) => {
                let mut names = Vec::new();
                loop {
                    match self.next() {
                        Some(Token::Str(s)) => names.push(s),
                        _ => {
                            self.pos -= 1;
                            return self.fail("expected a quoted name in the list");
                        }
                    }
                    match self.next() {
                        Some(Token::Comma) => {}
                        Some(Token::RBracket) => break,
                        _ => {
                            self.pos -= 1;
                            return self.fail("expected `,` or `]` in the list");
                        }
                    }
                }
                match self.next() {
                    Some(Token::Ident(k)) if k == "in" => self.membership(names),
                    _ => {
                        self.pos -= 1;
                        self.fail(
                            "expected `in groups`, `in permissions` or `in amr` after the list",
                        )
                    }
                }
            }
            Some(Token::Ident(id)) => match id.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "clientType" => Ok(Expr::ClientType),
                "isBackoffice" => Ok(Expr::IsBackoffice),
                "acr" => Ok(Expr::Acr),
                "authAge" => Ok(Expr::AuthAge),
                "groups" => Ok(Expr::Group(self.member("groups")?)),
                "permissions" => Ok(Expr::Permission(self.member("permissions")?)),
                digits if digits.bytes().all(|b| b.is_ascii_digit()) => {
                    match digits.parse::<i64>() {
                        Ok(n) if digits.len() <= MAX_NUMBER_DIGITS => Ok(Expr::Num(n)),
                        _ => {
                            self.pos -= 1;
                            self.fail(format!("a number has at most {MAX_NUMBER_DIGITS} digits"))
                        }
                    }
                }
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

/// Parses `src`; an empty expression is an error, and so is one past the limits
/// ([`MAX_EXPRESSION_BYTES`], [`MAX_NESTING`]).
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_EXPRESSION_BYTES {
        // The column of the first character past the limit.
        let column = src
            .char_indices()
            .take_while(|(i, _)| *i < MAX_EXPRESSION_BYTES)
            .count()
            + 1;
        return Err(ParseError {
            column,
            message: format!("longer than {MAX_EXPRESSION_BYTES} bytes"),
        });
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end_column: src.chars().count() + 1,
        depth: 0,
    };
    let expr = p.or()?;
    if p.pos < p.tokens.len() {
        return p.fail("unexpected text after the expression");
    }
    Ok(expr)
}

#[cfg(test)]
mod tests;
