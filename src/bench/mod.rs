//! Benchmark harnesses, built only with the `bench` feature: the pipeline
//! with generated traffic ([`pipeline`]), LPM lookups against the
//! treebitmap fork and prefix-trie ([`lpm`]), and the route tables they
//! use ([`tables`]). The figures they produce are in docs/performance.md.

pub mod absorb;
#[cfg(target_os = "linux")]
pub mod live;
pub mod lpm;
pub mod machine;
pub mod pipeline;
pub mod replay;
pub mod tables;
