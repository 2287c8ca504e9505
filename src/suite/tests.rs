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
