//! The control plane: pure, deterministic functions of the topology (and, in
//! later stages, of BGP state and events). No clock, no threads, no I/O.
//!
//! - [`effective`]: every NIC's effective routes with Azure's selection rules,
//!   and lookups that explain their choice.

pub mod effective;
