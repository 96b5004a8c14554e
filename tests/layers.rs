//! The layer map of `src/lib.rs`, checked on the source: a lower layer never imports a
//! higher one (store < service < app < http, console), and the modules of `service/` import
//! each other without a cycle. Reads every `.rs` file under `src/`, resolves each
//! `crate::…` and `super::…` path to the module that defines it (following `pub use`
//! re-exports), and fails naming the offending file or the cycle.
//!
//! `cargo test --test layers -- --nocapture` prints the service modules' import order.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path such as `service::oauth::exchange` ("" is the crate root).
type Module = String;

struct Tree {
    /// Module → its source text (tests stripped).
    source: BTreeMap<Module, String>,
    /// (module, name) → the module a `pub use` there re-exports `name` from.
    aliases: BTreeMap<(Module, String), Module>,
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text before the first `#[cfg(test)]` (unit tests may import anything).
fn without_tests(text: &str) -> String {
    text.split("#[cfg(test)]").next().unwrap_or("").to_string()
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else { return vec![path.trim().to_string()] };
    let (head, rest) = (&path[..open], &path[open + 1..]);
    let mut depth = 0;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                end = i;
                break;
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    let inner = &rest[..end];
    let mut items = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for c in inner.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c)
            }
            '}' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand(&format!("{head}{i}")))
        .map(|p| p.trim_end_matches("::self").to_string())
        .collect()
}

/// Every path the text names that starts at `crate::` or `super::`, made absolute.
fn paths(module: &Module, is_mod_file: bool, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start).map(|i| i + from) {
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':') {
                continue;
            }
            // The path: identifiers, `::` and a brace group.
            let mut j = i;
            let mut depth = 0;
            while j < text.len() {
                let c = bytes[j] as char;
                if c == '{' {
                    depth += 1;
                } else if c == '}' {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                } else if !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || (depth > 0 && " ,\n*".contains(c))) {
                    break;
                }
                j += 1;
            }
            let raw: String = text[i..j].split_whitespace().collect::<Vec<_>>().join(" ");
            for p in expand(&raw) {
                let abs = if let Some(rest) = p.strip_prefix("crate::") {
                    rest.to_string()
                } else {
                    // `super::` from a file module is its parent; from mod.rs, its own parent.
                    let mut base: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
                    let mut rest = p.as_str();
                    let _ = is_mod_file;
                    while let Some(r) = rest.strip_prefix("super::") {
                        base.pop();
                        rest = r;
                    }
                    let mut v: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                    v.push(rest.to_string());
                    v.join("::")
                };
                out.push(abs);
            }
        }
    }
    out
}

fn load() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut source = BTreeMap::new();
    for f in &all {
        if f.ends_with("main.rs") {
            continue; // the binary, above every layer
        }
        source.insert(module_of(&src, f), without_tests(&std::fs::read_to_string(f).unwrap()));
    }
    let mut tree = Tree { source, aliases: BTreeMap::new() };
    // `pub use a::b::{C, d}` in module m: m's C and d come from the module a::b names.
    let mut aliases = BTreeMap::new();
    for (m, text) in &tree.source {
        for line in text.lines().map(str::trim).filter(|l| l.starts_with("pub use ")) {
            let body = line.trim_start_matches("pub use ").trim_end_matches(';');
            let body = if body.starts_with("crate::") || body.starts_with("super::") {
                body.to_string()
            } else {
                format!("crate::{}{}", if m.is_empty() { String::new() } else { format!("{m}::") }, body)
            };
            for p in paths(m, false, &body) {
                let name = p.rsplit("::").next().unwrap().to_string();
                if let Some(target) = tree.defining(&p) {
                    aliases.insert((m.clone(), name), target);
                }
            }
        }
    }
    tree.aliases = aliases;
    tree
}

impl Tree {
    /// The module a path leads into: its longest prefix that is a module, through aliases.
    fn defining(&self, path: &str) -> Option<Module> {
        let parts: Vec<&str> = path.split("::").collect();
        let mut best: Option<(Module, usize)> = None;
        for n in (1..=parts.len()).rev() {
            let m = parts[..n].join("::");
            if self.source.contains_key(&m) {
                best = Some((m, n));
                break;
            }
        }
        let (m, n) = best?;
        match parts.get(n) {
            Some(next) => match self.aliases.get(&(m.clone(), next.to_string())) {
                Some(t) if *t != m => Some(t.clone()),
                _ => Some(m),
            },
            None => Some(m),
        }
    }

    /// Module → the modules it imports (re-export lines excluded: an alias is not a use).
    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut g = BTreeMap::new();
        for (m, text) in &self.source {
            let body: String =
                text.lines().filter(|l| !l.trim_start().starts_with("pub use ")).collect::<Vec<_>>().join("\n");
            let mut deps = BTreeSet::new();
            for p in paths(m, false, &body) {
                if let Some(d) = self.defining(&p) {
                    if d != *m && !d.is_empty() {
                        deps.insert(d);
                    }
                }
            }
            g.insert(m.clone(), deps);
        }
        g
    }
}

fn layer(m: &str) -> Option<(&'static str, u8)> {
    let top = m.split("::").next().unwrap_or("");
    Some(match top {
        "store" => ("store", 1),
        "service" => ("service", 2),
        "app" => ("app", 3),
        "http" | "console" => ("http/console", 4),
        _ => return None,
    })
}

#[test]
fn a_lower_layer_never_imports_a_higher_one() {
    let tree = load();
    let mut bad = Vec::new();
    for (m, deps) in tree.edges() {
        let Some((name, level)) = layer(&m) else { continue };
        for d in deps {
            if let Some((dname, dlevel)) = layer(&d) {
                if dlevel > level {
                    bad.push(format!("{m} ({name}) imports {d} ({dname})"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn service_modules_import_each_other_without_a_cycle() {
    let tree = load();
    let g: BTreeMap<Module, BTreeSet<Module>> = tree
        .edges()
        .into_iter()
        .filter(|(m, _)| m.starts_with("service"))
        .map(|(m, d)| (m, d.into_iter().filter(|d| d.starts_with("service")).collect()))
        .collect();
    assert!(g.len() > 20, "the service modules were found: {:?}", g.keys());
    // Tarjan's strongly connected components: any component of more than one module is a cycle.
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        cycles: Vec<Vec<&'a str>>,
        order: Vec<&'a str>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on.remove(w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    self.cycles.push(comp);
                } else {
                    self.order.push(v);
                }
            }
        }
    }
    let mut t = T {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        cycles: Vec::new(),
        order: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let cycles: Vec<String> = t
        .cycles
        .iter()
        .map(|c| {
            let set: BTreeSet<&str> = c.iter().copied().collect();
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| g[*m].iter().filter(|d| set.contains(d.as_str())).map(move |d| format!("{m} → {d}")))
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles among service modules:\n{}", cycles.join("\n"));
    println!("service modules, each after everything it imports ({}):", t.order.len());
    for m in &t.order {
        println!("  {m}");
    }
}
