//! The forwarding work alone, for the benchmarks' scaling figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;

use super::steer::Split;
use super::worker::{Batch, Worker};
use super::{COUNTING_BATCH, Options, PipelineError, Queues, Snapshot};
use crate::dataplane::World;
use crate::dataplane::frame::Counters;
use crate::io::Frame;

/// The forwarding work alone, to read [`run`](super::run)'s scaling against: the
/// frames split among `workers` by the same flow hash as the reader's
/// (equal shares), placed in receive queues as [`run`](super::run) places them, in
/// batches of [`COUNTING_BATCH`] built before the clock starts, each share
/// forwarded by a worker on a thread of its own with nothing beside it: no
/// reader, no queues, no writer, no control plane.
/// Its rate on N threads over N times its rate on one is what the machine
/// gives the forwarding code itself on N cores. Counters only (the bench's
/// forward and walk rows); the wall time from the moment every thread is
/// ready, and the counters, which account for every frame.
pub fn kernel(
    world: &Arc<World>,
    frames: &[Frame],
    workers: usize,
    flow_cache: usize,
) -> Result<(Duration, Counters), PipelineError> {
    let nw = workers.max(1);
    let split = Split::new(nw, None);
    let ingest = Queues::place(frames, split, nw)?;
    let mut shares: Vec<Vec<Batch>> = (0..nw).map(|_| Vec::new()).collect();
    for d in &ingest.desc {
        let w = split.worker_of(u64::from(d.hash));
        let share = &mut shares[w];
        match share.last_mut() {
            Some(b) if b.idx.len() < COUNTING_BATCH => b.idx.push(d.pos),
            _ => share.push(Batch {
                worker: w,
                idx: vec![d.pos],
                ..Batch::default()
            }),
        }
    }
    let opts = Options {
        workers: nw,
        flow_cache,
        ..Options::default()
    };
    let first = Snapshot::initial(world.clone());
    let ready = std::sync::Barrier::new(nw + 1);
    let (stats, elapsed) = std::thread::scope(|sc| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|mut share| {
                // No control plane: the update channel's sender is gone.
                let (_, updates) = unbounded();
                let mut w =
                    Worker::new(&ingest.frames, first.clone(), updates, &opts, false, false);
                let ready = &ready;
                sc.spawn(move || -> Result<_, PipelineError> {
                    ready.wait();
                    for b in &mut share {
                        w.batch(b)?;
                    }
                    Ok(w.finish())
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let stats: Result<Vec<_>, PipelineError> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| PipelineError::Panicked("a worker"))?)
            .collect();
        (stats, start.elapsed())
    });
    let mut counters = Counters::default();
    for (c, _) in stats? {
        c.merge_into(&mut counters, world);
    }
    counters.read = frames.len();
    Ok((elapsed, counters))
}
