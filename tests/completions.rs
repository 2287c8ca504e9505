//! `ifstress completions SHELL`: scripts that name the real commands and
//! flags, and a shell clap_complete does not know is a usage error.

mod common;
use common::*;

#[test]
fn bash_completion_names_every_command_and_their_flags() {
    let o = run(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("complete -F _ifstress"), "{s}");
    for c in [
        "run",
        "list",
        "show",
        "cleanup",
        "doctor",
        "triage",
        "postmortem",
        "bench",
        "vm",
        "build-kernel",
        "verdict",
        "repro",
        "completions",
    ] {
        assert!(
            s.split(|ch: char| !(ch.is_alphanumeric() || ch == '-'))
                .any(|w| w == c),
            "bash completion lacks `{c}`"
        );
    }
    for f in [
        "--suite",
        "--journal-max-mib",
        "--hypervisor",
        "--after-param",
    ] {
        assert!(s.contains(f), "bash completion lacks {f}");
    }
    // The FreeBSD agent's entry point is internal.
    assert!(!s.contains("__agent"), "hidden command completed");
}

#[test]
fn zsh_and_fish_scripts_are_produced() {
    let z = run(&["completions", "zsh"]);
    assert_eq!(z.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&z.stdout).starts_with("#compdef ifstress"));
    let f = run(&["completions", "fish"]);
    assert_eq!(f.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&f.stdout).contains("complete -c ifstress"));
}

#[test]
fn an_unknown_shell_is_one_line_and_exit_2() {
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("tcsh"), "{e}");
}

/// What bash offers for the words typed so far, from the script itself.
fn bash_offers(script: &std::path::Path, words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cur = words.last().unwrap();
    let prev = words[words.len() - 2];
    let sh = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _ifstress ifstress '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let o = std::process::Command::new("bash")
        .args(["--norc", "-c", &sh])
        .output()
        .expect("bash runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn bash_completes_commands_flags_and_values() {
    if std::process::Command::new("bash")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("bash is not installed");
        return;
    }
    let o = run(&["completions", "bash"]);
    let d = tmp();
    let script = d.path().join("ifstress.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    assert_eq!(bash_offers(&script, &["ifstress", "v"]), "vm verdict");
    assert_eq!(
        bash_offers(&script, &["ifstress", "vm", "b"]),
        "build-kernel"
    );
    assert_eq!(
        bash_offers(&script, &["ifstress", "vm", "run", "--hyp"]),
        "--hypervisor"
    );
    assert_eq!(
        bash_offers(&script, &["ifstress", "vm", "run", "--hypervisor", ""]),
        "auto qemu bhyve"
    );
    assert_eq!(
        bash_offers(&script, &["ifstress", "completions", "f"]),
        "fish"
    );
}
