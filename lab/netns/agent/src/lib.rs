//! netns-agent: gNMI for a Linux + FRR leaf in a network namespace, with SR Linux paths.
//!
//! Interface admin/oper-state come from netlink events, BGP session state and EVPN
//! received routes from FRR (vtysh JSON, polled), and a Set of admin-state sets the Linux
//! link down or up. See lab/netns/README.md.

pub mod frr;
pub mod links;
pub mod names;
pub mod netlink;
pub mod server;
pub mod store;
