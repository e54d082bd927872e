//! The control plane beside the workers: takes scheduled steps and live
//! events, reconverges, compiles the tables that changed, and publishes a
//! [`Snapshot`] to every worker. [`serve_control`] runs it on its own for
//! forwarding that is not a replay (`live`).

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use ipnet::IpNet;

use super::flowcache::Delta;
use super::report::{VersionInfo, thread_cpu};
use super::{Control, ControlPriority, LiveEvents, PipelineError, Snapshot};
use crate::control::bgp::Node;
use crate::control::events::{self as cevents, Event};
use crate::control::{self, ControlPlane};
use crate::dataplane::{Pending, World};
use crate::fib::Fib;
use crate::topology::Topology;

/// Asks for the control thread's scheduling; what it got, as text.
pub(super) fn set_control_priority(p: ControlPriority) -> String {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    match p {
        ControlPriority::Normal => "normal".into(),
        ControlPriority::Realtime => match set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        ) {
            Ok(()) => "SCHED_FIFO (lowest real-time priority)".into(),
            Err(e) => format!("normal (SCHED_FIFO refused: {e:?})"),
        },
    }
}

/// Which part of a scheduled step's events the control plane applies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Half {
    /// Their immediate effect and the reconverged tables at once.
    Whole,
    /// Only their immediate effect (failed speakers and tunnels stop
    /// forwarding); the tables come later, as a `Converge` step.
    Announce,
    /// The reconverged tables of events announced before.
    Converge,
}

/// What the reader sends the control plane.
pub(super) enum Ctl {
    /// A scheduled step: its events, and which half of them.
    Step {
        step: usize,
        events: Vec<Event>,
        half: Half,
        from_packet: usize,
    },
}

/// Sends a scheduled step to the control plane.
pub(super) fn send_ctl(
    tx: &Sender<Ctl>,
    step: usize,
    events: Vec<Event>,
    half: Half,
    from_packet: usize,
) -> Result<(), PipelineError> {
    tx.send(Ctl::Step {
        step,
        events,
        half,
        from_packet,
    })
    .map_err(|_| PipelineError::Stopped("the control plane"))
}

/// The control plane's inputs.
pub(super) struct Inputs {
    /// Scheduled steps from the reader; disconnected when it has finished.
    pub(super) steps: Receiver<Ctl>,
    /// Snapshots the workers are done with, freed here.
    pub(super) retired: Receiver<Arc<Snapshot>>,
    /// Disconnected once every packet is forwarded.
    pub(super) forwarded: Receiver<()>,
    /// Events arriving while running.
    pub(super) live: Option<Receiver<LiveEvents>>,
}

/// What the control plane did in a run.
pub(super) struct ControlEnd {
    pub(super) versions: Vec<VersionInfo>,
    /// How its thread was scheduled.
    pub(super) scheduling: String,
    /// Its thread's time on a CPU.
    pub(super) cpu: Option<Duration>,
    /// Live events that did not apply, with why.
    pub(super) rejected: Vec<String>,
}

/// Runs the control plane on the calling thread until the reader has
/// finished and the live events (if any) have ended.
pub(super) fn run(
    c: Control,
    world: Arc<World>,
    inputs: Inputs,
    workers: Vec<Sender<Arc<Snapshot>>>,
    opts: &super::Options,
) -> Result<ControlEnd, PipelineError> {
    let scheduling = set_control_priority(opts.control_priority);
    let cpu0 = thread_cpu();
    let mut l = ControlLoop {
        announced: cevents::apply(&c.base, &c.events)?,
        lagging: None,
        unconverged: 0,
        versions: Vec::new(),
        version: 0,
        pending: Pending::default(),
        step: 0,
        last_publish: None,
        deferred: None,
        steps_closed: false,
        world,
        workers,
        coalesce: opts.coalesce,
        inputs,
        rejected: Vec::new(),
    };
    l.run()?;
    Ok(ControlEnd {
        versions: l.versions,
        scheduling,
        cpu: cpu0.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a)),
        rejected: l.rejected,
    })
}

/// One input: a scheduled step, or a window's live events.
struct Input {
    events: Vec<Event>,
    half: Half,
    /// The packet a scheduled step is due before; `None` for live events.
    from_packet: Option<usize>,
    step: usize,
    /// When it arrived (a live event's stamp; a step's receipt): update
    /// latency is measured from here.
    since: Instant,
}

/// What the control plane waits on next.
enum Next {
    Input(Input),
    /// Nothing this time (the live events ended); look again.
    Again,
    /// The run is over.
    End,
}

/// The control plane's state between inputs.
///
/// Two states events build on: `announced` has every event seen so far,
/// the converged one those the tables show. What is failed in the first
/// but not in the tables is pending. The converged state is the announced
/// one unless an announced step waits for its tables (`lagging`: `Some`
/// while `unconverged` > 0), so a version under a stream of updates clones
/// the state once (for convergence), not three times.
struct ControlLoop {
    announced: (Topology, control::bgp::Conditions),
    lagging: Option<(Topology, control::bgp::Conditions)>,
    /// Announced steps whose converged half has not come yet.
    unconverged: usize,
    versions: Vec<VersionInfo>,
    version: u32,
    pending: Pending,
    step: usize,
    last_publish: Option<Instant>,
    /// A step that arrived during a debounce window.
    deferred: Option<Ctl>,
    /// The reader has finished: no step will come.
    steps_closed: bool,
    world: Arc<World>,
    workers: Vec<Sender<Arc<Snapshot>>>,
    coalesce: Duration,
    inputs: Inputs,
    rejected: Vec<String>,
}

impl ControlLoop {
    fn run(&mut self) -> Result<(), PipelineError> {
        loop {
            // Free the snapshots every worker has left.
            self.inputs.retired.try_iter().for_each(drop);
            self.sleep_out_window();
            match self.next_input() {
                Next::End => return Ok(()),
                Next::Again => continue,
                Next::Input(input) => self.handle(input)?,
            }
        }
    }

    /// The time left in the debounce window since the last publication.
    fn window_left(&self) -> Duration {
        self.last_publish.map_or(Duration::ZERO, |t| {
            (t + self.coalesce).saturating_duration_since(Instant::now())
        })
    }

    /// Under a stream of live events the rest of the window is slept out
    /// first and what came meanwhile is then taken at once: one wake-up a
    /// version (each wake-up preempts a worker). A scheduled step ends the
    /// sleep; so does the end of the run.
    fn sleep_out_window(&mut self) {
        if self.inputs.live.is_none() || self.deferred.is_some() || self.steps_closed {
            return;
        }
        let open = self.window_left();
        if !open.is_zero() {
            crossbeam_channel::select! {
                recv(self.inputs.steps) -> m => if let Ok(c) = m { self.deferred = Some(c) },
                default(open) => {}
            }
        }
    }

    /// The next scheduled step, or live events (coalesced).
    fn next_input(&mut self) -> Next {
        let msg = if let Some(d) = self.deferred.take() {
            Some(Ok(d))
        } else if self.steps_closed {
            // The run ended during the last batch: nothing more to do.
            None
        } else if let Some(l) = &self.inputs.live {
            let mut live_closed = false;
            let mut steps_closed = false;
            let m = crossbeam_channel::select! {
                recv(self.inputs.steps) -> m => match m {
                    Ok(c) => Some(Ok(c)),
                    // The run is over: the live events that arrived before
                    // still make a version (no worker adopts it).
                    Err(_) => {
                        steps_closed = true;
                        l.try_recv().ok().map(Err)
                    }
                },
                recv(l) -> e => match e {
                    Ok(e) => Some(Err(e)),
                    Err(_) => { live_closed = true; None }
                },
            };
            self.steps_closed |= steps_closed;
            if live_closed {
                self.inputs.live = None;
                return Next::Again;
            }
            m
        } else {
            self.inputs.steps.recv().ok().map(Ok)
        };
        match msg {
            None => Next::End,
            Some(Ok(Ctl::Step {
                step,
                events,
                half,
                from_packet,
            })) => Next::Input(Input {
                events,
                half,
                from_packet: Some(from_packet),
                step,
                since: Instant::now(),
            }),
            Some(Err(first)) => Next::Input(self.window(first)),
        }
    }

    /// Debounce: the live events that arrive until the window since the
    /// last publication closes, after `first`. A scheduled step arriving
    /// meanwhile ends the window (it is handled next), and so does the end
    /// of the run.
    fn window(&mut self, first: LiveEvents) -> Input {
        let mut events = first.events;
        let open = self.window_left();
        if !open.is_zero() && !self.steps_closed {
            crossbeam_channel::select! {
                recv(self.inputs.steps) -> m => match m {
                    Ok(c) => self.deferred = Some(c),
                    Err(_) => self.steps_closed = true,
                },
                default(open) => {}
            }
        }
        if let Some(l) = &self.inputs.live {
            let closed = loop {
                match l.try_recv() {
                    Ok(e) => events.extend(e.events),
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if closed {
                self.inputs.live = None;
            }
        }
        // The reader has finished: no worker will adopt this last version,
        // so it waits for the forwarding to end rather than take a core
        // from the workers' last batches (the channel disconnects then).
        if self.steps_closed {
            let _ = self.inputs.forwarded.recv();
        }
        Input {
            events,
            half: Half::Whole,
            from_packet: None,
            step: self.step,
            since: first.at,
        }
    }

    fn handle(&mut self, input: Input) -> Result<(), PipelineError> {
        let t0 = Instant::now();
        let Input {
            mut events,
            half,
            from_packet,
            step,
            since,
        } = input;
        let is_live = from_packet.is_none();
        if !is_live {
            self.step = step;
        }
        if half != Half::Converge && !self.announce(&mut events, half, from_packet, since)? {
            return Ok(());
        }
        // Converge: the tables with the events, and what stays pending.
        if let Some((topo, cond)) = &mut self.lagging
            && let Err(e) = cevents::apply_onto(topo, cond, &events)
        {
            if !is_live {
                return Err(e.into());
            }
            self.rejected.push(e.to_string());
            return Ok(());
        }
        if half == Half::Converge {
            self.unconverged = self.unconverged.saturating_sub(1);
            if self.unconverged == 0 {
                // Every announced step has its tables: the states meet.
                self.lagging = None;
            }
        }
        self.rebuild(events, from_packet, since, t0);
        Ok(())
    }

    /// The events' immediate effect (failed speakers and tunnels stop
    /// forwarding), published before reconvergence for live events and
    /// for a step's announced half. Whether the tables come next.
    fn announce(
        &mut self,
        events: &mut Vec<Event>,
        half: Half,
        from_packet: Option<usize>,
        since: Instant,
    ) -> Result<bool, PipelineError> {
        if half == Half::Announce && self.lagging.is_none() {
            // The tables stay where they are until the converged half.
            self.lagging = Some(self.announced.clone());
        }
        let is_live = from_packet.is_none();
        let (topo, cond) = &mut self.announced;
        if is_live {
            // A live event that does not apply (unknown name, ...) is
            // reported and skipped; the rest of its batch applies.
            let skipped = cevents::apply_each(topo, cond, events);
            self.rejected
                .extend(skipped.iter().map(|(_, e)| e.to_string()));
            for (i, _) in skipped.into_iter().rev() {
                events.remove(i);
            }
            if events.is_empty() {
                return Ok(false);
            }
        } else {
            cevents::apply_onto(topo, cond, events)?;
        }
        if half == Half::Announce {
            self.unconverged += 1;
        }
        let now = newly_failed(&self.world.cp, &self.announced.1);
        let changed = now != self.pending;
        self.pending = now;
        // A step whose announcement changes nothing still gets its snapshot
        // (the same version: the same tables and failures).
        if half == Half::Announce || (is_live && changed) {
            if changed {
                self.version += 1;
                self.versions.push(VersionInfo {
                    version: self.version,
                    events: events.clone(),
                    kind: "pending",
                    from_packet,
                    tables_compiled: 0,
                    tables: self.world.fibs.distinct,
                    build_ms: 0.0,
                    latency_ms: None,
                });
            }
            self.publish(None, since);
        }
        // The reconverged half of an announced step comes as its own step.
        Ok(half != Half::Announce)
    }

    /// Reconverges, compiles the tables that changed, and publishes them.
    fn rebuild(
        &mut self,
        events: Vec<Event>,
        from_packet: Option<usize>,
        since: Instant,
        t0: Instant,
    ) {
        // Nothing announced waits for its tables: the converged state is
        // the announced one (applied once, not twice).
        let (topo, cond) = self.lagging.as_ref().unwrap_or(&self.announced);
        let cp = control::converge_state(topo.clone(), cond.clone());
        // Route events change routes only: the topology's objects stay, and
        // the delta says which prefixes changed.
        let routes_only = events.iter().all(Event::changes_routes_only);
        let (next, compiled) = World::rebuilt(Arc::new(cp), &self.world, routes_only);
        let before = std::mem::replace(&mut self.world, Arc::new(next));
        let now_pending = newly_failed(&self.world.cp, &self.announced.1);
        let was_pending = std::mem::replace(&mut self.pending, now_pending);
        let delta = (routes_only && was_pending == self.pending)
            .then(|| table_delta(&before, &self.world))
            .flatten()
            .map(Arc::new);
        self.version += 1;
        self.versions.push(VersionInfo {
            version: self.version,
            events,
            kind: "converged",
            from_packet,
            tables_compiled: compiled,
            tables: self.world.fibs.distinct,
            build_ms: t0.elapsed().as_secs_f64() * 1e3,
            latency_ms: None,
        });
        self.publish(delta, since);
        // The debounce window runs from the end of a rebuild, so that the
        // control plane takes at most rebuild / (rebuild + window) of a core.
        self.last_publish = Some(Instant::now());
    }

    /// Sends the current tables and failures to every worker.
    fn publish(&self, delta: Option<Arc<Delta>>, since: Instant) {
        let s = Arc::new(Snapshot {
            version: self.version,
            world: self.world.clone(),
            pending: self.pending.clone(),
            step: self.step,
            delta,
            since,
        });
        for w in &self.workers {
            // A worker that finished no longer listens: nothing to do.
            let _ = w.send(s.clone());
        }
    }
}

/// The prefixes whose routes differ between two worlds of the same
/// topology objects, in every table a walk reads: the compiled subnet
/// tables (what a lookup returns), NVA OS tables, and the sites' BGP best
/// routes (a site's routers forward by them; no other speaker's best
/// routes are read by a walk). `None` when the objects differ
/// (then anything may have changed).
///
/// Every list compared is sorted by prefix, so each is one merge walk;
/// subnets sharing a compiled table (or keeping theirs) are compared once.
pub fn table_delta(before: &World, after: &World) -> Option<Delta> {
    let (a, b) = (&before.cp, &after.cp);
    let (fa, fb) = (&before.fibs.by_subnet, &after.fibs.by_subnet);
    if fa.len() != fb.len() || a.nva_tables.len() != b.nva_tables.len() {
        return None;
    }
    // One sorted run of changed prefixes per list compared; a run equal to
    // one kept already (tables that changed alike: under churn, every
    // table that learns the same routes) is dropped at once.
    let mut changed: Vec<IpNet> = Vec::new();
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut run: Vec<IpNet> = Vec::new();
    let mut keep = |run: &mut Vec<IpNet>| {
        if !run.is_empty() && !runs.iter().any(|r| changed[r.clone()] == run[..]) {
            runs.push(changed.len()..changed.len() + run.len());
            changed.append(run);
        }
        run.clear();
    };
    let mut compared: Vec<(
        *const Fib<crate::fib::NicAction>,
        *const Fib<crate::fib::NicAction>,
    )> = Vec::new();
    for (x, y) in fa.iter().zip(fb) {
        let pair = (Arc::as_ptr(x), Arc::as_ptr(y));
        if pair.0 == pair.1 || compared.contains(&pair) {
            continue;
        }
        compared.push(pair);
        diff_sorted(x.routes(), y.routes(), |r| r.0, &mut run);
        keep(&mut run);
    }
    for (x, y) in a.nva_tables.iter().zip(&b.nva_tables) {
        diff_sorted(&x.entries, &y.entries, |e| e.prefix, &mut run);
        keep(&mut run);
    }
    // Of the BGP speakers, walks read only the sites' best routes (a site's
    // routers forward by them); the others reach the data path through the
    // tables compared above.
    let nodes: std::collections::BTreeSet<_> = a
        .bgp
        .best
        .keys()
        .chain(b.bgp.best.keys())
        .filter(|n| matches!(n, Node::Site(_)))
        .collect();
    for n in nodes {
        let x: Vec<_> = a.bgp.best_of(*n).collect();
        let y: Vec<_> = b.bgp.best_of(*n).collect();
        diff_sorted(&x, &y, |e| *e.0, &mut run);
        keep(&mut run);
    }
    Some(Delta::new(changed))
}

/// Adds to `out` every prefix whose entries differ between two lists
/// grouped by prefix in ascending order.
fn diff_sorted<T: PartialEq>(a: &[T], b: &[T], key: impl Fn(&T) -> IpNet, out: &mut Vec<IpNet>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let p = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => key(x).min(key(y)),
            (Some(x), None) => key(x),
            (None, Some(y)) => key(y),
            (None, None) => break,
        };
        let i2 = i + a[i..].iter().take_while(|x| key(x) == p).count();
        let j2 = j + b[j..].iter().take_while(|y| key(y) == p).count();
        if a[i..i2] != b[j..j2] {
            out.push(p);
        }
        (i, j) = (i2, j2);
    }
}

/// Speakers and tunnels down in `after` that the tables of `before` still use.
fn newly_failed(before: &ControlPlane, after: &control::bgp::Conditions) -> Pending {
    let was = &before.conditions;
    Pending {
        speakers: after
            .down_speakers
            .iter()
            .filter(|n| {
                !was.down_speakers.contains(n) && matches!(n, Node::Nva(_) | Node::Gateway(_))
            })
            .copied()
            .collect(),
        tunnels: after
            .down_tunnels
            .iter()
            .filter(|t| !was.down_tunnels.contains(t))
            .copied()
            .collect(),
    }
}

/// The control plane as a service beside forwarding that is not a replay
/// (`live`): live events in, a snapshot to every subscriber per version.
pub struct ControlService {
    steps: Option<Sender<Ctl>>,
    forwarded: Option<Sender<()>>,
    join: std::thread::JoinHandle<Result<ControlEnd, PipelineError>>,
}

/// What the control service did: its versions and the live events that
/// did not apply.
pub struct ServiceEnd {
    pub versions: Vec<VersionInfo>,
    pub rejected: Vec<String>,
}

/// Starts the control plane on a thread of its own: it reconverges on
/// `live` events (debounced by `opts.coalesce`) and publishes each version
/// to every subscriber, until [`ControlService::finish`].
pub fn serve_control(
    c: Control,
    world: Arc<World>,
    live: Receiver<LiveEvents>,
    subscribers: Vec<Sender<Arc<Snapshot>>>,
    opts: &super::Options,
) -> ControlService {
    let (steps_tx, steps_rx) = crossbeam_channel::unbounded();
    let (fwd_tx, fwd_rx) = crossbeam_channel::bounded(0);
    let (_, retired) = crossbeam_channel::unbounded();
    let opts = *opts;
    let join = std::thread::spawn(move || {
        let inputs = Inputs {
            steps: steps_rx,
            retired,
            forwarded: fwd_rx,
            live: Some(live),
        };
        run(c, world, inputs, subscribers, &opts)
    });
    ControlService {
        steps: Some(steps_tx),
        forwarded: Some(fwd_tx),
        join,
    }
}

impl ControlService {
    /// Stops the service once the events already sent are handled.
    pub fn finish(mut self) -> Result<ServiceEnd, PipelineError> {
        self.steps.take();
        self.forwarded.take();
        let end = self
            .join
            .join()
            .map_err(|_| PipelineError::Panicked("the control plane"))??;
        Ok(ServiceEnd {
            versions: end.versions,
            rejected: end.rejected,
        })
    }
}
