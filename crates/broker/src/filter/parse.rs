//! Lexer and recursive-descent parser of RocketMQ's SQL92 subset.
//!
//! Grammar (keywords case-insensitive), loosest first:
//!
//! ```text
//! or      := and (OR and)*
//! and     := not (AND not)*
//! not     := NOT not | pred
//! pred    := value ( cmp value
//!                  | [NOT] BETWEEN value AND value
//!                  | [NOT] IN '(' string (',' string)* ')'
//!                  | IS [NOT] NULL
//!                  | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string )?
//! value   := '(' or ')' | number | 'string' | TRUE | FALSE | NULL | identifier
//! cmp     := = | <> | != | > | >= | < | <=
//! ```
//!
//! Input is bounded (length and nesting) so a hostile expression costs little to refuse.

use super::{CmpOp, Expr, StrOp, Value};

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Long(i64),
    Double(f64),
    Kw(Kw),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    Between,
    In,
    Is,
    Null,
    True,
    False,
    Contains,
    StartsWith,
    EndsWith,
}

fn keyword(word: &str) -> Option<Kw> {
    Some(match word.to_ascii_uppercase().as_str() {
        "AND" => Kw::And,
        "OR" => Kw::Or,
        "NOT" => Kw::Not,
        "BETWEEN" => Kw::Between,
        "IN" => Kw::In,
        "IS" => Kw::Is,
        "NULL" => Kw::Null,
        "TRUE" => Kw::True,
        "FALSE" => Kw::False,
        "CONTAINS" => Kw::Contains,
        "STARTSWITH" => Kw::StartsWith,
        "ENDSWITH" => Kw::EndsWith,
        _ => return None,
    })
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            b'=' => {
                out.push((start, Tok::Op(CmpOp::Eq)));
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push((start, Tok::Op(CmpOp::Ne)));
                i += 2;
            }
            b'<' => {
                let (op, n) = match b.get(i + 1) {
                    Some(b'>') => (CmpOp::Ne, 2),
                    Some(b'=') => (CmpOp::Le, 2),
                    _ => (CmpOp::Lt, 1),
                };
                out.push((start, Tok::Op(op)));
                i += n;
            }
            b'>' => {
                let (op, n) = match b.get(i + 1) {
                    Some(b'=') => (CmpOp::Ge, 2),
                    _ => (CmpOp::Gt, 1),
                };
                out.push((start, Tok::Op(op)));
                i += n;
            }
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(rest) = src.get(i..) else {
                        return Err(format!("unterminated string starting at {start}"));
                    };
                    let Some(q) = rest.find('\'') else {
                        return Err(format!("unterminated string starting at {start}"));
                    };
                    s.push_str(&rest[..q]);
                    i += q + 1;
                    if b.get(i) == Some(&b'\'') {
                        s.push('\'');
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((start, Tok::Str(s)));
            }
            b'0'..=b'9' | b'-' | b'.' => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_digit()
                        || b[i] == b'.'
                        || b[i] == b'e'
                        || b[i] == b'E'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let text = &src[start..i];
                if i < b.len() && (b[i] == b'L' || b[i] == b'l') {
                    i += 1;
                }
                let tok = if let Ok(v) = text.parse::<i64>() {
                    Tok::Long(v)
                } else if let Ok(v) = text.parse::<f64>() {
                    if !v.is_finite() {
                        return Err(format!("number out of range at {start}: {text}"));
                    }
                    Tok::Double(v)
                } else {
                    return Err(format!("bad number at {start}: {text}"));
                };
                out.push((start, tok));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'$' | b'.'))
                {
                    i += 1;
                }
                let word = &src[start..i];
                out.push((
                    start,
                    match keyword(word) {
                        Some(k) => Tok::Kw(k),
                        None => Tok::Ident(word.to_string()),
                    },
                ));
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character {ch:?} at {start}"));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |(p, _)| *p)
    }

    fn eat_kw(&mut self, k: Kw) -> bool {
        if self.peek() == Some(&Tok::Kw(k)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(t) => format!("expected {wanted} at {}, found {}", self.at(), show(t)),
            None => format!("expected {wanted} at the end of the expression"),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let mut e = self.and()?;
        while self.eat_kw(Kw::Or) {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat_kw(Kw::And) {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_kw(Kw::Not) {
            self.enter()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.pred()
    }

    fn pred(&mut self) -> Result<Expr, String> {
        let left = self.value()?;
        if let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            let right = self.value()?;
            return Ok(Expr::Cmp(op, Box::new(left), Box::new(right)));
        }
        if self.eat_kw(Kw::Is) {
            let negated = self.eat_kw(Kw::Not);
            if !self.eat_kw(Kw::Null) {
                return Err(self.unexpected("NULL"));
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat_kw(Kw::Not);
        match self.peek() {
            Some(Tok::Kw(Kw::Between)) => {
                self.pos += 1;
                let lo = self.value()?;
                if !self.eat_kw(Kw::And) {
                    return Err(self.unexpected("AND"));
                }
                let hi = self.value()?;
                Ok(Expr::Between(
                    Box::new(left),
                    Box::new(lo),
                    Box::new(hi),
                    negated,
                ))
            }
            Some(Tok::Kw(Kw::In)) => {
                self.pos += 1;
                self.expect(Tok::LParen, "(")?;
                let mut list = vec![self.string()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    list.push(self.string()?);
                }
                self.expect(Tok::RParen, ")")?;
                Ok(Expr::In(Box::new(left), list, negated))
            }
            Some(Tok::Kw(k @ (Kw::Contains | Kw::StartsWith | Kw::EndsWith))) => {
                let op = match k {
                    Kw::Contains => StrOp::Contains,
                    Kw::StartsWith => StrOp::StartsWith,
                    _ => StrOp::EndsWith,
                };
                self.pos += 1;
                let pat = self.string()?;
                Ok(Expr::Str(op, Box::new(left), pat, negated))
            }
            _ if negated => Err(self.unexpected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH")),
            _ => Ok(left),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a 'string'")),
        }
    }

    fn value(&mut self) -> Result<Expr, String> {
        let e = match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                self.expect(Tok::RParen, ")")?;
                return Ok(e);
            }
            Some(Tok::Long(v)) => Expr::Lit(Value::Long(v)),
            Some(Tok::Double(v)) => Expr::Lit(Value::Double(v)),
            Some(Tok::Str(s)) => Expr::Lit(Value::Str(s)),
            Some(Tok::Kw(Kw::True)) => Expr::Lit(Value::Bool(true)),
            Some(Tok::Kw(Kw::False)) => Expr::Lit(Value::Bool(false)),
            Some(Tok::Kw(Kw::Null)) => Expr::Lit(Value::Null),
            Some(Tok::Ident(name)) => Expr::Prop(name),
            _ => return Err(self.unexpected("a property, a constant or (")),
        };
        self.pos += 1;
        Ok(e)
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Long(v) => v.to_string(),
        Tok::Double(v) => v.to_string(),
        Tok::Kw(k) => format!("{k:?}").to_ascii_uppercase(),
        Tok::Op(op) => op.symbol().to_string(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
    }
}

/// Parses an expression; the error says what was expected where (byte offsets).
pub fn parse(src: &str) -> Result<Expr, String> {
    if src.len() > MAX_LEN {
        return Err(format!("expression longer than {MAX_LEN} bytes"));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        len: src.len(),
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.unexpected("AND, OR or the end"));
    }
    Ok(e)
}
