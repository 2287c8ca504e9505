//! The import graph has no cycle, so the tree reads bottom up and the
//! layers in ARCHITECTURE.md stay true. Every `crate::`, `super::` and
//! `self::` path in non-test code (and every `child::` path to a declared
//! child module) is resolved to the module file it names; an edge joins the
//! two files; a depth-first search looks for a back edge. Test modules
//! (`#[cfg(test)] mod tests`) are left out: they import their parent by
//! nature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path ("vm::machine") -> source text without its test module.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix("src").unwrap().with_extension("");
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
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            out.insert(parts.join("::"), code);
        }
    }
    let mut m = BTreeMap::new();
    walk(Path::new("src"), &mut m);
    m
}

/// The longest module prefix of a path.
fn resolve(mods: &BTreeMap<String, String>, segs: &[&str]) -> Option<String> {
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in mods {
        let here: Vec<&str> = m.split("::").collect();
        let mut add = |segs: Vec<&str>| {
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
                if start > 0
                    && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_')
                {
                    continue;
                }
                // crate::a::{b, c}: the path up to the brace or the name.
                let rest: String = code[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let tail: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
                let mut segs: Vec<&str> = match head {
                    "crate::" => vec![],
                    "super::" => here[..here.len().saturating_sub(1)].to_vec(),
                    _ => here.clone(),
                };
                segs.extend(tail);
                add(segs);
            }
        }
        // A parent's uses of its own children (`console::Console`).
        for line in code.lines() {
            let l = line.trim_start();
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            if let Some(child) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                if code.contains(&format!("{child}::")) {
                    let mut segs = here.clone();
                    segs.push(child);
                    add(segs);
                }
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
    for (m, code) in modules() {
        if m != "cli" {
            assert!(!code.contains("crate::cli"), "{m} imports cli");
        }
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
}
