//! The suites shipped in `suites/`, compiled in so the binary runs anywhere.

pub const EMBEDDED: &[(&str, &str)] = &[
    ("vmove", include_str!("../../suites/vmove.toml")),
    ("clone", include_str!("../../suites/clone.toml")),
    ("ioctl", include_str!("../../suites/ioctl.toml")),
    ("outpath", include_str!("../../suites/outpath.toml")),
    ("tun", include_str!("../../suites/tun.toml")),
    ("bpf", include_str!("../../suites/bpf.toml")),
    ("netlink", include_str!("../../suites/netlink.toml")),
    ("jail", include_str!("../../suites/jail.toml")),
    ("all", include_str!("../../suites/all.toml")),
];
