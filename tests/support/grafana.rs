//! The shipped Grafana dashboard (`deploy/grafana/uplinkd.json`) as the tests read it: every
//! PromQL query it holds (panel targets, annotations, query variables), the metric names and
//! dashboard variables those use, and a query with the variables filled in as Grafana would.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

pub(crate) const PATH: &str = "deploy/grafana/uplinkd.json";

/// Grafana's own variables the queries may use.
pub(crate) const BUILTINS: [&str; 4] = ["__range", "__rate_interval", "__interval", "datasource"];

pub(crate) fn dashboard() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{PATH}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{PATH} is not JSON: {e}"))
}

/// Where a query sits and its text.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub place: String,
    pub expr: String,
    /// A Grafana `label_values(selector, label)` variable query: (selector, label).
    pub label_values: Option<(String, String)>,
}

/// Every panel (rows' nested panels included), in order.
pub(crate) fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

/// Every PromQL query of the dashboard.
pub(crate) fn queries(d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!("panel {:?} target {}", p["title"], t["refId"]),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                label_values: None,
            });
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["expr"].as_str() {
            out.push(Query {
                place: format!("annotation {:?}", a["name"]),
                expr: expr.to_string(),
                label_values: None,
            });
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or_default();
            let (selector, label) = label_values(q)
                .unwrap_or_else(|| panic!("variable {:?}: not label_values(...): {q}", v["name"]));
            out.push(Query {
                place: format!("variable {:?}", v["name"]),
                expr: selector.clone(),
                label_values: Some((selector, label)),
            });
        }
    }
    out
}

/// `label_values(selector, label)` → (selector, label).
fn label_values(q: &str) -> Option<(String, String)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_string(), label.trim().to_string()))
}

/// The variables a query uses (`$router`, `${datasource}`).
pub(crate) fn variables(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let braced = rest.strip_prefix('{');
        let body = braced.unwrap_or(rest);
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The query with the variables as Grafana fills them for "All" and a range of `range`.
pub(crate) fn instantiate(expr: &str, range: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", range)
        .replace("$__interval", "15s")
        .replace("$router", ".*")
        .replace("$wan", ".*")
}

const KEYWORDS: [&str; 29] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "atan2",
    "start",
];

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers,
/// ranges and label lists that are neither keywords, aggregations nor function calls.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |mut i: usize| {
        let quote = c[i];
        i += 1;
        while i < c.len() && c[i] != quote {
            i += if c[i] == '\\' { 2 } else { 1 };
        }
        i + 1
    };
    let skip_to = |mut i: usize, close: char| {
        while i < c.len() && c[i] != close {
            i = if matches!(c[i], '"' | '\'' | '`') {
                skip_string(i)
            } else {
                i + 1
            };
        }
        i + 1
    };
    let next_non_space = |mut i: usize| {
        while i < c.len() && c[i].is_whitespace() {
            i += 1;
        }
        i
    };
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            i = skip_string(i);
        } else if ch == '{' {
            i = skip_to(i, '}');
        } else if ch == '[' {
            i = skip_to(i, ']');
        } else if ch.is_ascii_digit() || ch == '.' {
            // Numbers and durations (5m, 1e3).
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let after = next_non_space(i);
            let call = after < c.len() && c[after] == '(';
            if matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                if call {
                    i = skip_to(after, ')');
                }
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_skip_functions_labels_and_ranges() {
    let names = metric_names(
        "max by (router, wan) (uplinkd_a{state=\"x{y}\", wan=~\"$wan\"} * 2 or uplinkd_b) \
         / on (router) group_left (wan) sum(rate(uplinkd_c_total[$__rate_interval] offset 5m)) \
         - time()",
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "uplinkd_a".into(),
            "uplinkd_b".into(),
            "uplinkd_c_total".into()
        ])
    );
    assert_eq!(
        variables("x{a=~\"$router\"}[$__range] ${datasource}"),
        BTreeSet::from(["router".into(), "__range".into(), "datasource".into()])
    );
}
