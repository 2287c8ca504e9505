//! Kernel memory that grows across a run: FreeBSD malloc types (`vmstat -m`,
//! InUse) and UMA zones (`vmstat -z`, USED) tied to interfaces, sampled before
//! setup and after teardown. Growth above a threshold is a finding.
//!
//! Linux has no counterpart here: under SLUB, /proc/slabinfo's active counts
//! did not move even for network namespaces held alive on purpose (measured),
//! so a slab check could not fail; leaks there surface as leftovers, dying
//! namespaces and `unregister_netdevice: waiting` lines instead.

use std::collections::BTreeMap;

/// Malloc types and zones whose growth means interfaces or stacks leak.
/// The names are the kernel's own (MALLOC_DEFINE's short names, uma_zcreate's
/// zone names): if.c ifnet, ifaddr (in6_ifextra is allocated from it too),
/// ether_multi (link multicast addresses), ifdescr; in_mcast.c in_multi;
/// in6_mcast.c in6_multi; bpf.c BPF; if_epair.c epair; if_vlan.c vlan;
/// if_tuntap.c tun (tun, tap and vmnet share it); if_bridge.c's zone
/// bridge_rtnode (its softc and lagg's come from the shared devbuf, too busy
/// to watch); ng_base.c netgraph, netgraph_node, netgraph_hook; kern_malloc.c
/// ip6ndp (nd6); if_llatbl.c lltable; kern_jail.c prison; vnet.c vnet,
/// vnet_data, vnet_data_free. Matched without regard to case.
pub const WATCHED: &[&str] = &[
    "ifnet",
    "ifaddr",
    "ifdescr",
    "ether_multi",
    "in_multi",
    "in6_multi",
    "bpf",
    "epair",
    "bridge_rtnode",
    "vlan",
    "tun",
    "netgraph",
    "netgraph_node",
    "netgraph_hook",
    "prison",
    "vnet",
    "vnet_data",
    "vnet_data_free",
    "ip6ndp",
    "lltable",
];

/// Growth that counts: more than this many, and more than 2 % of before.
pub const MIN_GROWTH: i64 = 16;

/// `vmstat -m`: "Type InUse MemUse Requests Size(s)", the type name possibly
/// with spaces, right-aligned columns.
pub fn parse_vmstat_m(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 4 || t[0] == "Type" {
            continue;
        }
        // Size(s) may be absent: MemUse ends in K (or M/G).
        let memuse = |s: &str| {
            s.ends_with(['K', 'M', 'G']) && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
        };
        let n = t.len();
        let (inuse_at, name_end) = if memuse(t[n - 3]) {
            (n - 4, n - 4)
        } else if memuse(t[n - 2]) {
            (n - 3, n - 3)
        } else {
            continue;
        };
        if let Ok(v) = t[inuse_at].parse::<i64>() {
            out.insert(format!("malloc {}", t[..name_end].join(" ")), v);
        }
    }
    out
}

/// `vmstat -z`: "ITEM   SIZE  LIMIT     USED     FREE      REQ ..." with
/// "name: size, limit, used, free, requests, ..." rows.
pub fn parse_vmstat_z(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let cols: Vec<&str> = rest.split(',').map(str::trim).collect();
        if let Some(Ok(used)) = (cols.len() >= 4).then(|| cols[2].parse::<i64>()) {
            out.insert(format!("zone {}", name.trim()), used);
        }
    }
    out
}

/// Only what we watch.
pub fn watched(all: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    all.into_iter()
        .filter(|(k, _)| {
            let base = k.split_once(' ').map(|x| x.1).unwrap_or(k);
            WATCHED.iter().any(|w| base.eq_ignore_ascii_case(w))
        })
        .collect()
}

/// (name, before, after) for each counter that grew past the threshold.
pub fn grown(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> Vec<(String, i64, i64)> {
    after
        .iter()
        .filter_map(|(k, &a)| {
            let b = *before.get(k)?;
            (a - b > MIN_GROWTH.max(b / 50)).then(|| (k.clone(), b, a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_tables_and_keeps_only_watched_counters() {
        // The layout vmstat(8) prints; names may carry spaces.
        let m = "         Type InUse MemUse Requests  Size(s)\n          ifnet    17    34K       17  2048\n   CAM dev queue     2     1K        2  64\n        ifaddr   120    28K      300  32,64,128,256\n";
        let p = parse_vmstat_m(m);
        assert_eq!(p["malloc ifnet"], 17);
        assert_eq!(p["malloc CAM dev queue"], 2);
        assert_eq!(p["malloc ifaddr"], 120);
        let z = "ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAILSLEEP XDOMAIN\n\nUMA Kegs:               384,      0,     180,       4,     180,   0,   0,   0\nvnet:                  64,      0,      12,     100,    2000,   0,   0,   0\n";
        let q = parse_vmstat_z(z);
        assert_eq!(q["zone vnet"], 12);
        assert_eq!(q["zone UMA Kegs"], 180);
        let w = watched(p.into_iter().chain(q).collect());
        assert!(w.contains_key("malloc ifnet") && w.contains_key("zone vnet"));
        assert!(!w.contains_key("malloc CAM dev queue") && !w.contains_key("zone UMA Kegs"));
    }

    #[test]
    fn growth_counts_only_past_the_threshold() {
        let b: BTreeMap<String, i64> =
            [("malloc ifnet".into(), 17), ("zone vnet".into(), 1000)].into();
        let a: BTreeMap<String, i64> = [
            ("malloc ifnet".into(), 60),
            ("zone vnet".into(), 1015),
            ("malloc new".into(), 99),
        ]
        .into();
        assert_eq!(grown(&b, &a), vec![("malloc ifnet".to_string(), 17, 60)]);
        assert!(grown(&b, &b).is_empty());
    }
}
