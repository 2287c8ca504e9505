/*
 * The FreeBSD headers whose values tests/freebsd_abi.rs checks. That test
 * appends one constant expression per value after this file and compiles
 * the result with `zig cc -target x86_64-freebsd`, whose bundled libc
 * carries FreeBSD's system headers.
 */
#include <sys/types.h>
#include <sys/param.h>
#include <sys/ioccom.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/filio.h>
#include <sys/time.h>
#include <sys/jail.h>
#include <stddef.h>

#include <net/if.h>
#include <net/ethernet.h>
#include <net/bpf.h>
#include <net/if_lagg.h>
#include <net/if_bridgevar.h>
#include <net/if_vlan_var.h>
#include <netinet/in.h>
#include <netinet/in_var.h>
#include <netinet6/in6_var.h>
#include <netinet6/nd6.h>
#include <netgraph/ng_message.h>
#include <netgraph/ng_socket.h>
#include <netgraph/ng_eiface.h>
#include <netlink/netlink.h>
#include <netlink/netlink_route.h>

/* The size of one member, as the Rust side's field_size! measures it. */
#define FSIZE(type, member) sizeof(((type *)0)->member)
