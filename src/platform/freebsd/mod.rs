//! FreeBSD backend: stacks are VNET jails, links are if_clone interfaces
//! (epair, tun, tap, bridge, lagg, vlan) and netgraph ng_eiface nodes, ops
//! are ioctls on sockets opened inside each jail by an agent process.
//!
//! The ABI definitions, jail parameter encoding, msgbuf cursor and the
//! kernel rules the backend relies on (`rules`) are plain code compiled
//! everywhere, so that their tests run on Linux.

pub mod abi;
#[cfg(target_os = "freebsd")]
mod agentproc;
#[cfg(target_os = "freebsd")]
mod backend;
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub mod baseline;
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub mod features;
pub mod jailparam;
pub mod msgbuf;
pub mod rules;
#[cfg(target_os = "freebsd")]
mod sys;

#[cfg(target_os = "freebsd")]
pub use agentproc::main as agent_main;
#[cfg(target_os = "freebsd")]
pub use backend::FreeBsd;
