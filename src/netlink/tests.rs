//! Our encoder against netlink-packet-route's, byte for byte.

use super::*;
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressHeader, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, LinkAttribute, LinkInfo as NprInfo,
    LinkMessage, MacVlanMode,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

fn reference(ty: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut h = NetlinkHeader::default();
    h.flags = flags;
    h.sequence_number = seq;
    let mut m = NetlinkMessage::new(h, NetlinkPayload::from(ty));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

fn link(attrs: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes = attrs;
    m
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

#[test]
fn veth_create_matches_reference() {
    let peer = link(vec![LinkAttribute::IfName("isabcdp0b".into())]);
    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdp0".into()),
            LinkAttribute::LinkInfo(vec![
                NprInfo::Kind(InfoKind::Veth),
                NprInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ])),
        CREATE,
        7,
    );
    let mut m = Msg::default();
    let got = m.new_link(7, b"isabcdp0", NewLink::Veth { peer: b"isabcdp0b" });
    assert_eq!(got, &want[..]);
}

#[test]
fn bridge_vlan_macvlan_create_match_reference() {
    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdb0".into()),
            LinkAttribute::LinkInfo(vec![NprInfo::Kind(InfoKind::Bridge)]),
        ])),
        CREATE,
        1,
    );
    assert_eq!(
        Msg::default().new_link(1, b"isabcdb0", NewLink::Bridge),
        &want[..]
    );

    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdv0".into()),
            LinkAttribute::Link(12),
            LinkAttribute::LinkInfo(vec![
                NprInfo::Kind(InfoKind::Vlan),
                NprInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)])),
            ]),
        ])),
        CREATE,
        2,
    );
    let got = Msg::default()
        .new_link(
            2,
            b"isabcdv0",
            NewLink::Vlan {
                parent: 12,
                id: 100,
            },
        )
        .to_vec();
    assert_eq!(got, want);

    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdm0".into()),
            LinkAttribute::Link(3),
            LinkAttribute::LinkInfo(vec![
                NprInfo::Kind(InfoKind::MacVlan),
                NprInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                    MacVlanMode::Bridge,
                )])),
            ]),
        ])),
        CREATE,
        3,
    );
    let got = Msg::default()
        .new_link(3, b"isabcdm0", NewLink::Macvlan { parent: 3 })
        .to_vec();
    assert_eq!(got, want);
}

#[test]
fn delete_move_and_master_match_reference() {
    let want = reference(
        RouteNetlinkMessage::DelLink(link(vec![LinkAttribute::IfName("isabcdp3".into())])),
        NLM_F_REQUEST | NLM_F_ACK,
        9,
    );
    assert_eq!(Msg::default().del_link(9, b"isabcdp3"), &want[..]);

    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdp3".into()),
            LinkAttribute::NetNsFd(17),
        ])),
        NLM_F_REQUEST | NLM_F_ACK,
        10,
    );
    assert_eq!(
        Msg::default().set_link_u32(10, b"isabcdp3", IFLA_NET_NS_FD, 17),
        &want[..]
    );

    let want = reference(
        RouteNetlinkMessage::NewLink(link(vec![
            LinkAttribute::IfName("isabcdp3".into()),
            LinkAttribute::Controller(4),
        ])),
        NLM_F_REQUEST | NLM_F_ACK,
        11,
    );
    assert_eq!(
        Msg::default().set_link_u32(11, b"isabcdp3", IFLA_MASTER, 4),
        &want[..]
    );
}

#[test]
fn delete_by_index_matches_reference() {
    let mut lm = LinkMessage::default();
    lm.header.index = 33;
    let want = reference(
        RouteNetlinkMessage::DelLink(lm),
        NLM_F_REQUEST | NLM_F_ACK,
        12,
    );
    assert_eq!(Msg::default().del_link_index(12, 33), &want[..]);
}

#[test]
fn address_add_and_delete_match_reference() {
    for (addr, plen) in [
        ("198.18.0.17".parse::<std::net::IpAddr>().unwrap(), 28u8),
        ("fd00:6966:7374:3::1".parse().unwrap(), 64),
    ] {
        for add in [true, false] {
            let mut am = AddressMessage::default();
            am.header = AddressHeader {
                family: if addr.is_ipv4() {
                    AddressFamily::Inet
                } else {
                    AddressFamily::Inet6
                },
                prefix_len: plen,
                index: 5,
                ..Default::default()
            };
            am.attributes = vec![
                AddressAttribute::Local(addr),
                AddressAttribute::Address(addr),
            ];
            let (ty, flags) = if add {
                (RouteNetlinkMessage::NewAddress(am), CREATE)
            } else {
                (
                    RouteNetlinkMessage::DelAddress(am),
                    NLM_F_REQUEST | NLM_F_ACK,
                )
            };
            let want = reference(ty, flags, 4);
            let octets = match addr {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            assert_eq!(
                Msg::default().addr(4, add, 5, &octets, plen),
                &want[..],
                "{addr} add={add}"
            );
        }
    }
}

#[test]
fn alias_is_sent_without_nul_like_iproute2() {
    let mut m = Msg::default();
    let b = m.set_alias(1, b"x", b"ifstress:abcd").to_vec();
    // header 16 + ifinfomsg 16 + IFNAME("x\0" -> 8) + IFALIAS(4 + 13 -> 20)
    assert_eq!(b.len(), 16 + 16 + 8 + 20);
    assert_eq!(&b[40..42], &17u16.to_ne_bytes());
    assert_eq!(&b[42..44], &IFLA_IFALIAS.to_ne_bytes());
    assert_eq!(&b[44..57], b"ifstress:abcd");
}

#[test]
fn parses_acks_errors_and_dumped_links() {
    // An NLMSG_ERROR carrying -ENODEV (19), then a link dump entry.
    let mut buf = Vec::new();
    let mut err = vec![0u8; 16 + 4 + 16];
    err[0..4].copy_from_slice(&36u32.to_ne_bytes());
    err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
    err[8..12].copy_from_slice(&5u32.to_ne_bytes());
    err[16..20].copy_from_slice(&(-19i32).to_ne_bytes());
    buf.extend_from_slice(&err);
    let mut lm = LinkMessage::default();
    lm.header.index = 42;
    lm.attributes = vec![
        LinkAttribute::IfName("isabcdp1".into()),
        LinkAttribute::IfAlias("ifstress:abcd".into()),
    ];
    buf.extend(reference(RouteNetlinkMessage::NewLink(lm), NLM_F_MULTI, 6));
    let msgs: Vec<_> = messages(&buf).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].ty, NLMSG_ERROR);
    assert_eq!(msgs[0].seq, 5);
    assert_eq!(error_code(msgs[0].payload), Some(19));
    assert_eq!(msgs[1].ty, RTM_NEWLINK);
    let l = parse_link(msgs[1].payload).unwrap();
    assert_eq!(
        l,
        LinkInfo {
            index: 42,
            name: "isabcdp1".into(),
            alias: Some("ifstress:abcd".into())
        }
    );
    // Truncated input yields nothing, never a panic.
    assert_eq!(messages(&buf[..10]).count(), 0);
    assert_eq!(messages(&buf[..30]).count(), 0);
}

#[test]
fn nsid_messages_match_reference() {
    use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
    let mut m = NsidMessage::default();
    m.attributes = vec![NsidAttribute::Fd(9), NsidAttribute::Id(5)];
    let want = reference(
        RouteNetlinkMessage::NewNsId(m),
        NLM_F_REQUEST | NLM_F_ACK,
        3,
    );
    assert_eq!(Msg::default().new_nsid(3, 9, 5), &want[..]);
    let want = reference(
        RouteNetlinkMessage::GetNsId(NsidMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
        4,
    );
    assert_eq!(Msg::default().dump_nsids(4), &want[..]);
    // A dumped entry carries its id back.
    let mut r = NsidMessage::default();
    r.attributes = vec![NsidAttribute::Id(42)];
    let bytes = reference(RouteNetlinkMessage::NewNsId(r), NLM_F_MULTI, 4);
    let m = messages(&bytes).next().unwrap();
    assert_eq!(parse_nsid(m.payload), Some(42));
}
