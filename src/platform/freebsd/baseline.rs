//! FreeBSD baselines: what tests/sys/net's scripts do, `jexec JAIL ifconfig
//! ...` per op in a shell loop. FreeBSD has no batch form of ifconfig, so the
//! bench shows that column as n/a. Plain text, compiled and tested everywhere.

use crate::platform::baseline::{Baseline, Case, Names};
use std::fmt::Write;

pub fn baseline(case: Case, n: &Names) -> Baseline {
    let (h, s) = (&n.home, &n.other);
    let (a, _) = &n.pairs[0];
    // The move target is a child of the home jail, so that inside the home
    // jail it is visible by its own name and `-vnet` returns links there.
    let mut setup = format!(
        "jail -c name={h} path=/ vnet persist children.max=4\njail -c name={h}.{s} path=/ vnet persist\n"
    );
    for (x, y) in &n.pairs {
        let _ = writeln!(
            setup,
            "e=$(jexec {h} ifconfig epair create)\njexec {h} ifconfig $e name {x} description {}\njexec {h} ifconfig ${{e%a}}b name {y} description {}",
            n.alias, n.alias
        );
    }
    // Removing the home jail removes its child; epairs created inside die with
    // their vnet.
    let teardown = format!("jail -r {h}.{s} || true\njail -r {h} || true\n");
    let step = match case {
        Case::UpDown => format!("jexec {h} ifconfig {a} up\njexec {h} ifconfig {a} down"),
        Case::Mtu => format!("jexec {h} ifconfig {a} mtu 1400\njexec {h} ifconfig {a} mtu 1500"),
        Case::Addr => format!(
            "jexec {h} ifconfig {a} inet {0}/32 alias\njexec {h} ifconfig {a} inet {0} -alias",
            n.addr4
        ),
        Case::Media => format!("jexec {h} ifconfig {a} >/dev/null"),
        Case::CreateDestroy => {
            format!("e=$(jexec {h} ifconfig epair create)\njexec {h} ifconfig $e destroy")
        }
        Case::Move => format!("jexec {h} ifconfig {a} vnet {s}\njexec {h} ifconfig {a} -vnet {s}"),
    };
    Baseline {
        setup,
        step,
        ops_per_step: if case == Case::Media { 1 } else { 2 },
        teardown,
        batch: None,
        batch_ops_per_unit: 0,
        batch_label: "none on FreeBSD",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_runs_inside_the_run_jails() {
        let n = Names {
            home: "ifstress-0abc-b0".into(),
            other: "ifstress-0abc-b1".into(),
            pairs: vec![("a0".into(), "a0b".into())],
            spare: ("c0".into(), "c0b".into()),
            alias: "ifstress:0abc".into(),
            addr4: "198.18.0.1".into(),
        };
        for case in Case::ALL {
            let b = baseline(case, &n);
            assert!(b.batch.is_none());
            for line in b.step.lines() {
                assert!(line.contains("jexec ifstress-0abc-b0 ifconfig "), "{line}");
            }
            for line in b.setup.lines().chain(b.teardown.lines()) {
                assert!(line.contains("ifstress-0abc-b0"), "{line}");
            }
            let ops = b.step.lines().filter(|l| l.contains("ifconfig")).count() as u32;
            assert_eq!(ops, b.ops_per_step, "{case:?}");
        }
        assert!(
            baseline(Case::Move, &n)
                .setup
                .contains("name=ifstress-0abc-b0.ifstress-0abc-b1 ")
        );
    }
}
