//! A trust policy's claim conditions: exact values and simple glob patterns (`*` any run of
//! characters, `/` included; `?` one character), over the external token's claims.
use std::collections::BTreeMap;

use serde_json::Value;

/// Whether `pattern` is made only of wildcards (it would match anything).
pub fn only_wildcards(pattern: &str) -> bool {
    pattern.chars().all(|c| c == '*' || c == '?')
}

/// Glob match, iterative with one backtrack point (linear in practice, never exponential).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The claim `name` names: a top-level claim of that exact name, else a path with `/`
/// between levels (`kubernetes.io/namespace`, `kubernetes.io/serviceaccount/name`).
pub fn lookup<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut cur = claims;
    for part in name.split('/') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn value_matches(v: &Value, pattern: &str) -> bool {
    match v {
        Value::String(s) => glob(pattern, s),
        Value::Number(n) => glob(pattern, &n.to_string()),
        Value::Bool(b) => glob(pattern, if *b { "true" } else { "false" }),
        Value::Array(items) => items.iter().any(|i| !i.is_array() && value_matches(i, pattern)),
        _ => false,
    }
}

/// The first condition that does not hold (its claim name), or None when all hold. No
/// conditions at all never holds: a policy without one would trust every token its
/// issuer signs for anyone.
pub fn first_failing<'a>(conditions: &'a BTreeMap<String, String>, claims: &Value) -> Option<&'a str> {
    if conditions.is_empty() {
        return Some("(none)");
    }
    conditions
        .iter()
        .find(|(claim, pattern)| !lookup(claims, claim).is_some_and(|v| value_matches(v, pattern)))
        .map(|(claim, _)| claim.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob("refs/heads/main", "refs/heads/main"));
        assert!(!glob("refs/heads/main", "refs/heads/main2"));
        assert!(glob("refs/heads/*", "refs/heads/feature/x"));
        assert!(glob("repo:acme/*:ref:refs/heads/main", "repo:acme/billing:ref:refs/heads/main"));
        assert!(!glob("repo:acme/*:ref:refs/heads/main", "repo:acme/billing:ref:refs/heads/dev"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
        assert!(glob("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob("*a*b*c*d", &"abc".repeat(2000)));
        assert!(only_wildcards("**?") && !only_wildcards("a*"));
    }

    #[test]
    fn claims_and_paths() {
        let c = json!({"sub": "system:serviceaccount:prod:collector", "kubernetes.io": {"namespace": "prod",
            "serviceaccount": {"name": "collector"}}, "aud": ["a", "b"], "run_attempt": 1, "x.y": "literal"});
        let cond = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(first_failing(&cond(&[("kubernetes.io/namespace", "prod")]), &c), None);
        assert_eq!(first_failing(&cond(&[("kubernetes.io/serviceaccount/name", "coll*")]), &c), None);
        assert_eq!(first_failing(&cond(&[("aud", "b"), ("run_attempt", "1"), ("x.y", "literal")]), &c), None);
        assert_eq!(first_failing(&cond(&[("sub", "system:serviceaccount:dev:*")]), &c), Some("sub"));
        assert_eq!(first_failing(&cond(&[("missing", "*")]), &c), Some("missing"));
        assert_eq!(first_failing(&cond(&[("kubernetes.io", "*")]), &c), Some("kubernetes.io"));
        assert_eq!(first_failing(&BTreeMap::new(), &c), Some("(none)"));
    }
}
