//! Bad input: exit 2, one clear line, never a panic. These need no root.

mod common;
use common::*;

fn assert_usage_error(o: &std::process::Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn unknown_suite() {
    assert_usage_error(
        &run(&["--suite", "nosuch", "--duration", "1s"]),
        "unknown suite `nosuch`",
    );
}

#[test]
fn bad_duration() {
    assert_usage_error(
        &run(&["--suite", "vmove", "--duration", "banana"]),
        "invalid duration `banana`",
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let d = tmp();
    let p = d.path().join("bad.toml");
    std::fs::write(&p, "name = \"x\"\ndescription = [\n").unwrap();
    let o = run(&["--suite", p.to_str().unwrap(), "--duration", "1s"]);
    assert_usage_error(&o, &format!("{}:", p.display()));
}

#[test]
fn unknown_op_kind_names_the_field() {
    let d = tmp();
    let p = d.path().join("op.toml");
    std::fs::write(
        &p,
        "name = \"x\"\ndescription = \"d\"\n[topology]\nstacks = 1\nlinks = [{ kind = \"pair\", count = 1 }]\n[[loop]]\nname = \"l\"\nworkers = 1\nops = { warp = 1 }\n",
    )
    .unwrap();
    let o = run(&["--suite", p.to_str().unwrap()]);
    assert_usage_error(&o, ":9: loop[0].ops: unknown variant `warp`");
    assert!(stderr(&o).contains("warp"));
}

#[test]
fn missing_suite_and_unknown_flag() {
    assert_usage_error(&run(&["--duration", "1s"]), "--suite is required");
    assert_usage_error(&run(&["--suite", "vmove", "--frobnicate"]), "--frobnicate");
    assert_usage_error(
        &run(&["--suite", "vmove", "--report", "/nonexistent/dir/r.json"]),
        "does not exist",
    );
}

#[test]
fn list_and_show() {
    let o = run(&["list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for s in [
        "vmove", "clone", "ioctl", "outpath", "tun", "bpf", "netlink", "jail", "all",
    ] {
        assert!(out.lines().any(|l| l.starts_with(s)), "{s} not listed");
    }
    assert!(out.contains("PR 292993"));
    let o = run(&["show", "vmove"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("name = \"vmove\""), "{text}");
    // What `show` prints loads back as a suite file.
    let d = tmp();
    let p = d.path().join("v.toml");
    std::fs::write(&p, text.as_bytes()).unwrap();
    assert_eq!(run(&["show", p.to_str().unwrap()]).stdout, o.stdout);
}
