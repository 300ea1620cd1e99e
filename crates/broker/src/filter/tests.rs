use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(expr: &str, p: &HashMap<String, String>) -> bool {
    let e = parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
    e.matches(&|k| p.get(k).map(String::as_str))
}

#[test]
fn rocketmq_examples() {
    let m = props(&[("a", "10"), ("b", "abc"), ("c", "true"), ("TAGS", "TagA")]);
    assert!(check("a > 5 AND b = 'abc'", &m));
    assert!(!check("a > 50 AND b = 'abc'", &m));
    assert!(check(
        "(TAGS is not null and TAGS in ('TagA', 'TagB')) and (a is not null and a between 0 and 30)",
        &m
    ));
    assert!(check("c = TRUE", &m));
    assert!(check("a = 10.0", &m));
    assert!(check("a <> 11 and a != 12", &m));
    assert!(check(
        "b CONTAINS 'bc' and b startswith 'ab' and b endswith 'c'",
        &m
    ));
    assert!(check("b not contains 'x' and a not between 11 and 20", &m));
    assert!(check("b NOT IN ('x', 'y')", &m));
    assert!(check("NOT (a < 10)", &m));
    assert!(check("a >= 10 and a <= 10 and a > 9.5 and a < 10.5", &m));
}

#[test]
fn null_is_unknown_not_false() {
    let m = props(&[("a", "1")]);
    assert!(!check("missing > 1", &m));
    // NOT of unknown stays unknown: a message without the property never matches either way.
    assert!(!check("NOT (missing > 1)", &m));
    assert!(check("missing > 1 OR a = 1", &m));
    assert!(!check("missing > 1 AND a = 1", &m));
    assert!(check("missing IS NULL", &m));
    assert!(!check("a = NULL", &m));
    // A property that is not a number makes a numeric comparison unknown.
    let s = props(&[("a", "ten")]);
    assert!(!check("a > 1", &s));
    assert!(!check("NOT (a > 1)", &s));
}

#[test]
fn large_longs_compare_exactly() {
    let m = props(&[("id", "9007199254740993")]);
    assert!(check("id = 9007199254740993", &m));
    assert!(!check("id = 9007199254740992", &m));
}

#[test]
fn strings_escape_quotes() {
    let m = props(&[("s", "it's")]);
    assert!(check("s = 'it''s'", &m));
}

#[test]
fn errors_say_where() {
    for (bad, needle) in [
        ("a >", "end of the expression"),
        ("a > 1 and", "end of the expression"),
        ("a in (1, 2)", "'string'"),
        ("a between 1 or 2", "AND"),
        ("'open", "unterminated"),
        ("a # 1", "unexpected character"),
        ("a is 1", "NULL"),
        ("(a = 1", ")"),
        ("a = 1 b", "AND, OR or the end"),
        ("", "empty"),
        ("a not = 1", "BETWEEN"),
    ] {
        let err = parse(bad).expect_err(bad);
        assert!(err.contains(needle), "{bad}: {err}");
    }
    let deep = format!("{}a = 1{}", "(".repeat(200), ")".repeat(200));
    assert!(parse(&deep).unwrap_err().contains("nested"));
    let nots = format!("{}a = 1", "not ".repeat(200));
    assert!(parse(&nots).unwrap_err().contains("nested"));
}

#[test]
fn cache_returns_the_same_parse() {
    let c = SqlCache::default();
    let a = c.get("a > 1").unwrap();
    let b = c.get("a > 1").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(c.get("a >").is_err());
}

/// Prints an expression back as text the parser accepts (fully parenthesized).
fn show(e: &Expr) -> String {
    fn lit(v: &Value) -> String {
        match v {
            Value::Null => "NULL".into(),
            Value::Bool(b) => b.to_string().to_uppercase(),
            Value::Long(x) => x.to_string(),
            Value::Double(x) => format!("{x:?}"),
            Value::Str(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }
    let not = |n: &bool| if *n { "NOT " } else { "" };
    match e {
        Expr::Lit(v) => lit(v),
        Expr::Prop(p) => p.clone(),
        Expr::Not(x) => format!("(NOT {})", show(x)),
        Expr::And(x, y) => format!("({} AND {})", show(x), show(y)),
        Expr::Or(x, y) => format!("({} OR {})", show(x), show(y)),
        Expr::Cmp(op, x, y) => format!("({} {} {})", show(x), op.symbol(), show(y)),
        Expr::Between(x, lo, hi, n) => format!(
            "({} {}BETWEEN {} AND {})",
            show(x),
            not(n),
            show(lo),
            show(hi)
        ),
        Expr::In(x, l, n) => format!(
            "({} {}IN ({}))",
            show(x),
            not(n),
            l.iter()
                .map(|s| lit(&Value::Str(s.clone())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::IsNull(x, n) => format!("({} IS {}NULL)", show(x), not(n)),
        Expr::Str(op, x, p, n) => format!(
            "({} {}{} {})",
            show(x),
            not(n),
            match op {
                StrOp::Contains => "CONTAINS",
                StrOp::StartsWith => "STARTSWITH",
                StrOp::EndsWith => "ENDSWITH",
            },
            lit(&Value::Str(p.clone()))
        ),
    }
}

fn operand() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (-50i64..50).prop_map(|v| Expr::Lit(Value::Long(v))),
        (-50i64..50).prop_map(|v| Expr::Lit(Value::Double(v as f64 / 4.0))),
        "[a-c']{0,3}".prop_map(|s| Expr::Lit(Value::Str(s))),
        any::<bool>().prop_map(|b| Expr::Lit(Value::Bool(b))),
        Just(Expr::Lit(Value::Null)),
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("missing")]
            .prop_map(|p| Expr::Prop(p.to_string())),
    ]
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
        Just(CmpOp::Lt),
        Just(CmpOp::Le)
    ]
}

fn predicate() -> impl Strategy<Value = Expr> {
    let b = || operand().prop_map(Box::new);
    prop_oneof![
        (cmp_op(), b(), b()).prop_map(|(o, x, y)| Expr::Cmp(o, x, y)),
        (b(), b(), b(), any::<bool>()).prop_map(|(x, l, h, n)| Expr::Between(x, l, h, n)),
        (
            b(),
            prop::collection::vec("[a-c]{0,2}", 1..3),
            any::<bool>()
        )
            .prop_map(|(x, l, n)| Expr::In(x, l, n)),
        (b(), any::<bool>()).prop_map(|(x, n)| Expr::IsNull(x, n)),
        (b(), "[a-c]{0,2}", any::<bool>()).prop_map(|(x, p, n)| Expr::Str(
            StrOp::Contains,
            x,
            p,
            n
        )),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    predicate().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|x| Expr::Not(Box::new(x))),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| Expr::And(Box::new(x), Box::new(y))),
            (inner.clone(), inner).prop_map(|(x, y)| Expr::Or(Box::new(x), Box::new(y))),
        ]
    })
}

fn message() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from),
        prop_oneof!["-?[0-9]{1,3}", "[a-c]{0,3}", Just("true".to_string())],
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Printing and parsing again gives the same tree.
    #[test]
    fn print_parse_round_trip(e in expr()) {
        let text = show(&e);
        let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(back, e);
    }

    /// Three-valued logic: NOT flips true and false and keeps unknown; De Morgan holds.
    #[test]
    fn logic_laws(x in expr(), y in expr(), m in message()) {
        let p = |k: &str| m.get(k).map(String::as_str);
        let t = |e: &Expr| eval::truth(e, &p);
        prop_assert_eq!(t(&Expr::Not(Box::new(x.clone()))), t(&x).map(|b| !b));
        let not_and = Expr::Not(Box::new(Expr::And(Box::new(x.clone()), Box::new(y.clone()))));
        let or_not = Expr::Or(Box::new(Expr::Not(Box::new(x.clone()))), Box::new(Expr::Not(Box::new(y.clone()))));
        prop_assert_eq!(t(&not_and), t(&or_not));
    }

    /// Numeric comparisons of a property agree with integer comparison.
    #[test]
    fn numeric_comparison_matches_integers(v in -1000i64..1000, c in -1000i64..1000, op in cmp_op()) {
        let m = props(&[("a", &v.to_string())]);
        let expected = match op {
            CmpOp::Eq => v == c,
            CmpOp::Ne => v != c,
            CmpOp::Gt => v > c,
            CmpOp::Ge => v >= c,
            CmpOp::Lt => v < c,
            CmpOp::Le => v <= c,
        };
        prop_assert_eq!(check(&format!("a {} {c}", op.symbol()), &m), expected);
        let between = check(&format!("a BETWEEN {} AND {}", c - 10, c + 10), &m);
        prop_assert_eq!(between, (c - 10..=c + 10).contains(&v));
    }

    /// Arbitrary text never panics the parser, and what parses evaluates without panicking.
    #[test]
    fn hostile_text(s in "\\PC{0,64}", m in message()) {
        if let Ok(e) = parse(&s) {
            let _ = e.matches(&|k| m.get(k).map(String::as_str));
        }
    }
}
