//! ifstress(8) in step with the command line: every subcommand, every long
//! flag and every value of a value list the program accepts is on the page,
//! and the page documents no command or flag the program lacks. The page is
//! read as mdoc source: commands are the `.It Cm ...` items of the COMMANDS
//! list, flags the arguments of `Fl` macros.

use clap::CommandFactory;
use std::collections::BTreeSet;

const PAGE: &str = include_str!("../man/ifstress.8");

/// Sections a FreeBSD tool's page carries, plus what ifstress touches.
const SECTIONS: &[&str] = &[
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "COMMANDS",
    "SAFETY",
    "FILES",
    "EXIT STATUS",
    "EXAMPLES",
    "SEE ALSO",
];

/// What the program accepts, from clap's own tree (hidden items excluded:
/// the FreeBSD agent entry point and the runner's test hook).
struct Cli {
    commands: BTreeSet<String>,
    flags: BTreeSet<String>,
    hidden_flags: BTreeSet<String>,
    values: BTreeSet<String>,
}

fn walk(cmd: &clap::Command, path: &str, cli: &mut Cli) {
    for a in cmd.get_arguments() {
        let mut names: Vec<String> = a.get_long().map(|l| format!("--{l}")).into_iter().collect();
        names.extend(a.get_short().map(|s| format!("-{s}")));
        if a.is_hide_set() {
            cli.hidden_flags.extend(names);
            continue;
        }
        cli.flags.extend(names);
        for v in a.get_possible_values() {
            if !v.is_hide_set() {
                cli.values.insert(v.get_name().to_string());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        // clap's own `help` subcommand is not ifstress's to document.
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let p = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        // A group such as `vm` is documented through its leaves.
        if sub.get_subcommands().all(|s| s.get_name() == "help") {
            cli.commands.insert(p.clone());
        }
        walk(sub, &p, cli);
    }
}

fn cli() -> Cli {
    let mut cmd = ifstress::cli::Cli::command();
    cmd.build();
    let mut cli = Cli {
        commands: BTreeSet::new(),
        flags: BTreeSet::new(),
        hidden_flags: BTreeSet::new(),
        values: BTreeSet::new(),
    };
    walk(&cmd, "", &mut cli);
    cli
}

/// Is this mdoc token a macro name (which ends the previous macro's
/// arguments)? Macros are capitalised two- or three-letter words.
fn is_macro(t: &str) -> bool {
    let b = t.as_bytes();
    (2..=3).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..].iter().all(|c| c.is_ascii_lowercase())
}

/// What the page documents.
struct Page {
    sections: Vec<String>,
    commands: BTreeSet<String>,
    flags: BTreeSet<String>,
    words: BTreeSet<String>,
    exit_items: BTreeSet<String>,
}

fn read(page: &str) -> Page {
    let mut p = Page {
        sections: vec![],
        commands: BTreeSet::new(),
        flags: BTreeSet::new(),
        words: BTreeSet::new(),
        exit_items: BTreeSet::new(),
    };
    let mut section = String::new();
    let mut depth = 0usize;
    for line in page.lines() {
        if line.starts_with(".\\\"") {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        for t in &toks {
            let w = t.trim_matches(|c: char| ",.;:()".contains(c));
            p.words.insert(w.replace("\\&", "").replace("\\e", ""));
        }
        if !line.starts_with('.') {
            continue;
        }
        match toks.first().copied() {
            Some(".Sh") => {
                section = toks[1..].join(" ");
                p.sections.push(section.clone());
                depth = 0;
            }
            Some(".Bl") => depth += 1,
            Some(".El") => depth = depth.saturating_sub(1),
            Some(".It") if section == "COMMANDS" && depth == 1 && toks.get(1) == Some(&"Cm") => {
                let words: Vec<&str> = toks[2..]
                    .iter()
                    .copied()
                    .take_while(|t| !is_macro(t))
                    .collect();
                p.commands.insert(words.join(" "));
            }
            Some(".It") if section == "EXIT STATUS" && depth == 1 => {
                p.exit_items.insert(toks[1..].join(" "));
            }
            _ => {}
        }
        // `Fl -suite` is --suite, `Fl h` is -h; `Fl` takes every following
        // word up to the next macro.
        let mut in_fl = false;
        for t in &toks {
            if *t == "Fl" {
                in_fl = true;
                continue;
            }
            if !in_fl {
                continue;
            }
            if is_macro(t) || *t == "|" {
                in_fl = false;
                continue;
            }
            let f = t.trim_end_matches([',', ';', ':', ')', '.']);
            if let Some(long) = f.strip_prefix('-') {
                if !long.is_empty() {
                    p.flags.insert(format!("--{long}"));
                }
            } else if f.len() == 1 {
                p.flags.insert(format!("-{f}"));
            }
        }
    }
    p
}

/// Every way the page and the program disagree, one line each.
fn problems(page: &str) -> Vec<String> {
    let cli = cli();
    let p = read(page);
    let mut out = Vec::new();
    for s in SECTIONS {
        if !p.sections.iter().any(|x| x == s) {
            out.push(format!("section {s} missing"));
        }
    }
    for c in cli.commands.difference(&p.commands) {
        out.push(format!(
            "command `ifstress {c}` is not documented (a `.It Cm {c}` item under COMMANDS)"
        ));
    }
    for c in p.commands.difference(&cli.commands) {
        out.push(format!(
            "the page documents `ifstress {c}`, which the program lacks"
        ));
    }
    for f in cli.flags.difference(&p.flags) {
        out.push(format!("flag {f} is not documented (no `Fl {}`)", &f[1..]));
    }
    for f in p.flags.difference(&cli.flags) {
        if !cli.hidden_flags.contains(f) {
            out.push(format!(
                "the page documents flag {f}, which the program lacks"
            ));
        }
    }
    for v in &cli.values {
        if !p.words.contains(v) {
            out.push(format!("value `{v}` of a value list is not on the page"));
        }
    }
    use ifstress::cli::exit;
    for code in [exit::CLEAN, exit::FINDINGS, exit::USAGE, exit::INTERNAL] {
        if !p.exit_items.contains(&code.to_string()) {
            out.push(format!(
                "exit status {code} is not an item under EXIT STATUS"
            ));
        }
    }
    out
}

#[test]
fn the_page_documents_exactly_the_cli() {
    let ps = problems(PAGE);
    assert!(
        ps.is_empty(),
        "man/ifstress.8 is out of step with src/cli.rs:\n{}",
        ps.join("\n")
    );
}

#[test]
fn the_walk_sees_the_whole_tree() {
    let c = cli();
    for cmd in ["run", "doctor", "vm run", "vm build-kernel", "completions"] {
        assert!(c.commands.contains(cmd), "{cmd}: {:?}", c.commands);
    }
    // Groups and hidden entry points are not commands to document.
    assert!(!c.commands.contains("vm") && !c.commands.contains("__agent"));
    for f in [
        "--suite",
        "--journal-max-mib",
        "--before-param",
        "--help",
        "-V",
    ] {
        assert!(c.flags.contains(f), "{f}");
    }
    assert!(c.hidden_flags.contains("--inject") && !c.flags.contains("--inject"));
    for v in ["panic", "bhyve", "create-destroy", "bash", "zsh"] {
        assert!(c.values.contains(v), "{v}");
    }
}

#[test]
fn the_check_finds_a_missing_flag_a_missing_command_and_a_flag_too_many() {
    // The page with --journal-max-mib's item, the `list` item and an extra
    // flag: each must be named.
    let cut = PAGE
        .replace(".It Fl -journal-max-mib Ar mib\n", ".It Ar mib\n")
        .replace(".It Cm list\n", ".It list\n")
        .replace(".It Fl -quiet\n", ".It Fl -quiet\n.It Fl -no-such-flag\n");
    assert_ne!(cut, PAGE);
    let ps = problems(&cut).join("\n");
    assert!(
        ps.contains("flag --journal-max-mib is not documented"),
        "{ps}"
    );
    assert!(
        ps.contains("command `ifstress list` is not documented"),
        "{ps}"
    );
    assert!(ps.contains("documents flag --no-such-flag"), "{ps}");
}

#[test]
fn the_check_reads_the_forms_the_page_uses() {
    let p = read(
        ".Sh COMMANDS\n.Bl -tag\n.It Cm vm run Fl -image Ar file\n.Bl -tag\n.It Cm nested\n.El\n\
         .It Fl h , Fl -help\n.It Fl -on-hang Ns = Ns Cm panic\n.El\n.Sh EXIT STATUS\n.Bl -tag\n.It 2\n.El\n",
    );
    assert_eq!(p.commands, BTreeSet::from(["vm run".to_string()]));
    for f in ["--image", "-h", "--help", "--on-hang"] {
        assert!(p.flags.contains(f), "{f}: {:?}", p.flags);
    }
    assert!(!p.flags.contains("--Ns"));
    assert_eq!(p.exit_items, BTreeSet::from(["2".to_string()]));
}

#[test]
fn mandoc_lint_is_clean() {
    let o = match std::process::Command::new("mandoc")
        .args(["-Tlint", "-W", "warning", "man/ifstress.8"])
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            ifstress::testutil::skip("mandoc is not installed (apt-get install mandoc)");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && text.trim().is_empty(),
        "mandoc -Tlint:\n{text}"
    );
}

#[test]
fn the_readme_installs_this_page_and_completions_the_cli_makes() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("\n## Install\n")
        .expect("README has an Install section");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 1 + e);
    let section = &readme[start..end];
    assert!(
        section.contains("install -m 444 man/ifstress.8 /usr/local/share/man/man8/"),
        "{section}"
    );
    let mut shells = 0;
    for line in section.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ifstress completions ") {
            let shell = rest.split_whitespace().next().unwrap();
            ifstress::cli::check_args(["ifstress", "completions", shell].map(String::from))
                .unwrap_or_else(|e| panic!("README: `{line}`: {e}"));
            shells += 1;
        }
    }
    assert!(shells >= 3, "{section}");
}
