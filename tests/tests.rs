//! One integration-test binary (ripgrep style): each module tests one area
//! against expectations written from SPEC.md and SCENARIOS.md.

mod it {
    /// Shared helpers: load built-ins, flatten tables, look up.
    pub mod util;

    /// BGP and what it programs, per scenario and SPEC T4–T15.
    mod bgp;
    /// One test (at least) per Azure BGP rule R21–R41, and events.
    mod bgp_rules;
    /// Route Server instances, route policy, NVA–gateway and loopback sessions.
    mod bgp_sessions;
    /// Captures read as Wireshark reads them (against tshark).
    mod captures;
    /// `routes` and `next-hop` through the real binary, table and JSON.
    mod cli;
    /// `compare`: the model against Azure's own output (REST examples).
    mod compare;
    /// `diff OLD NEW`: routes, verdicts, paths and intents that change.
    mod diff;
    /// SPEC T2, T3, T16 and scenarios 1 and 14: effective routes and lookups.
    mod effective;
    /// The compiled FIB against naive LPM, the control plane and treebitmap.
    mod fib;
    /// Hostile inputs: the corpus in tests/fuzz and random mutations.
    mod fuzz;
    /// `import`: topologies from az CLI JSON and Resource Graph results.
    mod import;
    /// `live`: namespaces, real ping and FRR around the fabric (root).
    mod live;
    /// Load balancers: probes, rules, the region limit of their next hop.
    mod load_balancer;
    /// Wrong and hostile topology files: located errors, never a panic.
    mod malformed;
    /// The worker pipeline: order, failover, live updates, stop.
    mod pipeline;
    /// Captures through topologies: accounting, pcapng output, tshark.
    mod replay;
    /// Rules R3–R5, R9, R10, R15, R16, R19, R39 on small inline topologies.
    mod rules;
    /// Every scenario of SCENARIOS.md ships a topology that loads.
    mod scenarios;
    /// verify against random flows on random intents (soundness).
    mod soundness;
    /// `replay` at scale: standard streams, shards, Ctrl-C, what is written, memory.
    mod stream;
    /// Packet walks (hop machine) per scenario.
    mod trace;
    /// verify: loops, black holes, waypoints, failures, counterexamples.
    mod verify;
    /// Byte-level encapsulation against real captures.
    mod wire;
}
