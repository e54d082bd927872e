//! The hop machine: one step = one decision = one trace record.
//!
//! A packet is a stack of IP headers (the outermost last; VXLAN or ESP
//! encapsulation adds one). It walks the topology through these locations:
//!
//! | location | reads | decides |
//! |---|---|---|
//! | NIC egress | the NIC's compiled FIB (its subnet's effective routes, R16 built in) | anti-spoofing (R44), then per next-hop type (SPEC §2): local/peered owner, appliance, gateway, Internet, drop; ECMP by a per-flow hash (R18); no recursion (R43); TTL untouched (R48) |
//! | NIC ingress | the NIC's IPs and IP forwarding | deliver to the VM, hand to an NVA's OS, or drop (R44) |
//! | NVA OS | the NVA's own routing table | decapsulate tunnel traffic addressed to it; TTL − 1; next hop → egress NIC (R42); encapsulate into a tunnel |
//! | gateway | the connected sites' prefixes | hand to the site (VPN or ExpressRoute) |
//! | site | its prefixes, hosts, CPE and tunnels | decapsulate, deliver |
//!
//! Every walk ends in exactly one [`Verdict`]: delivered (where), dropped
//! (one [`DropReason`], where) or a loop, detected when a location sees the
//! same packet headers again (TTL aside), not only when TTL runs out.
//!
//! The same walk serves `trace` (every hop explained), `verify` (every
//! ECMP branch) and the pipeline's workers (no text, no allocation).
//!
//! - `packet`: headers, layers, the flow hash;
//! - `verdict`: where a walk ends and why (the one list of drop reasons);
//! - `world`: what a walk reads, built once per table version;
//! - `walk`: the walker, one module per location kind.

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ESP: u8 = 50;
/// Walks longer than this many steps are reported as a loop by hop limit.
pub const MAX_STEPS: usize = 512;
/// Most IP headers a packet carries (the original plus nested tunnels).
pub const MAX_LAYERS: usize = 8;
/// TTL of packets the tool originates, and of outer headers added on encap.
pub const DEFAULT_TTL: u8 = 64;
/// IP datagram length of packets the tool originates (a TCP SYN with options).
pub const DEFAULT_LEN: usize = 60;

pub mod frame;
mod packet;
pub mod traffic;
mod verdict;
mod walk;
mod world;

pub use packet::{Encap, Header, Layer, Packet, flow_hash};
pub use verdict::{At, DropReason, Effects, Hop, Outcome, Place, RouteUsed, Trace, Verdict};
pub use walk::{BranchBuf, MAX_LOOKED, Pending, Start, WalkBuf, encapsulate, encapsulated_len};
pub use world::{GatewayTarget, PublicOwner, World};
