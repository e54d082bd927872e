//! The reader: reads the receive queues' descriptors in input order, cuts
//! batches per worker, sends scheduled steps to the control plane at the
//! packet they are due before, and steers hash buckets from a worker that
//! falls behind. With no core to spare it forwards the last worker's share
//! itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::control::{Ctl, Half, send_ctl};
use super::report::ReaderStats;
use super::steer::{self, Table};
use super::worker::{Batch, Worker, send_waiting};
use super::{Options, PipelineError, Queues, Steering};
use crate::control::events::Event;

/// The reader's state for one run.
pub(super) struct Reader<'f, 'q> {
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
    ingest: &'q Queues<'f>,
    opts: Options,
    batch: usize,
}

/// What the reader did: frames read, whether a stop ended it, its figures.
pub(super) struct ReadEnd {
    pub(super) read: usize,
    pub(super) stopped: bool,
    pub(super) stats: ReaderStats,
}

impl<'f, 'q> Reader<'f, 'q> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        ingest: &'q Queues<'f>,
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
            table: Table::new(ingest.split, nw),
            depth: vec![steer::INLINE_DEPTH; nw],
            blocked: Duration::ZERO,
            ingest,
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
        next.worker = w;
        next.idx.clear();
        next.out.clear();
        std::mem::replace(&mut self.cur[w], next)
    }

    /// Hands every worker's batch out.
    fn send_all(&mut self, step: usize) -> Result<(), PipelineError> {
        for w in 0..self.workers() {
            self.send(w, step)?;
        }
        Ok(())
    }

    /// Reads every descriptor (until `stop` is set), cutting batches at
    /// scheduled steps; returns once the last batch is handed out.
    pub(super) fn run(
        &mut self,
        scheduled: &[(usize, Event)],
        stop: Option<&AtomicBool>,
    ) -> Result<ReadEnd, PipelineError> {
        let started = Instant::now();
        let nw = self.workers();
        let adaptive = self.opts.steering == Steering::Adaptive && nw > 1;
        let mut step = 0;
        let mut sched = scheduled.iter().peekable();
        let mut delayed: VecDeque<(usize, Vec<Event>)> = VecDeque::new();
        let mut read = 0;
        let mut stopped = false;
        // The next frame index at which a scheduled step is due.
        let mut next_due = sched.peek().map_or(usize::MAX, |(at, _)| *at);
        // Frames until the next look at the stop flag (a countdown: no
        // division per frame).
        let mut until_stop_check = 0;
        let ingest = self.ingest;
        for (i, d) in ingest.desc.iter().enumerate() {
            if until_stop_check == 0 {
                until_stop_check = self.batch;
                if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    stopped = true;
                    break;
                }
            }
            until_stop_check -= 1;
            // Scheduled steps due before this frame: cut every batch, then
            // every later batch needs the new snapshot.
            if i >= next_due {
                self.send_all(step)?;
                while delayed.front().is_some_and(|(at, _)| *at <= i) {
                    let (_, evs) = delayed.pop_front().unwrap_or_default();
                    step += 1;
                    send_ctl(&self.ctl, step, evs, Half::Converge, i)?;
                }
                let mut evs = Vec::new();
                while let Some((_, e)) = sched.next_if(|(at, _)| *at <= i) {
                    evs.push(e.clone());
                }
                if !evs.is_empty() {
                    step += 1;
                    if self.opts.convergence_delay > 0 {
                        send_ctl(&self.ctl, step, evs.clone(), Half::Announce, i)?;
                        delayed.push_back((i + self.opts.convergence_delay, evs));
                    } else {
                        send_ctl(&self.ctl, step, evs, Half::Whole, i)?;
                    }
                }
                next_due = sched
                    .peek()
                    .map(|(at, _)| *at)
                    .into_iter()
                    .chain(delayed.front().map(|(at, _)| *at))
                    .min()
                    .unwrap_or(usize::MAX);
            }
            let w = self.table.worker_of(u64::from(d.hash));
            self.cur[w].idx.push(d.pos);
            if self.cur[w].idx.len() >= self.batch {
                self.batch_full(w, step, adaptive)?;
            }
            read += 1;
        }
        self.send_all(step)?;
        let stats = ReaderStats {
            total: started.elapsed(),
            blocked: self.blocked,
            steering: self.opts.steering,
            moves: self.table.moves,
            buckets: self.table.held().to_vec(),
            ingest: ingest.took,
            queued: ingest.queued.clone(),
        };
        Ok(ReadEnd {
            read,
            stopped,
            stats,
        })
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
