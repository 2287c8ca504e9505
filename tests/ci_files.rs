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
            // Shell quoting is the shell's: the words are what ifstress gets.
            ifstress_commands(&t.replace('"', ""))
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
            // Steps get the matrix through env: (never ${{ }} inside a
            // script) and the guest's size from vm/runner-size.sh.
            let (r, s) = (r.as_str().unwrap(), s.as_str().unwrap());
            let subst: Vec<(String, String)> = [
                ("$RELEASE", r),
                ("$SUITE", s),
                ("$GUEST_CPUS", "4"),
                ("$GUEST_MEM", "12000"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            check(&all, &subst, path);
        }
    }
    // Each hosted job must end inside GitHub's 6-hour limit.
    assert!(job["timeout-minutes"].as_i64().unwrap() < 360);
    let on = &y["on"];
    assert!(!on["schedule"].is_badvalue(), "nightly schedule missing");
    workflow_hygiene(path, &y);
}

/// What every workflow keeps to: no `${{ }}` expanded inside a script (an
/// input, or anything a user controls, would be shell code there: values
/// reach scripts through `env:`); pip only inside a virtual environment
/// (ubuntu-24.04's python is externally managed, PEP 668); guests sized from
/// the runner (vm/runner-size.sh), never a fixed --cpus/--mem.
fn workflow_hygiene(path: &str, y: &Yaml) {
    for (job, script) in run_scripts(y) {
        assert!(
            !script.contains("${{"),
            "{path}: job {job}: ${{{{ }}}} inside a run: script:\n{script}"
        );
        for l in script.lines() {
            let l = l.trim();
            assert!(
                !(l.starts_with("pip ") || l.starts_with("pip3 ") || l.contains("python3 -m pip")),
                "{path}: job {job}: pip outside a venv: {l}"
            );
            if l.contains("ifstress vm ") {
                assert!(
                    l.contains("--cpus \"$GUEST_CPUS\" --mem \"$GUEST_MEM\""),
                    "{path}: job {job}: a guest not sized from the runner: {l}"
                );
            }
        }
        if script.contains("venv/bin/pip") {
            assert!(script.contains("python3 -m venv"), "{path}: job {job}");
        }
        if script.contains("GUEST_CPUS") && !script.contains("runner-size") {
            let sized = y["jobs"][job.as_str()]["steps"]
                .as_vec()
                .unwrap()
                .iter()
                .any(|st| {
                    st["run"]
                        .as_str()
                        .is_some_and(|r| r.contains("vm/runner-size.sh"))
                });
            assert!(
                sized,
                "{path}: job {job} uses GUEST_CPUS without vm/runner-size.sh"
            );
        }
    }
}

/// GitHub's runners are Linux: the script reads /proc/meminfo.
#[cfg(target_os = "linux")]
#[test]
fn runner_size_gives_the_guest_this_machines_cpus_and_most_of_its_memory() {
    let o = std::process::Command::new("sh")
        .arg("vm/runner-size.sh")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let get = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
            .parse()
            .unwrap()
    };
    let cpus = get("GUEST_CPUS=");
    let mem = get("GUEST_MEM=");
    assert_eq!(
        cpus,
        std::thread::available_parallelism().unwrap().get() as u64
    );
    let total_mib = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap() / 1024)
        .unwrap();
    assert!(
        mem >= 1024 && mem <= total_mib * 3 / 4 && mem + 1 >= total_mib * 3 / 4,
        "{mem} of {total_mib}"
    );
    // Both values parse as the vm commands' own flags.
    for cmd in [
        format!(
            "ifstress vm run --image x.qcow2 --suite vmove --duration 1h --cpus {cpus} --mem {mem}"
        ),
        format!(
            "ifstress vm build-kernel --image x.qcow2 --src s --out-image o.qcow2 --cpus {cpus} --mem {mem}"
        ),
    ] {
        let args: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        ifstress::cli::check_args(args).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
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
    // A FreeBSD instance runs the tiers it has, by name: no QEMU guests, no
    // shared fixtures beside the checkout.
    let tiers = y["freebsd_task"]["env"]["IFSTRESS_TIERS"].as_str().unwrap();
    assert_eq!(
        ifstress::testutil::parse_tiers(Some(tiers)).unwrap(),
        [
            ifstress::testutil::Tier::Static,
            ifstress::testutil::Tier::Host
        ]
    );
}

/// Linux CI names every tier, so its `cargo test` runs what it always ran.
#[test]
fn linux_ci_runs_every_tier() {
    let text = std::fs::read_to_string(".ci/run").unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("cargo test"))
        .expect(".ci/run runs cargo test");
    let tiers = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("IFSTRESS_TIERS="))
        .expect("the tiers are named");
    assert_eq!(
        ifstress::testutil::parse_tiers(Some(tiers)).unwrap(),
        ifstress::testutil::Tier::ALL
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

/// Replace every `${{ ... }}` expression with the value `pick` gives it.
fn resolve(text: &str, pick: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("}}").expect("unclosed ${{") + i;
        out.push_str(&pick(rest[i + 3..j].trim()));
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Every step's `run:` script of every job.
fn run_scripts(y: &Yaml) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (name, job) in y["jobs"].as_hash().unwrap() {
        for step in job["steps"].as_vec().unwrap() {
            if let Some(r) = step["run"].as_str() {
                v.push((name.as_str().unwrap().to_string(), r.to_string()));
            }
        }
    }
    v
}

#[test]
fn patch_verdict_workflow_commands_parse_and_its_scripts_are_shell() {
    let path = ".github/workflows/patch-verdict.yml";
    let y = load(path);
    let inputs = &y["on"]["workflow_dispatch"]["inputs"];
    for k in [
        "base", "patch", "module", "revision", "debug", "suite", "hours", "jobs",
    ] {
        assert!(!inputs[k].is_badvalue(), "input {k} missing");
    }
    // Before and after jobs, a verdict job that runs whatever they ended in.
    let stress = &y["jobs"]["stress"];
    let sides = stress["strategy"]["matrix"]["side"].as_vec().unwrap();
    assert_eq!(sides.len(), 2);
    assert!(stress["timeout-minutes"].as_i64().unwrap() < 360);
    let vif = y["jobs"]["verdict"]["if"].as_str().unwrap();
    assert!(vif.starts_with("${{ always()"), "{vif}");
    // A failed kernels job skips every stress job: the verdict job still
    // runs and its first step says why in the step summary.
    let needs: Vec<&str> = y["jobs"]["verdict"]["needs"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        needs.contains(&"kernels") && needs.contains(&"stress"),
        "{needs:?}"
    );
    let first = &y["jobs"]["verdict"]["steps"][0];
    let why = first["run"].as_str().unwrap();
    assert!(
        first["if"]
            .as_str()
            .unwrap()
            .contains("needs.stress.result == 'skipped'")
            && why.contains("the kernels job failed")
            && why.contains("GITHUB_STEP_SUMMARY")
            && why.contains("exit 1"),
        "{why}"
    );
    workflow_hygiene(path, &y);
    let suite = inputs["suite"]["default"].as_str().unwrap().to_string();
    let base = inputs["base"]["default"].as_str().unwrap().to_string();
    let mut checked = 0;
    for side in ["before", "after"] {
        for debug in [true, false] {
            for with_module in [true, false] {
                let pick = |e: &str| -> String { format!("X{}", e.len()) };
                // The values steps get through env: and $GITHUB_ENV.
                let env = |t: &str| {
                    t.replace("$debug_arg", if debug { "--debug" } else { "" })
                        .replace("$BASE", &base)
                        .replace("$SIDE", side)
                        .replace("$SUITE", &suite)
                        .replace("${HOURS}", "5")
                        .replace("${JOB}", "3")
                        .replace("$REVISION", "0123abcd")
                        .replace("$GUEST_CPUS", "4")
                        .replace("$GUEST_MEM", "12000")
                        .replace(
                            "$PATCH_ARGS",
                            if side == "after" {
                                "--patch change.patch"
                            } else {
                                ""
                            },
                        )
                        .replace("$IMAGE", "kernel-after.qcow2")
                        .replace(
                            "$MODULE_ARGS",
                            if with_module && side == "after" {
                                "--module after.ko"
                            } else {
                                ""
                            },
                        )
                };
                let mut texts = Vec::new();
                for (job, script) in run_scripts(&y) {
                    // Linted as written, parsed with the values filled in.
                    let t = resolve(&script, &pick);
                    // Every script is shell that parses.
                    let st = std::process::Command::new("bash")
                        .args(["-n", "-c", &t])
                        .status()
                        .unwrap();
                    assert!(st.success(), "{path}: job {job}: bash -n failed:\n{t}");
                    if let Ok(o) = std::process::Command::new("shellcheck")
                        .args(["-s", "bash", "-S", "warning", "-"])
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .and_then(|mut c| {
                            use std::io::Write;
                            c.stdin.take().unwrap().write_all(t.as_bytes())?;
                            c.wait_with_output()
                        })
                    {
                        assert!(
                            o.status.success(),
                            "{path}: job {job}: shellcheck:\n{}",
                            String::from_utf8_lossy(&o.stdout)
                        );
                    }
                    texts.push(env(&t));
                }
                check(&texts, &[], path);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8);
    let all: String = run_scripts(&y).into_iter().map(|(_, s)| s).collect();
    for want in [
        "vm build-kernel",
        "vm run",
        "verdict --before",
        "GITHUB_STEP_SUMMARY",
    ] {
        assert!(all.contains(want), "{path}: no `{want}`");
    }
}

#[test]
fn the_repository_scripts_parse_and_shellcheck_is_clean_where_it_is_installed() {
    let scripts = [
        "vm/fetch-image.sh",
        "vm/kernel-source.sh",
        "vm/prepare-host.sh",
        "vm/example-linux-guest.sh",
        "vm/runner-size.sh",
    ];
    for s in scripts {
        let st = std::process::Command::new("sh")
            .args(["-n", s])
            .status()
            .unwrap();
        assert!(st.success(), "{s}: sh -n failed");
    }
    match std::process::Command::new("shellcheck")
        .args(["-S", "warning"])
        .args(scripts)
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("shellcheck is not installed (CI installs it)")
        }
        Err(_) => eprintln!("shellcheck not installed: sh -n only"),
    }
}

#[test]
fn kernel_source_names_the_ref_each_kind_of_image_was_built_from() {
    // Run the script up to its fetch with git replaced by a stub that
    // prints what it was asked to fetch.
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = bin.join("git");
    std::fs::write(
        &git,
        "#!/bin/sh\ncase \"$*\" in *fetch*) echo \"FETCH $*\" >> \"$LOG\" ;; *rev-parse*) echo abc ;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = std::fs::canonicalize("vm/kernel-source.sh").unwrap();
    for (rel, rev, want) in [
        ("14.3-RELEASE", "", "release/14.3.0"),
        ("15.0-RELEASE", "", "release/15.0.0"),
        ("16.0-CURRENT", "", "main"),
        ("15.0-STABLE", "", "stable/15"),
        ("15.1-BETA2", "", "releng/15.1"),
        ("15.0-RELEASE", "0123abcd", "0123abcd"),
    ] {
        let log = d.path().join("log");
        let _ = std::fs::remove_file(&log);
        let o = std::process::Command::new("sh")
            .arg(&script)
            .args([rel, d.path().join("src").to_str().unwrap(), rev])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("LOG", &log)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{rel}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let l = std::fs::read_to_string(&log).unwrap();
        assert!(l.trim_end().ends_with(&format!(" {want}")), "{rel}: {l}");
    }
    let o = std::process::Command::new("sh")
        .arg(&script)
        .args(["--ref", "16.0-CURRENT"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "main\n");
    let o = std::process::Command::new("sh")
        .arg(&script)
        .args(["15.0-WHATEVER", d.path().join("s2").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
