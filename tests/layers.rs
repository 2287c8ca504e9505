//! The import graph has no cycle, so the tree reads bottom up and the
//! layers in ARCHITECTURE.md stay true. Every `crate::`, `super::` and
//! `self::` path in non-test code (and every `child::` path to a declared
//! child module) is resolved to the module file it names; an edge joins the
//! two files; a depth-first search looks for a back edge. Test modules
//! (`#[cfg(test)] mod tests`) are left out: they import their parent by
//! nature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `code` without its `#[cfg(test)] mod tests { ... }` block, wherever
/// in the file it is.
fn without_tests(code: &str) -> String {
    let Some(i) = code.find("#[cfg(test)]\nmod tests {") else {
        return code.to_string();
    };
    let open = i + code[i..].find('{').expect("the block's brace");
    let mut depth = 0;
    for (k, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return format!("{}{}", &code[..i], &code[open + k + 1..]);
                }
            }
            _ => {}
        }
    }
    code[..i].to_string()
}

/// Module path ("vm::machine") -> source text without its test module.
fn modules() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|l| l == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.insert(parts.join("::"), without_tests(&text));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut m = BTreeMap::new();
    walk(&root, &root, &mut m);
    m
}

/// The longest module prefix of a path.
fn resolve(mods: &BTreeMap<String, String>, segs: &[String]) -> Option<String> {
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

/// The use tree starting at `s` (`a::b::{c, d::{e, self}}`), as text.
fn tree(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            ',' | ' ' | '\n' | '\t' if depth > 0 => {}
            c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => {}
            _ if depth == 0 => return &s[..i],
            _ => {}
        }
    }
    s
}

/// Every path a use tree names, with `prefix` in front.
fn expand(prefix: &[String], text: &str, out: &mut Vec<Vec<String>>) {
    let text = text.trim();
    match text.find('{') {
        None => {
            let mut p = prefix.to_vec();
            p.extend(
                text.split("::")
                    .map(str::trim)
                    .filter(|x| !x.is_empty() && *x != "self")
                    .map(String::from),
            );
            out.push(p);
        }
        Some(i) => {
            let mut p = prefix.to_vec();
            p.extend(
                text[..i]
                    .split("::")
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from),
            );
            let inner = &text[i + 1..text.rfind('}').unwrap_or(text.len())];
            let (mut depth, mut start) = (0, 0);
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&p, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&p, &inner[start..], out);
        }
    }
}

fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in mods {
        let here: Vec<String> = m.split("::").map(String::from).collect();
        let mut add = |segs: Vec<String>| {
            if let Some(t) = resolve(mods, &segs)
                && t != *m
            {
                g.entry(m.clone()).or_default().insert(t);
            }
        };
        let bytes = code.as_bytes();
        for head in ["crate::", "super::", "self::"] {
            let mut at = 0;
            while let Some(i) = code[at..].find(head) {
                let start = at + i;
                at = start + head.len();
                let before = start.checked_sub(1).map(|k| bytes[k]);
                if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                    continue;
                }
                let mut base: Vec<String> = match head {
                    "crate::" => vec![],
                    "super::" => here[..here.len() - 1].to_vec(),
                    _ => here.clone(),
                };
                // super::super::x climbs once more per `super::`.
                let mut rest = &code[at..];
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                let mut paths = Vec::new();
                expand(&base, tree(rest), &mut paths);
                for p in paths {
                    add(p);
                }
            }
        }
        // A parent's uses of its own children (`console::Console`).
        for line in code.lines() {
            let l = line.trim_start();
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            if let Some(child) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';'))
                && code.contains(&format!("{child}::"))
            {
                let mut segs = here.clone();
                segs.push(child.to_string());
                add(segs);
            }
        }
    }
    g
}

/// A cycle, if the graph has one, as the modules along it.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn dfs(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in g.get(v).into_iter().flatten() {
            match state.get(w.as_str()).copied().unwrap_or(0) {
                1 => {
                    let i = path.iter().position(|p| p == w).unwrap();
                    let mut c = path[i..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = dfs(w, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in g.keys() {
        if state.get(v.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = dfs(v, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_module_imports_in_a_circle() {
    let mods = modules();
    assert!(
        mods.len() > 50,
        "{} modules: run from the crate root",
        mods.len()
    );
    let g = edges(&mods);
    if let Some(c) = cycle(&g) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn nothing_below_the_command_line_imports_it() {
    let g = edges(&modules());
    for (m, to) in &g {
        assert!(m == "cli" || !to.contains("cli"), "{m} imports cli");
    }
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut mods = BTreeMap::new();
    mods.insert("a".to_string(), "use crate::b::X;".to_string());
    mods.insert("b".to_string(), "mod c;\nuse c::Y;".to_string());
    mods.insert("b::c".to_string(), "use super::Z;".to_string());
    let g = edges(&mods);
    assert_eq!(cycle(&g).unwrap(), ["b", "b::c", "b"]);
    mods.insert("b::c".to_string(), "use crate::a::W;".to_string());
    let g = edges(&mods);
    assert!(cycle(&g).is_some());
    mods.insert("b::c".to_string(), "fn f() {}".to_string());
    assert!(cycle(&edges(&mods)).is_none());
    // Grouped imports and super::super reach what they name.
    mods.insert(
        "d".to_string(),
        "use crate::{x::Y, b::{self, c::Z}};".to_string(),
    );
    mods.insert(
        "b::c::e".to_string(),
        "super::super::super::d::f();".to_string(),
    );
    let g = edges(&mods);
    assert!(g["d"].contains("b") && g["d"].contains("b::c"), "{g:?}");
    assert!(g["b::c::e"].contains("d"), "{g:?}");
    // A test module, wherever it is, is not the code.
    assert_eq!(
        without_tests("a\n#[cfg(test)]\nmod tests {\n fn t() { x(); }\n}\nb"),
        "a\n\nb"
    );
}
