//! # vnetplane
//!
//! A packet-forwarding dataplane that models how Azure virtual networks really
//! forward traffic. In Azure there is no router inside a VNet: every NIC is its
//! own small router with an *effective route table* built from system routes,
//! gateway and Route Server (BGP) routes and user-defined routes.
//!
//! ```text
//!  topology file ──load+validate──▶ Topology (typed ids, arenas)     [topology]
//!                                       │
//!                                       ▼
//!                  control: effective routes per NIC (R1–R20)        [control]
//!                                       │
//!                                       ▼
//!                  cli: `routes`, `next-hop`, `check`, `show`         [cli]
//! ```
//!
//! The BGP simulation, the compiled FIB, the hop-by-hop dataplane, `verify`
//! and the worker pipeline plug into this flow as DESIGN.md describes; see
//! ARCHITECTURE.md for the code map and invariants.

// `unsafe` is denied everywhere but in `live::ring` (AF_PACKET rings and
// sockets), which allows it with a SAFETY comment at each use.
#![deny(unsafe_code)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod control;
pub mod dataplane;
pub mod fib;
pub mod import;
pub mod io;
#[cfg(target_os = "linux")]
pub mod live;
pub mod pipeline;
pub mod replay;
pub mod rng;
pub mod topology;
pub mod verify;
pub mod wire;
