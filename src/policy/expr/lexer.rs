//! The tokens of the rule expression language, with the 1-based column each starts at (for
//! errors). Strings take single or double quotes, with `\` escaping the next character; a name
//! holds letters, digits, `_`, `-`, `:` and `$`. Input length is bounded by the caller
//! ([`super::parse`]), so this works on the whole text at once.

use super::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Ident(String),
    Str(String),
    Not,
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '$')
}

pub(super) fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, ParseError> {
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
            ',' => {
                out.push((Token::Comma, col));
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
            '<' | '>' => {
                let or_equal = next == Some('=');
                let token = match (c, or_equal) {
                    ('<', false) => Token::Lt,
                    ('<', true) => Token::Le,
                    (_, false) => Token::Gt,
                    (_, true) => Token::Ge,
                };
                out.push((token, col));
                i += if or_equal { 2 } else { 1 };
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
