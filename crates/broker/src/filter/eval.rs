//! Evaluation with SQL's three-valued logic: `None` is UNKNOWN.

use std::cmp::Ordering;

use super::{CmpOp, Expr, StrOp, Value};

/// A value during evaluation: constants borrow from the expression, properties from the message.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(&'a str),
}

fn value<'a, 'm: 'a>(e: &'a Expr, prop: &dyn Fn(&str) -> Option<&'m str>) -> V<'a> {
    match e {
        Expr::Lit(Value::Null) => V::Null,
        Expr::Lit(Value::Bool(b)) => V::Bool(*b),
        Expr::Lit(Value::Long(v)) => V::Long(*v),
        Expr::Lit(Value::Double(v)) => V::Double(*v),
        Expr::Lit(Value::Str(s)) => V::Str(s),
        Expr::Prop(name) => prop(name).map_or(V::Null, V::Str),
        other => match truth(other, prop) {
            Some(b) => V::Bool(b),
            None => V::Null,
        },
    }
}

/// A string read as a number, as the other side of a numeric comparison wants it.
fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    t.parse::<i64>()
        .map(|v| v as f64)
        .ok()
        .or_else(|| t.parse::<f64>().ok().filter(|v| v.is_finite()))
}

fn as_f64(v: V<'_>) -> Option<f64> {
    match v {
        V::Long(x) => Some(x as f64),
        V::Double(x) => Some(x),
        V::Str(s) => number(s),
        _ => None,
    }
}

fn order(a: V<'_>, b: V<'_>) -> Option<Ordering> {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Long(x), V::Long(y)) => Some(x.cmp(&y)),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
        (V::Bool(x), V::Str(s)) | (V::Str(s), V::Bool(x)) => {
            let y = match s.trim() {
                t if t.eq_ignore_ascii_case("true") => true,
                t if t.eq_ignore_ascii_case("false") => false,
                _ => return None,
            };
            // Equality is all that is asked of booleans; keep the sides' order.
            if matches!(a, V::Bool(_)) {
                Some(x.cmp(&y))
            } else {
                Some(y.cmp(&x))
            }
        }
        (V::Bool(_), _) | (_, V::Bool(_)) => None,
        // Exact for two longs, even when one came as a numeric string.
        (V::Str(s), V::Long(y)) => match s.trim().parse::<i64>() {
            Ok(x) => Some(x.cmp(&y)),
            Err(_) => as_f64(a)?.partial_cmp(&(y as f64)),
        },
        (V::Long(x), V::Str(s)) => match s.trim().parse::<i64>() {
            Ok(y) => Some(x.cmp(&y)),
            Err(_) => (x as f64).partial_cmp(&as_f64(b)?),
        },
        _ => as_f64(a)?.partial_cmp(&as_f64(b)?),
    }
}

fn compare(op: CmpOp, a: V<'_>, b: V<'_>) -> Option<bool> {
    let o = order(a, b)?;
    if matches!(a, V::Bool(_)) || matches!(b, V::Bool(_)) {
        return match op {
            CmpOp::Eq => Some(o == Ordering::Equal),
            CmpOp::Ne => Some(o != Ordering::Equal),
            _ => None,
        };
    }
    Some(match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
    })
}

fn negate(r: Option<bool>, negated: bool) -> Option<bool> {
    r.map(|b| b != negated)
}

/// The truth of `e`: `Some(true)`, `Some(false)` or `None` (unknown).
pub fn truth<'m>(e: &Expr, prop: &dyn Fn(&str) -> Option<&'m str>) -> Option<bool> {
    match e {
        Expr::Not(x) => truth(x, prop).map(|b| !b),
        Expr::And(x, y) => match (truth(x, prop), truth(y, prop)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Expr::Or(x, y) => match (truth(x, prop), truth(y, prop)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Expr::Cmp(op, x, y) => compare(*op, value(x, prop), value(y, prop)),
        Expr::Between(x, lo, hi, negated) => {
            let v = value(x, prop);
            let ge = compare(CmpOp::Ge, v, value(lo, prop));
            let le = compare(CmpOp::Le, v, value(hi, prop));
            let r = match (ge, le) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            negate(r, *negated)
        }
        Expr::In(x, list, negated) => match value(x, prop) {
            V::Str(s) => negate(Some(list.iter().any(|l| l == s)), *negated),
            _ => None,
        },
        Expr::IsNull(x, negated) => Some(matches!(value(x, prop), V::Null) != *negated),
        Expr::Str(op, x, pat, negated) => match value(x, prop) {
            V::Str(s) => {
                let r = match op {
                    StrOp::Contains => s.contains(pat.as_str()),
                    StrOp::StartsWith => s.starts_with(pat.as_str()),
                    StrOp::EndsWith => s.ends_with(pat.as_str()),
                };
                negate(Some(r), *negated)
            }
            _ => None,
        },
        Expr::Lit(Value::Bool(b)) => Some(*b),
        Expr::Lit(_) => None,
        Expr::Prop(name) => match prop(name) {
            Some(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
    }
}
