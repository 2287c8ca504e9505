//! Linux baselines: `ip -n NS ...` per op in a shell loop, and `ip -n NS
//! -batch -` as the one-process sequential stream over the same netlink calls.

use crate::platform::baseline::{Baseline, BatchProc, Case, Names};
use std::fmt::Write;

pub fn baseline(case: Case, n: &Names) -> Baseline {
    let (h, s) = (&n.home, &n.other);
    let (a, _) = &n.pairs[0];
    let mut setup = format!("ip netns add {h}\nip netns add {s}\n");
    for (x, y) in &n.pairs {
        let _ = writeln!(
            setup,
            "ip -n {h} link add {x} type veth peer name {y}\nip -n {h} link set dev {x} alias {}",
            n.alias
        );
    }
    let teardown = format!("ip netns del {s} || true\nip netns del {h} || true\n");
    let (c, d) = &n.spare;
    // The batch unit is one step's lines, except for moves: a process works in
    // one namespace, so a unit moves every pair out, and a second process
    // moves them all back.
    let lines: Option<(String, u32)> = match case {
        Case::UpDown => Some((format!("link set dev {a} up\nlink set dev {a} down\n"), 2)),
        Case::Mtu => Some((
            format!("link set dev {a} mtu 1400\nlink set dev {a} mtu 1500\n"),
            2,
        )),
        Case::Addr => Some((
            format!(
                "addr add {0}/32 dev {a}\naddr del {0}/32 dev {a}\n",
                n.addr4
            ),
            2,
        )),
        Case::Media => Some((format!("link show dev {a}\n"), 1)),
        Case::CreateDestroy => Some((
            format!("link add {c} type veth peer name {d}\nlink del {c}\n"),
            2,
        )),
        Case::Move => None,
    };
    let step = match case {
        Case::UpDown => format!("ip -n {h} link set dev {a} up\nip -n {h} link set dev {a} down"),
        Case::Mtu => {
            format!("ip -n {h} link set dev {a} mtu 1400\nip -n {h} link set dev {a} mtu 1500")
        }
        Case::Addr => format!(
            "ip -n {h} addr add {0}/32 dev {a}\nip -n {h} addr del {0}/32 dev {a}",
            n.addr4
        ),
        Case::Media => format!("ip -n {h} link show dev {a} >/dev/null"),
        Case::CreateDestroy => {
            format!("ip -n {h} link add {c} type veth peer name {d}\nip -n {h} link del {c}")
        }
        Case::Move => {
            format!("ip -n {h} link set dev {a} netns {s}\nip -n {s} link set dev {a} netns {h}")
        }
    };
    let ops_per_step = if case == Case::Media { 1 } else { 2 };
    let (h2, s2) = (h.clone(), s.clone());
    let (batch, per_unit): (Box<dyn Fn(usize) -> Vec<BatchProc>>, u32) = match lines {
        Some((unit, ops)) => (
            Box::new(move |units| {
                vec![BatchProc {
                    argv: argv(&h2),
                    stdin: unit.repeat(units),
                }]
            }),
            ops,
        ),
        None => {
            let firsts: Vec<String> = n.pairs.iter().map(|p| p.0.clone()).collect();
            let count = firsts.len() as u32;
            (
                Box::new(move |units| {
                    let out: String = firsts
                        .iter()
                        .map(|l| format!("link set dev {l} netns {s2}\n"))
                        .collect();
                    let back: String = firsts
                        .iter()
                        .map(|l| format!("link set dev {l} netns {h2}\n"))
                        .collect();
                    (0..units)
                        .flat_map(|_| {
                            [
                                BatchProc {
                                    argv: argv(&h2),
                                    stdin: out.clone(),
                                },
                                BatchProc {
                                    argv: argv(&s2),
                                    stdin: back.clone(),
                                },
                            ]
                        })
                        .collect()
                }),
                2 * count,
            )
        }
    };
    Baseline {
        setup,
        step,
        ops_per_step,
        teardown,
        batch: Some(batch),
        batch_ops_per_unit: per_unit,
        batch_label: "ip -batch",
    }
}

fn argv(ns: &str) -> Vec<String> {
    ["ip", "-n", ns, "-batch", "-"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            home: "ifstress-0abc-b0".into(),
            other: "ifstress-0abc-b1".into(),
            pairs: vec![("a0".into(), "a0b".into()), ("a1".into(), "a1b".into())],
            spare: ("c0".into(), "c0b".into()),
            alias: "ifstress:0abc".into(),
            addr4: "198.18.0.1".into(),
        }
    }

    #[test]
    fn every_command_stays_inside_the_run_namespaces() {
        for case in Case::ALL {
            let b = baseline(case, &names());
            for line in b
                .setup
                .lines()
                .chain(b.step.lines())
                .chain(b.teardown.lines())
            {
                assert!(
                    line.contains(" ifstress-0abc-b0") || line.contains(" ifstress-0abc-b1"),
                    "{case:?}: {line}"
                );
            }
            let procs = (b.batch.as_ref().unwrap())(3);
            for p in &procs {
                assert_eq!(p.argv[..2], ["ip", "-n"]);
                assert!(p.argv[2].starts_with("ifstress-0abc-b"));
            }
            let lines: usize = procs.iter().map(|p| p.stdin.lines().count()).sum();
            assert_eq!(lines as u32, 3 * b.batch_ops_per_unit, "{case:?}");
            assert_eq!(
                b.step.lines().filter(|l| l.starts_with("ip ")).count() as u32,
                b.ops_per_step,
                "{case:?}"
            );
        }
    }

    #[test]
    fn moves_go_out_in_one_process_and_back_in_another() {
        let b = baseline(Case::Move, &names());
        let p = (b.batch.as_ref().unwrap())(1);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].argv[2], "ifstress-0abc-b0");
        assert_eq!(
            p[0].stdin,
            "link set dev a0 netns ifstress-0abc-b1\nlink set dev a1 netns ifstress-0abc-b1\n"
        );
        assert_eq!(p[1].argv[2], "ifstress-0abc-b1");
        assert!(b.loop_script(5).contains("-lt 5"));
    }
}
