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

// One audited exception: `alloc_tuning` (an allocator option, set once).
#![deny(unsafe_code)]

/// The allocator of every program built on the library (the binary,
/// examples, tests, benches). The control plane rebuilds its state for every
/// table version, a quarter of whose instructions went to glibc's malloc and
/// free (`examples/ctl` under callgrind); mimalloc's thread-local free lists
/// make the same allocations cheaper (see README, Performance).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use alloc_tuning::keep_freed_memory;

mod alloc_tuning {
    #![allow(unsafe_code)]

    /// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the sixteenth
    /// option; `libmimalloc-sys` names no constant for it).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// Makes the allocator keep the memory programs free instead of giving
    /// it back to the OS a second later (mimalloc's purge delay set to -1,
    /// "no purging"), as dataplanes keep theirs: a large batch of route
    /// changes (20,000 advertisements in `vnetplane bench`) otherwise runs
    /// on pages the OS must fault in and zero again, 2 MiB at a time with
    /// transparent huge pages — 36–47 ms against 19–21 ms on this machine
    /// (`MIMALLOC_PURGE_DELAY=-1 vnetplane bench` against `vnetplane
    /// bench`, absorption row). The resident size stays at its peak.
    /// The binary calls it first thing; a program on the library may too.
    pub fn keep_freed_memory() {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's static
        // option table; it reads and writes no allocation and may be
        // called from any thread at any time. 15 is the purge delay in the
        // mimalloc this crate builds (its default, 1000, is checked below).
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn option_15_is_the_purge_delay() {
            // SAFETY: `mi_option_get` reads an integer from the option table.
            let get = || unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
            // mimalloc 3's default purge delay is 1000 ms (options.c); no
            // other option defaults to 1000.
            let before = get();
            assert!(before == 1000 || before == -1, "option 15 is {before}");
            super::keep_freed_memory();
            assert_eq!(get(), -1);
        }
    }
}

pub mod cli;
pub mod control;
pub mod dataplane;
pub mod fib;
pub mod io;
pub mod pipeline;
pub mod topology;
pub mod verify;
pub mod wire;
