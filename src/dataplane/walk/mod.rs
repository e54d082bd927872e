//! The walker: one step = one decision = one trace record. A [`Walk`]
//! moves a packet from location to location ([`At`]); each location kind
//! has its module:
//!
//! - `nic`: a NIC's egress (one SDN decision with its subnet's compiled
//!   table) and ingress (IP forwarding, delivery, hand-off to an NVA);
//! - `nva`: an NVA's operating system (its own routing table, TTL,
//!   tunnels);
//! - `site`: gateways and on-premises sites, both directions;
//! - `encap`: tunnels (the outer header, a tunnel's arrival).
//!
//! Loops are found when an SDN decision sees the same location and header
//! stack again; every walk ends in one [`Outcome`].

use std::net::IpAddr;

use arrayvec::ArrayVec;

use super::packet::{Header, Layer, Packet};
use super::verdict::{At, DropReason, Effects, Hop, Outcome, Place, Trace, Verdict};
use super::world::World;
use super::{Encap, MAX_STEPS};
use crate::control::bgp::Node;
use crate::topology::*;

/// How a walk's header stack (loop detection's "state", TTLs aside) came
/// from an earlier one: a walk's states form a tree rooted at the stack it
/// started with (state 0); state `s` ≥ 1 is `WalkBuf::states[s - 1]`.
/// Headers change only by pushes and pops, so a push compares its layer
/// with the pushes already made on the same state, and a pop of a pushed
/// layer is its parent, compared with nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StateEdge {
    /// State `.0` with this outer header and encapsulation pushed.
    Push(u16, Header, Option<Encap>),
    /// State `.0`, the starting stack or a state popped from it, with its
    /// outer header popped (a packet that entered encapsulated). A stack
    /// rebuilt by pushing what was popped below the start is a new state
    /// the first time round (the loop is found at the next turn).
    Pop(u16),
}

/// Failures the dataplane already suffers while its tables still show the
/// state before them: what an event does at once, before reconvergence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Speakers (NVAs, gateways) that stopped forwarding.
    pub speakers: Vec<Node>,
    /// Tunnels that stopped: (owner NVA or site, index into its tunnels).
    pub tunnels: Vec<(Node, usize)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.speakers.is_empty() && self.tunnels.is_empty()
    }
}

pub(super) static NO_PENDING: Pending = Pending {
    speakers: Vec::new(),
    tunnels: Vec::new(),
};

/// Where a walk starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Nic(NicId),
    Site(SiteId),
    /// The NVA's own operating system (a ping the router sends itself):
    /// routed by its OS table, no TTL spent at the first hop.
    Nva(NvaId),
}

/// A walk's reusable buffers: the packet to walk (changed in place by
/// encapsulation, TTL), the hops recorded, and the walker's scratch space.
#[derive(Clone, Debug)]
pub struct WalkBuf {
    pub packet: Packet,
    pub hops: Vec<Hop>,
    /// (location, header state) and the index of the hop where first seen;
    /// walks are short, so a vector beats a hash map.
    seen: Vec<((At, u16), usize)>,
    /// A 64-bit filter of `seen`'s keys: a key whose bit is clear was not
    /// seen (most steps skip the list search).
    seen_bits: u64,
    /// The header stacks this walk has had besides the one it started
    /// with, each as the change from an earlier one (see [`StateEdge`]).
    states: Vec<StateEdge>,
    /// The current header stack: 0 the starting one, `s` `states[s - 1]`.
    state: u16,
    /// ECMP / load-balancer choices to force, in decision order (the rest
    /// follow the flow hash).
    forced: Vec<usize>,
    /// (options, chosen) at each multi-way decision met.
    decisions: Vec<(usize, usize)>,
    /// Every address the walk looked up in a table (subnet FIBs, NVA OS
    /// tables, a site's BGP routes), in lookup order, repeats included,
    /// while there is room: a walk whose looked-up addresses no changed
    /// prefix covers walks the same under the new tables (what lets the
    /// flow cache keep flows across updates). Only a walk whose outcome is
    /// cached reads them ([`WalkBuf::looked_set`]): the walk appends.
    looked: ArrayVec<IpAddr, MAX_LOOKUPS>,
    /// `looked` holds every address looked up (no overflow).
    looked_all: bool,
    /// Hops walked (recorded in `hops` or not).
    pub steps: usize,
}

/// Distinct addresses a walk's looked-up set holds (see
/// [`WalkBuf::looked_set`]).
pub const MAX_LOOKED: usize = 4;

/// Lookups a walk records (a VXLAN path makes six).
pub(super) const MAX_LOOKUPS: usize = 16;

impl WalkBuf {
    /// The distinct addresses the last walk looked up in a table, when it
    /// recorded them all and they are at most [`MAX_LOOKED`].
    pub fn looked_set(&self) -> Option<ArrayVec<IpAddr, MAX_LOOKED>> {
        if !self.looked_all {
            return None;
        }
        let mut set = ArrayVec::new();
        for &a in &self.looked {
            if !set.contains(&a) {
                set.try_push(a).ok()?;
            }
        }
        Some(set)
    }

    /// The state an edge leads to: one met before, or a new one.
    fn state_after(&mut self, e: StateEdge) -> u16 {
        let i = match self.states.iter().position(|x| *x == e) {
            Some(i) => i,
            None => {
                self.states.push(e);
                self.states.len() - 1
            }
        };
        (i + 1) as u16
    }
}

impl Default for WalkBuf {
    fn default() -> Self {
        WalkBuf {
            packet: Packet {
                layers: ArrayVec::new(),
            },
            hops: Vec::with_capacity(16),
            seen: Vec::with_capacity(16),
            seen_bits: 0,
            states: Vec::with_capacity(4),
            state: 0,
            forced: Vec::new(),
            decisions: Vec::new(),
            looked: ArrayVec::new(),
            looked_all: true,
            steps: 0,
        }
    }
}

pub(super) struct Walk<'w, const REC: bool> {
    pub(super) world: &'w World,
    pub(super) pending: &'w Pending,
    /// The packet, the hops, and scratch space.
    pub(super) b: &'w mut WalkBuf,
    /// Record decisions as text.
    pub(super) text: bool,
    /// Record node names and packets as text too (a trace shown whole;
    /// pcapng comments name nodes from `at`).
    pub(super) names: bool,
    /// Name the route of each SDN hop (costs a table walk per hop).
    pub(super) explain: bool,
    /// The packet is sent by the NVA the walk starts in (cleared at its
    /// first hop there).
    pub(super) from_os: bool,
}

pub(super) enum Step {
    Go(At),
    Done(Outcome),
    /// Leave over the Internet from hop `hop` (sent by `nic`): decided
    /// out of the SDN hop, which most walks take without ever reaching it.
    Internet {
        hop: usize,
        nic: Option<NicId>,
    },
}

/// A location and header state mixed into a few bits (for `seen_bits`).
#[inline]
pub(super) fn seen_hash((at, state): (At, u16)) -> u32 {
    let (kind, i) = match at {
        At::NicOut(x) => (0, x.0),
        At::NicIn(x) => (1, x.0),
        At::Nva(x) => (2, x.0),
        At::Gateway(x) => (3, x.0),
        At::Site(x) => (4, x.0),
        At::SiteOut(x) => (5, x.0),
        At::GatewayIn(x) => (6, x.0),
    };
    (i.wrapping_mul(8) + kind + u32::from(state) * 0x9e37).wrapping_mul(0x9e37_79b9) >> 26
}

/// Text for the trace, built only when the walk records text: the fast path
/// never formats.
macro_rules! say {
    ($w:expr, $($arg:tt)*) => {
        if $w.text() { format!($($arg)*) } else { String::new() }
    };
}

mod encap;
mod internet;
mod nic;
mod nva;
mod site;

pub use encap::{encapsulate, encapsulated_len};

impl World {
    /// Walks a packet sent by the VM of NIC `from`.
    pub fn walk(&self, from: NicId, packet: Packet) -> Trace {
        self.walk_from(Start::Nic(from), packet)
    }

    /// Walks a packet from a NIC's VM or from an on-premises site.
    pub fn walk_from(&self, start: Start, packet: Packet) -> Trace {
        self.walk_opts(start, packet, true)
    }

    /// The same, naming the route of each SDN hop only when `explain` (verify
    /// walks without, and re-walks a finding's packet with).
    pub fn walk_opts(&self, start: Start, packet: Packet, explain: bool) -> Trace {
        self.walk_forced(start, packet, explain, Vec::new()).0
    }

    /// A walk with the first multi-way (ECMP, load balancer) choices forced;
    /// returns the trace and the (options, chosen) of every such decision.
    pub fn walk_forced(
        &self,
        start: Start,
        packet: Packet,
        explain: bool,
        forced: Vec<usize>,
    ) -> (Trace, Vec<(usize, usize)>) {
        let mut buf = WalkBuf {
            packet,
            forced,
            ..WalkBuf::default()
        };
        let outcome = self.run::<true>(start, &mut buf, &NO_PENDING, (true, true), explain);
        let verdict = self.verdict(outcome, &buf.hops);
        (
            Trace {
                hops: buf.hops,
                verdict,
            },
            buf.decisions,
        )
    }

    /// The forwarding fast path: walks `buf.packet` from `start` recording
    /// hops without text (node names, decisions and routes stay empty; `at`,
    /// `kind`, `ttl` and `effects` are set) in buffers reused from walk to
    /// walk: once they have grown, a walk allocates nothing.
    pub fn forward(&self, start: Start, buf: &mut WalkBuf) -> Outcome {
        self.forward_with(start, buf, &NO_PENDING, false)
    }

    /// The fast path with failures the tables do not show yet; with `text`,
    /// hops record their decisions as [`World::walk_from`] does (for pcapng
    /// comments; node names are left to [`World::name`] of `at`), still in
    /// reused buffers.
    pub fn forward_with(
        &self,
        start: Start,
        buf: &mut WalkBuf,
        pending: &Pending,
        text: bool,
    ) -> Outcome {
        buf.forced.clear();
        self.run::<true>(start, buf, pending, (text, false), false)
    }

    /// The counting fast path: the outcome and the number of hops
    /// (`buf.steps`), with no hop recorded (`buf.hops` stays empty).
    pub fn forward_counting(&self, start: Start, buf: &mut WalkBuf, pending: &Pending) -> Outcome {
        buf.forced.clear();
        self.run::<false>(start, buf, pending, (false, false), false)
    }

    /// A walk; `REC` false only counts hops (`buf.hops` stays empty, no
    /// text), a separate build of the walk with the recording compiled out.
    /// `text`: (decisions, node names and packets) recorded as text.
    fn run<const REC: bool>(
        &self,
        start: Start,
        buf: &mut WalkBuf,
        pending: &Pending,
        (text, names): (bool, bool),
        explain: bool,
    ) -> Outcome {
        buf.hops.clear();
        buf.steps = 0;
        buf.seen.clear();
        buf.seen_bits = 0;
        buf.states.clear();
        buf.state = 0;
        buf.decisions.clear();
        buf.looked.clear();
        buf.looked_all = true;
        let at = match start {
            Start::Nic(n) => At::NicOut(n),
            Start::Site(s) => At::SiteOut(s),
            Start::Nva(n) => At::Nva(n),
        };
        let mut w = Walk::<REC> {
            world: self,
            pending,
            b: buf,
            text,
            names,
            explain,
            from_os: matches!(start, Start::Nva(_)),
        };
        w.run(at)
    }

    /// The explained verdict of an outcome, given the walk's hops.
    pub fn verdict(&self, o: Outcome, hops: &[Hop]) -> Verdict {
        match o {
            Outcome::Delivered(p) => Verdict::Delivered {
                at: self.place_name(p).into_owned(),
            },
            Outcome::Dropped(p, reason) => Verdict::Dropped {
                at: self.place_name(p).into_owned(),
                reason,
            },
            Outcome::Loop { at, first: None } => Verdict::Loop {
                at: self.name(at).to_string(),
                cycle: Vec::new(),
                route: format!("hop limit ({MAX_STEPS} steps)"),
            },
            Outcome::Loop {
                at,
                first: Some(first),
            } => {
                let cyc = hops.get(first..).unwrap_or_default();
                let cycle = cyc
                    .iter()
                    .map(|h| format!("{} ({})", self.name(h.at), h.kind))
                    .collect();
                let route = cyc
                    .iter()
                    .rev()
                    .find_map(|h| h.route.as_ref())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Verdict::Loop {
                    at: self.name(at).to_string(),
                    cycle,
                    route,
                }
            }
        }
    }

    /// Every ECMP / load-balancer branch of a packet's walk (at most `limit`):
    /// a depth-first enumeration of the choices at each multi-way decision.
    pub fn walk_branches(
        &self,
        start: Start,
        packet: &Packet,
        explain: bool,
        limit: usize,
    ) -> Vec<Trace> {
        let mut out = Vec::new();
        let mut stack: Vec<Vec<usize>> = vec![Vec::new()];
        while let Some(forced) = stack.pop() {
            if out.len() >= limit {
                break;
            }
            let depth = forced.len();
            let (tr, decisions) = self.walk_forced(start, packet.clone(), explain, forced);
            // Branch on every decision not forced by this walk.
            for j in (depth..decisions.len()).rev() {
                let (n, chosen) = decisions[j];
                for alt in (0..n).filter(|&a| a != chosen) {
                    let mut f: Vec<usize> = decisions[..j].iter().map(|d| d.1).collect();
                    f.push(alt);
                    stack.push(f);
                }
            }
            out.push(tr);
        }
        out
    }
}

/// Reusable buffers for [`World::for_each_branch`].
#[derive(Clone, Debug, Default)]
pub struct BranchBuf {
    pub walk: WalkBuf,
    /// Choices still to walk, each a forced prefix of decisions.
    stack: Vec<Vec<usize>>,
}

impl WalkBuf {
    /// The choice taken at each multi-way decision of the last walk: given
    /// as forced choices ([`World::walk_forced`]), they walk the same branch.
    pub fn choices(&self) -> Vec<usize> {
        self.decisions.iter().map(|d| d.1).collect()
    }
}

impl World {
    /// Every ECMP / load-balancer branch of a packet's walk (at most
    /// `limit`), on the fast path: hops recorded without text (`at`, `kind`,
    /// `ttl` set), in buffers reused from call to call; `f` sees each
    /// branch's buffer and outcome. Returns the number of branches walked.
    pub fn for_each_branch(
        &self,
        start: Start,
        packet: &Packet,
        b: &mut BranchBuf,
        limit: usize,
        mut f: impl FnMut(&WalkBuf, Outcome),
    ) -> usize {
        b.stack.clear();
        b.stack.push(Vec::new());
        let mut walked = 0;
        while let Some(forced) = b.stack.pop() {
            if walked >= limit {
                break;
            }
            let depth = forced.len();
            b.walk.packet.clone_from(packet);
            b.walk.forced = forced;
            let outcome = self.run::<true>(start, &mut b.walk, &NO_PENDING, (false, false), false);
            let decisions = &b.walk.decisions;
            for j in (depth..decisions.len()).rev() {
                let (n, chosen) = decisions[j];
                for alt in (0..n).filter(|&a| a != chosen) {
                    let mut f: Vec<usize> = decisions[..j].iter().map(|d| d.1).collect();
                    f.push(alt);
                    b.stack.push(f);
                }
            }
            walked += 1;
            f(&b.walk, outcome);
        }
        walked
    }
}

impl<const REC: bool> Walk<'_, REC> {
    /// Whether hops record text (never on the counting walk, `REC` false,
    /// which the compiler then builds without any of it).
    #[inline(always)]
    pub(super) fn text(&self) -> bool {
        REC && self.text
    }

    #[inline]
    pub(super) fn hop(&mut self, at: At, kind: &'static str, decision: String) -> usize {
        let i = self.b.steps;
        self.b.steps += 1;
        if !REC {
            return i;
        }
        self.record_hop(at, kind, decision);
        i
    }

    /// The recording half of [`Walk::hop`] (out of line: the counting
    /// path never takes it).
    #[inline(never)]
    pub(super) fn record_hop(&mut self, at: At, kind: &'static str, decision: String) {
        let o = self.b.packet.outer();
        let (node, packet) = if self.text() && self.names {
            (self.world.name(at).to_string(), o.header.to_string())
        } else {
            (String::new(), String::new())
        };
        self.b.hops.push(Hop {
            at,
            node,
            kind,
            packet,
            ttl: o.ttl,
            decision,
            route: None,
            encap: None,
            decap: None,
            effects: Effects::default(),
        });
    }

    /// Fills in the last hop recorded (nothing when the walk only counts
    /// hops).
    #[inline]
    pub(super) fn set_last_hop(&mut self, f: impl FnOnce(&mut Hop)) {
        if REC && let Some(h) = self.b.hops.last_mut() {
            f(h);
        }
    }

    /// Fills in hop `i` (nothing when the walk only counts hops).
    #[inline]
    pub(super) fn set_hop(&mut self, i: usize, f: impl FnOnce(&mut Hop)) {
        if REC && let Some(h) = self.b.hops.get_mut(i) {
            f(h);
        }
    }

    /// Why a speaker does not forward: down in the tables, or failed and
    /// not reconverged yet.
    pub(super) fn speaker_fails(&self, n: Node) -> Option<DropReason> {
        if self.world.cp.conditions.down_speakers.contains(&n) {
            Some(match n {
                Node::Gateway(_) => DropReason::GatewayDown,
                _ => DropReason::NvaDown,
            })
        } else if self.pending.speakers.contains(&n) {
            Some(DropReason::Converging)
        } else {
            None
        }
    }

    /// Why a tunnel carries nothing: down, or failed and not reconverged yet.
    pub(super) fn tunnel_fails(&self, owner: Node, k: usize) -> Option<DropReason> {
        if self.world.cp.conditions.down_tunnels.contains(&(owner, k)) {
            Some(DropReason::TunnelDown)
        } else if self.pending.tunnels.contains(&(owner, k)) {
            Some(DropReason::Converging)
        } else {
            None
        }
    }

    /// Records an address about to be looked up in a table.
    #[inline]
    pub(super) fn looked_up(&mut self, a: IpAddr) {
        let b = &mut *self.b;
        if b.looked.try_push(a).is_err() {
            b.looked_all = false;
        }
    }

    /// Pushes an outer header; false when the packet already has
    /// [`MAX_LAYERS`] headers.
    pub(super) fn push_layer(&mut self, l: Layer) -> bool {
        if self.b.packet.layers.try_push(l).is_err() {
            return false;
        }
        self.b.state = self
            .b
            .state_after(StateEdge::Push(self.b.state, l.header, l.encap));
        true
    }

    /// Pops the outer header (decapsulation).
    pub(super) fn pop_layer(&mut self) {
        self.b.packet.layers.pop();
        let b = &mut *self.b;
        b.state = match b.state.checked_sub(1).map(|i| b.states[usize::from(i)]) {
            Some(StateEdge::Push(parent, ..)) => parent,
            _ => b.state_after(StateEdge::Pop(b.state)),
        };
    }

    pub(super) fn run(&mut self, mut at: At) -> Outcome {
        for _ in 0..MAX_STEPS {
            // Every cycle of hops passes an SDN decision (a NIC's egress or
            // a gateway forwarding from its sites): a NIC's ingress leads
            // only to its NVA, an NVA only to a NIC's egress or to itself
            // one header fewer, a site only to its own delivery. Tracking
            // states there alone finds every loop.
            if matches!(at, At::NicOut(_) | At::GatewayIn(_)) {
                let key = (at, self.b.state);
                let bit = 1u64 << (seen_hash(key) & 63);
                if self.b.seen_bits & bit != 0
                    && let Some(&(_, first)) = self.b.seen.iter().find(|(k, _)| *k == key)
                {
                    return Outcome::Loop {
                        at,
                        first: Some(first),
                    };
                }
                self.b.seen_bits |= bit;
                self.b.seen.push((key, self.b.steps));
            }
            let step = match at {
                At::NicOut(n) => self.nic_out(n),
                At::NicIn(n) => self.nic_in(n),
                At::Nva(n) => self.nva(n),
                At::Gateway(g) => self.gateway(g),
                At::Site(s) => self.site(s),
                At::SiteOut(s) => self.site_out(s),
                At::GatewayIn(g) => self.gateway_in(g),
            };
            let step = match step {
                Step::Internet { hop, nic } => {
                    let (why, next) = self.over_internet(hop, nic);
                    self.set_hop(hop, |h| h.decision = why);
                    next
                }
                other => other,
            };
            match step {
                Step::Go(next) => at = next,
                Step::Done(v) => return v,
                Step::Internet { .. } => return Outcome::Loop { at, first: None },
            }
        }
        Outcome::Loop { at, first: None }
    }

    pub(super) fn drop_at(&self, at: At, reason: DropReason) -> Step {
        Step::Done(Outcome::Dropped(Place::At(at), reason))
    }

    /// A multi-way choice: forced while forced choices remain, else by hash.
    /// (The flow hash is computed only for a real choice.)
    pub(super) fn choose(&mut self, n: usize, hash: impl FnOnce() -> u64) -> usize {
        if n <= 1 {
            return 0;
        }
        let k = self.b.decisions.len();
        let c = self
            .b
            .forced
            .get(k)
            .copied()
            .filter(|&c| c < n)
            .unwrap_or_else(|| (hash() % n as u64) as usize);
        self.b.decisions.push((n, c));
        c
    }

    pub(super) fn finish_drop(&mut self, i: usize, why: &str, at: At, r: DropReason) -> Step {
        self.set_hop(i, |h| h.decision = why.to_string());
        self.drop_at(at, r)
    }
}
