//! Message filters of a pull: tag hashes (`TagA || TagB`, checked on consume-queue entries) and
//! SQL92 expressions over message properties (`enablePropertyFilter=true`, checked on the stored
//! record's properties).
//!
//! SQL92 follows SQL's three-valued logic as RocketMQ does: a missing property is NULL, a
//! comparison with NULL is unknown, and a message matches only when the whole expression is
//! TRUE. Properties are strings; compared with a number they are read as one (`a > 5` matches
//! `a=10`), and a value that is not a number makes the comparison unknown.

mod eval;
mod parse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use parse::parse;

/// A constant or a property's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// RocketMQ 5's string predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// A parsed expression. The `bool` of the predicates is "negated" (`NOT BETWEEN`, `IS NOT NULL`).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Prop(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    In(Box<Expr>, Vec<String>, bool),
    IsNull(Box<Expr>, bool),
    Str(StrOp, Box<Expr>, String, bool),
}

impl Expr {
    /// True when the message whose properties `prop` looks up matches.
    pub fn matches<'m>(&self, prop: &dyn Fn(&str) -> Option<&'m str>) -> bool {
        eval::truth(self, prop) == Some(true)
    }
}

/// Parsed SQL92 expressions by text, so a pull does not re-parse its group's subscription.
#[derive(Default)]
pub struct SqlCache {
    map: Mutex<HashMap<String, Arc<Expr>>>,
}

/// Expressions kept at most; past it the cache starts over.
const CACHE_MAX: usize = 1024;

impl SqlCache {
    /// The parsed expression, or the parse error (RocketMQ's SUBSCRIPTION_PARSE_FAILED remark).
    pub fn get(&self, src: &str) -> Result<Arc<Expr>, String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get(src) {
            return Ok(Arc::clone(e));
        }
        let e = Arc::new(parse(src)?);
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(src.to_string(), Arc::clone(&e));
        Ok(e)
    }
}

#[cfg(test)]
mod tests;
