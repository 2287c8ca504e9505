use super::*;

const GOOD: &str = r#"
name = "x"
description = "d"
[topology]
stacks = 1
links = [ { kind = "pair", count = 2 } ]

[[loop]]
name = "a"
workers = 2
ops = { move = 1, move-back = 1 }
"#;

fn err(text: &str) -> String {
    parse(text, "my.toml").unwrap_err().to_string()
}

#[test]
fn every_shipped_suite_parses_validates_and_round_trips() {
    assert_eq!(EMBEDDED.len(), 9);
    for (name, _) in EMBEDDED {
        let s = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&s.name, name);
        assert!(!s.targets.is_empty(), "{name} names no bug it targets");
        let again = parse(&s.to_toml(), "shown").unwrap();
        assert_eq!(s, again, "{name}: show output does not load back");
    }
}

#[test]
fn shipped_suites_declare_a_race_class_comment() {
    for (name, text) in EMBEDDED {
        assert!(text.starts_with("# "), "{name}: no leading comment");
        assert!(
            text.contains("design.md"),
            "{name}: comment names no race class"
        );
    }
}

#[test]
fn defaults_fill_in() {
    let s = parse(GOOD, "g.toml").unwrap();
    assert_eq!(s.duration(), Duration::from_secs(60));
    assert!(s.checks.kernel_log && s.checks.leftovers);
    assert_eq!(s.hang_after(), Duration::from_secs(120));
}

#[test]
fn syntax_error_names_file_and_line() {
    let e = err("name = \"x\"\ndescription = \n");
    assert!(e.starts_with("my.toml:2: (syntax):"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn unknown_op_names_field_and_line() {
    let e = err(&GOOD.replace("move-back = 1", "teleport = 1"));
    assert!(e.starts_with("my.toml:11: loop[0].ops"), "{e}");
    assert!(e.contains("teleport"), "{e}");
}

#[test]
fn unknown_key_and_bad_kind_are_rejected() {
    let e = err(&GOOD.replace("stacks = 1", "stacks = 1\nspeed = 3"));
    assert!(e.contains("speed"), "{e}");
    let e = err(&GOOD.replace("\"pair\"", "\"wormhole\""));
    assert!(e.starts_with("my.toml:6: topology.links[0].kind"), "{e}");
}

#[test]
fn semantic_errors_point_at_the_loop() {
    let e = err(&GOOD.replace("workers = 2", "workers = 0"));
    assert_eq!(e, "my.toml:10: loop[0].workers: 0 is outside 1..=256");
    let e = err(&GOOD.replace("move = 1", "stack-create = 1"));
    assert!(
        e.starts_with("my.toml:11: loop[0].ops: stack-create has nothing to act on"),
        "{e}"
    );
    let e = err(&GOOD.replace("stacks = 1", "stacks = 0"));
    assert!(e.contains("move has nothing to act on"), "{e}");
    let e = err(&GOOD.replace("\"pair\"", "\"vlan\""));
    assert!(e.contains("sit on a pair end"), "{e}");
    let e = err(&GOOD.replace(
        "description = \"d\"",
        "description = \"d\"\nduration = \"banana\"",
    ));
    assert!(
        e.starts_with("my.toml:4: duration: invalid duration `banana`"),
        "{e}"
    );
}

#[test]
fn unknown_suite_and_missing_file() {
    assert!(matches!(load("nope"), Err(SuiteError::Unknown(_))));
    let e = load("/nonexistent/x.toml").unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/x.toml: cannot read"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_duration("banana").is_err());
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("30").is_err());
}

#[test]
fn dropping_a_missing_optional_kind_drops_ops_left_without_target() {
    let s = load("ioctl").unwrap();
    let (t, notes) = s.without_kinds(&[LinkKind::Lagg, LinkKind::Bridge]);
    assert!(!t.has_kind(LinkKind::Lagg));
    assert!(!t.loops[0].ops.contains_key(&OpKind::MemberAdd));
    assert!(notes.iter().any(|n| n.contains("member-add")), "{notes:?}");
}

#[test]
fn weights_that_would_overflow_the_draw_are_refused() {
    let t = GOOD.replace(
        "ops = { move = 1, move-back = 1 }",
        "ops = { move = 2147483648, move-back = 2147483648 }",
    );
    let e = err(&t);
    assert!(e.contains("more than 1000000"), "{e}");
    let t = GOOD.replace(
        "ops = { move = 1, move-back = 1 }",
        "ops = { move = 1000000, move-back = 1000000 }",
    );
    assert!(parse(&t, "my.toml").is_ok(), "the bound itself is allowed");
    // In cycle order the weights are expanded per worker: bounded harder.
    let t = GOOD.replace(
        "ops = { move = 1, move-back = 1 }",
        "order = \"cycle\"\nops = { move = 1000000, move-back = 1000000 }",
    );
    let e = err(&t);
    assert!(e.contains("more than 4096"), "{e}");
}

#[test]
fn suite_files_are_read_with_a_bound() {
    // A character device: refused at once, not read until memory runs out.
    let e = load("/dev/zero").unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    // A FIFO with no writer: refused, not waited on.
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("s.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let e = load(fifo.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    // A huge sparse file: refused by its size, nothing read.
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let e = load(big.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("larger than a suite can be"), "{e}");
}

#[test]
fn a_missing_suite_file_names_the_os_error_once() {
    let e = load("/nonexistent/suite.toml").unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
}

#[test]
fn a_loop_limited_to_kinds_acts_only_on_them() {
    let s = load("vmove").unwrap();
    let layout = crate::world::Layout::new(&s, &crate::model::Tag::new(7));
    let limited: Vec<_> = s.loops.iter().filter(|l| !l.kinds.is_empty()).collect();
    assert!(!limited.is_empty(), "vmove has its eiface loops");
    for lp in limited {
        let ops: Vec<crate::plan::Op> =
            crate::plan::Planner::new(&layout, lp, 5, 0, crate::plan::Share { index: 0, of: 1 })
                .take(2000)
                .collect();
        for k in lp.ops.keys() {
            assert!(
                ops.iter().any(|o| o.kind == *k),
                "{}: {k} never planned",
                lp.name
            );
        }
        for o in ops {
            let kind = layout.links[o.link as usize].kind;
            assert!(
                lp.kinds.contains(&kind),
                "{}: {:?} hit a {kind}",
                lp.name,
                o.kind
            );
        }
    }
    // Without the kind (a Linux without dummy) the rest still runs, and
    // nothing of the eiface loops is left to land on other kinds.
    let (rest, notes) = s.without_kinds(&[LinkKind::Eiface]);
    assert!(rest.loops.iter().all(|l| l.kinds.is_empty()), "{notes:?}");
    assert_eq!(rest.loops.len(), 3);
}

#[test]
fn loop_kinds_are_checked_against_the_topology() {
    let t = GOOD.replace("ops = {", "kinds = [\"eiface\"]\nops = {");
    let e = err(&t);
    assert!(
        e.contains("loop[0].kinds") && e.contains("no `eiface` link"),
        "{e}"
    );
    // A kind that is there, but with nothing for the op among it.
    let t = GOOD
        .replace(
            "links = [ { kind = \"pair\", count = 2 } ]",
            "links = [ { kind = \"pair\", count = 2 }, { kind = \"tun\", count = 1 } ]",
        )
        .replace(
            "ops = { move = 1, move-back = 1 }",
            "kinds = [\"pair\"]\nops = { tun-open = 1 }",
        );
    let e = err(&t);
    assert!(
        e.contains("tun-open has nothing to act on among the loop's kinds"),
        "{e}"
    );
    // Dropping the kind a loop is limited to drops the loop.
    let t = GOOD
        .replace(
            "links = [ { kind = \"pair\", count = 2 } ]",
            "links = [ { kind = \"pair\", count = 2 }, { kind = \"eiface\", count = 1, optional = true } ]",
        )
        .replace(
            "ops = { move = 1, move-back = 1 }",
            "ops = { move = 1 }\n\n[[loop]]\nname = \"e\"\nworkers = 1\nkinds = [\"eiface\"]\nops = { destroy = 1, create = 1 }",
        );
    let s = parse(&t, "my.toml").unwrap();
    assert_eq!(s.loops.len(), 2);
    let (s, notes) = s.without_kinds(&[LinkKind::Eiface]);
    assert_eq!(s.loops.len(), 1, "{notes:?}");
    assert_eq!(s.loops[0].name, "a");
}

#[test]
fn outpath_sends_tcp_and_tun_leaves_its_clones() {
    let s = load("outpath").unwrap();
    let ops = s.op_kinds();
    assert!(ops.contains(&OpKind::SendTcp4) && ops.contains(&OpKind::SendTcp6));
    assert!(load("tun").unwrap().checks.leave_tun_clones);
    // Everything else destroys what its tun-opens cloned.
    for (name, _) in EMBEDDED {
        if *name != "tun" {
            assert!(!load(name).unwrap().checks.leave_tun_clones, "{name}");
        }
    }
}
