//! The reader: reads the receive queues' descriptors in input order, cuts
//! batches per worker, sends scheduled steps to the control plane at the
//! packet they are due before, and steers hash buckets from a worker that
//! falls behind. With no core to spare it forwards the last worker's share
//! itself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::control::{Ctl, Half, send_ctl};
use super::report::ReaderStats;
use super::steer::{self, Split, Table};
use super::stream::{Chunks, Pooled};
use super::worker::{Batch, Worker, send_waiting};
use super::{Options, PipelineError, Queues, Steering};
use crate::control::events::Event;

/// What the reader reads: receive queues built beforehand, or the chunks
/// of a streamed capture.
pub(super) enum Input<'q, 'f> {
    Queued(&'q Queues<'f>),
    Stream(Chunks),
}

/// The scheduled steps, as the reader goes.
struct Steps {
    /// Steps handed to the control plane so far.
    step: usize,
    /// Events not yet due: (0-based input index, event), in order.
    sched: VecDeque<(usize, Event)>,
    /// Reconvergences waiting for their delay: (due index, events).
    delayed: VecDeque<(usize, Vec<Event>)>,
    /// The next input index at which something is due.
    next_due: usize,
}

impl Steps {
    fn recompute(&mut self) {
        self.next_due = self
            .sched
            .front()
            .map(|(at, _)| *at)
            .into_iter()
            .chain(self.delayed.front().map(|(at, _)| *at))
            .min()
            .unwrap_or(usize::MAX);
    }
}

/// The reader's state for one run.
pub(super) struct Reader<'f> {
    /// The batch being filled for each worker.
    cur: Vec<Batch>,
    work_txs: Vec<Sender<Batch>>,
    /// Emptied batches coming back (from the writer or the workers).
    free: Receiver<Batch>,
    /// The last worker, when the reader forwards its share itself.
    pub(super) inline: Option<Worker<'f>>,
    /// Where the inline worker's batches go when something is written.
    inline_done: Option<Sender<Batch>>,
    ctl: Sender<Ctl>,
    table: Table,
    /// Each worker's queue depth, in batches, when the reader judged it.
    depth: Vec<usize>,
    /// Time spent waiting on a full worker queue.
    blocked: Duration,
    /// The streamed chunk being read (every batch cut now holds it).
    chunk: Option<Arc<Pooled>>,
    /// Frames handed to each worker.
    placed: Vec<usize>,
    opts: Options,
    batch: usize,
}

/// What the reader did: frames read, whether a stop ended it, its figures.
pub(super) struct ReadEnd {
    pub(super) read: usize,
    pub(super) stopped: bool,
    pub(super) stats: ReaderStats,
}

impl<'f> Reader<'f> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        split: Split,
        opts: Options,
        batch: usize,
        work_txs: Vec<Sender<Batch>>,
        free: Receiver<Batch>,
        inline: Option<Worker<'f>>,
        inline_done: Option<Sender<Batch>>,
        ctl: Sender<Ctl>,
    ) -> Self {
        let nw = work_txs.len();
        let mut cur: Vec<Batch> = (0..nw).map(|_| Batch::default()).collect();
        for (i, b) in cur.iter_mut().enumerate() {
            b.worker = i;
        }
        Reader {
            cur,
            work_txs,
            free,
            inline,
            inline_done,
            ctl,
            table: Table::new(split, nw),
            depth: vec![steer::INLINE_DEPTH; nw],
            blocked: Duration::ZERO,
            chunk: None,
            placed: vec![0; nw],
            opts,
            batch,
        }
    }

    fn workers(&self) -> usize {
        self.work_txs.len()
    }

    fn inline_last(&self) -> bool {
        self.inline.is_some()
    }

    /// Hands worker `w`'s batch out (or forwards it, when it is the
    /// reader's own share), tagged with the scheduled steps it needs.
    fn send(&mut self, w: usize, step: usize) -> Result<(), PipelineError> {
        if self.cur[w].idx.is_empty() {
            return Ok(());
        }
        let nw = self.workers();
        self.cur[w].step = step;
        if w == nw - 1
            && let Some(me) = self.inline.as_mut()
        {
            me.batch(&mut self.cur[w])?;
            match self.inline_done.clone() {
                Some(d) => {
                    let full = self.take(w);
                    d.send(full)
                        .map_err(|_| PipelineError::Stopped("the writer"))?;
                }
                None => {
                    self.cur[w].idx.clear();
                    self.cur[w].out.clear();
                }
            }
            return Ok(());
        }
        let full = self.take(w);
        let t = Instant::now();
        let sent = match self.work_txs[w].try_send(full) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(full)) => {
                send_waiting(&self.work_txs[w], full, self.inline.as_mut())
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        self.blocked += t.elapsed();
        sent.map_err(|()| PipelineError::Stopped("a worker"))
    }

    /// Swaps worker `w`'s full batch for an empty one (from the free list).
    fn take(&mut self, w: usize) -> Batch {
        let mut next = self.free.try_recv().unwrap_or_default();
        next.recycle();
        next.worker = w;
        next.chunk.clone_from(&self.chunk);
        std::mem::replace(&mut self.cur[w], next)
    }

    /// Hands every worker's batch out.
    fn send_all(&mut self, step: usize) -> Result<(), PipelineError> {
        for w in 0..self.workers() {
            self.send(w, step)?;
        }
        Ok(())
    }

    /// Reads every frame (until `stop` is set), cutting batches at
    /// scheduled steps; returns once the last batch is handed out.
    pub(super) fn run(
        &mut self,
        input: Input<'_, '_>,
        scheduled: &[(usize, Event)],
        stop: Option<&AtomicBool>,
    ) -> Result<ReadEnd, PipelineError> {
        let started = Instant::now();
        let nw = self.workers();
        let adaptive = self.opts.steering == Steering::Adaptive && nw > 1;
        let mut s = Steps {
            step: 0,
            sched: scheduled.iter().cloned().collect(),
            delayed: VecDeque::new(),
            next_due: usize::MAX,
        };
        s.recompute();
        let mut read = 0;
        let mut stopped = false;
        // Frames until the next look at the stop flag (a countdown: no
        // division per frame).
        let mut until_stop_check = 0;
        let batch = self.batch;
        let stop_now = |until: &mut usize| {
            if *until == 0 {
                *until = batch;
                if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return true;
                }
            }
            *until -= 1;
            false
        };
        let mut queued = Vec::new();
        let mut took = Duration::ZERO;
        match input {
            Input::Queued(ingest) => {
                for (i, d) in ingest.desc.iter().enumerate() {
                    if stop_now(&mut until_stop_check) {
                        stopped = true;
                        break;
                    }
                    self.frame(&mut s, i, d.hash, d.pos, adaptive)?;
                    read += 1;
                }
                queued.clone_from(&ingest.queued);
                took = ingest.took;
            }
            Input::Stream(chunks) => {
                'chunks: for c in chunks.iter() {
                    let c = Arc::new(c);
                    s.sched.extend(c.due.iter().cloned());
                    s.recompute();
                    for b in &mut self.cur {
                        b.chunk = Some(c.clone());
                    }
                    self.chunk = Some(c.clone());
                    for (j, f) in c.frames.iter().enumerate() {
                        if stop_now(&mut until_stop_check) {
                            stopped = true;
                            break 'chunks;
                        }
                        self.frame(&mut s, f.number - 1, f.hash, j as u32, adaptive)?;
                        read += 1;
                    }
                    // The chunk's last batches go now: the chunk comes back
                    // to the pool once they are written.
                    self.send_all(s.step)?;
                    self.chunk = None;
                    for b in &mut self.cur {
                        b.chunk = None;
                    }
                }
                queued.clone_from(&self.placed);
            }
        }
        self.send_all(s.step)?;
        let stats = ReaderStats {
            total: started.elapsed(),
            blocked: self.blocked,
            steering: self.opts.steering,
            moves: self.table.moves,
            buckets: self.table.held().to_vec(),
            ingest: took,
            queued,
        };
        Ok(ReadEnd {
            read,
            stopped,
            stats,
        })
    }

    /// One frame: input index `i`, flow hash `hash`, at `pos` in the
    /// queues or the chunk. Scheduled steps due before it cut every batch
    /// first (every later batch needs the new snapshot).
    #[inline]
    fn frame(
        &mut self,
        s: &mut Steps,
        i: usize,
        hash: u32,
        pos: u32,
        adaptive: bool,
    ) -> Result<(), PipelineError> {
        if i >= s.next_due {
            self.send_all(s.step)?;
            while s.delayed.front().is_some_and(|(at, _)| *at <= i) {
                let (_, evs) = s.delayed.pop_front().unwrap_or_default();
                s.step += 1;
                send_ctl(&self.ctl, s.step, evs, Half::Converge, i)?;
            }
            let mut evs = Vec::new();
            while s.sched.front().is_some_and(|(at, _)| *at <= i) {
                if let Some((_, e)) = s.sched.pop_front() {
                    evs.push(e);
                }
            }
            if !evs.is_empty() {
                s.step += 1;
                if self.opts.convergence_delay > 0 {
                    send_ctl(&self.ctl, s.step, evs.clone(), Half::Announce, i)?;
                    s.delayed.push_back((i + self.opts.convergence_delay, evs));
                } else {
                    send_ctl(&self.ctl, s.step, evs, Half::Whole, i)?;
                }
            }
            s.recompute();
        }
        let w = self.table.worker_of(u64::from(hash));
        self.cur[w].idx.push(pos);
        self.placed[w] += 1;
        if self.cur[w].idx.len() >= self.batch {
            self.batch_full(w, s.step, adaptive)?;
        }
        Ok(())
    }

    /// Worker `w`'s batch is full: hand it out, then let the queue it
    /// joined say whether that worker keeps pace (one bucket moves when it
    /// does not).
    fn batch_full(&mut self, w: usize, step: usize, adaptive: bool) -> Result<(), PipelineError> {
        let nw = self.workers();
        let inline_last = self.inline_last();
        let threaded = !(inline_last && w == nw - 1);
        // A reader that forwards a share itself does that rather than wait
        // on a worker's full queue (an idle core until the worker takes a
        // whole batch).
        if inline_last && threaded && self.work_txs[w].is_full() {
            self.send(nw - 1, step)?;
        }
        self.send(w, step)?;
        if adaptive && threaded {
            for (k, d) in self.depth.iter_mut().enumerate() {
                if !(inline_last && k == nw - 1) {
                    *d = self.work_txs[k].len();
                }
            }
            self.table.rebalance(w, &self.depth);
        }
        Ok(())
    }

    /// Closes the reader's channels (workers and control plane see the end
    /// of input) and gives back its own worker, if it forwarded a share.
    pub(super) fn finish(self) -> Option<Worker<'f>> {
        self.inline
    }
}
