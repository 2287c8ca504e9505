//! The CI files are code too: parse both YAML files, and check every
//! `ifstress` command line in them against the real command-line parser,
//! once for each value its matrix gives.

use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}");
    docs.remove(0)
}

/// Every string anywhere in the document.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(v) => v.iter().for_each(|x| strings(x, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// Lines that run ifstress, with their arguments.
fn ifstress_commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let words: Vec<String> = l.split_whitespace().map(String::from).collect();
            let at = words
                .iter()
                .position(|w| w == "ifstress" || w.ends_with("/ifstress"))?;
            // `cargo run -- ...` forms are not used in the CI files.
            let mut args = vec!["ifstress".to_string()];
            for w in &words[at + 1..] {
                if w == "||" || w == ">" || w == "&&" || w == "|" {
                    break;
                }
                args.push(w.clone());
            }
            Some(args)
        })
        .collect()
}

fn check(texts: &[String], subst: &[(String, String)], path: &str) {
    let cmds: Vec<Vec<String>> = texts
        .iter()
        .flat_map(|t| {
            let mut t = t.clone();
            for (k, v) in subst {
                t = t.replace(k, v);
            }
            ifstress_commands(&t)
        })
        .collect();
    assert!(!cmds.is_empty(), "{path}: no ifstress command");
    for args in cmds {
        assert!(
            !args.iter().any(|a| a.contains("${{")),
            "{path}: unresolved {args:?}"
        );
        if let Err(e) = ifstress::cli::check_args(args.clone()) {
            panic!("{path}: `{}` does not parse: {e}", args.join(" "));
        }
        // The suite named must be one that ships.
        if let Some(i) = args.iter().position(|a| a == "--suite") {
            ifstress::suite::load(&args[i + 1]).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}

#[test]
fn github_nightly_commands_parse_for_every_matrix_value() {
    let path = ".github/workflows/freebsd-nightly.yml";
    let y = load(path);
    let job = &y["jobs"]["stress"];
    let matrix = &job["strategy"]["matrix"];
    let releases = matrix["release"].as_vec().expect("release matrix");
    let suites = matrix["suite"].as_vec().expect("suite matrix");
    assert!(!releases.is_empty() && !suites.is_empty());
    let mut all = Vec::new();
    strings(&y, &mut all);
    let cmds: Vec<Vec<String>> = all.iter().flat_map(|s| ifstress_commands(s)).collect();
    assert!(
        cmds.iter()
            .any(|c| c.get(1).map(String::as_str) == Some("vm")),
        "no `ifstress vm run` in {path}"
    );
    for r in releases {
        for s in suites {
            let subst = vec![
                (
                    "${{ matrix.release }}".to_string(),
                    r.as_str().unwrap().to_string(),
                ),
                (
                    "${{ matrix.suite }}".to_string(),
                    s.as_str().unwrap().to_string(),
                ),
            ];
            check(&all, &subst, path);
        }
    }
    // Each hosted job must end inside GitHub's 6-hour limit.
    assert!(job["timeout-minutes"].as_i64().unwrap() < 360);
    let on = &y["on"];
    assert!(!on["schedule"].is_badvalue(), "nightly schedule missing");
}

#[test]
fn cirrus_commands_parse_and_both_freebsd_branches_are_covered() {
    let path = ".cirrus.yml";
    let y = load(path);
    let mut all = Vec::new();
    strings(&y, &mut all);
    let cmds: Vec<Vec<String>> = all.iter().flat_map(|s| ifstress_commands(s)).collect();
    assert!(cmds.len() >= 2, "{cmds:?}");
    check(&all, &[], path);
    let families: Vec<&str> = y["freebsd_task"]["matrix"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|t| t["freebsd_instance"]["image_family"].as_str())
        .collect();
    assert!(
        families.iter().any(|f| f.starts_with("freebsd-14")),
        "{families:?}"
    );
    assert!(
        families.iter().any(|f| f.starts_with("freebsd-15")),
        "{families:?}"
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains("2026-06-01"),
        "header must say hosted Cirrus CI closed"
    );
}

#[test]
fn a_command_with_a_typo_would_be_caught() {
    let bad = ifstress_commands("./target/release/ifstress vm run --imag x --suite vmove");
    assert!(ifstress::cli::check_args(bad[0].clone()).is_err());
    let good =
        ifstress_commands("x && ./target/release/ifstress --suite vmove --duration 1h > out");
    assert_eq!(
        good[0],
        ["ifstress", "--suite", "vmove", "--duration", "1h"]
    );
    assert!(ifstress::cli::check_args(good[0].clone()).is_ok());
}
