//! The writer: restores input order and writes each packet's trace line
//! and frames.

use std::collections::VecDeque;
use std::io::Write;

use crossbeam_channel::{Receiver, Sender};

use super::worker::Batch;
use super::{PipelineError, Queues};
use crate::dataplane::World;
use crate::io::PcapNgOut;

/// Restores input order: the next packet is at the head of one worker's
/// queue (each worker's batches arrive in order), or not arrived yet.
pub(super) fn run<W: Write, T: Write>(
    nw: usize,
    done: Receiver<Batch>,
    free: Sender<Batch>,
    world: &World,
    ingest: Option<&Queues<'_>>,
    mut pcapng: Option<&mut PcapNgOut<W>>,
    mut traces: Option<&mut T>,
) -> Result<(), PipelineError> {
    // Per worker: batches waiting, and the position in the front batch.
    let mut queues: Vec<VecDeque<Batch>> = (0..nw).map(|_| VecDeque::new()).collect();
    let mut pos = vec![0usize; nw];
    let mut next: u64 = 0;
    // Trace lines of a run of packets, written together.
    let mut line: Vec<u8> = Vec::new();
    // A packet's place in the order: its position among the frames
    // forwarded.
    let seq = |b: &Batch, k: usize| -> u64 {
        match (&b.chunk, ingest) {
            (Some(c), _) => c.frames[b.idx[k] as usize].seq,
            (None, Some(q)) => u64::from(q.input_index(b.idx[k])),
            (None, None) => u64::MAX,
        }
    };
    loop {
        let mut progressed = false;
        for w in 0..nw {
            while let Some(b) = queues[w].front_mut() {
                // The packets of this batch next in order, one after
                // another: written in one piece each.
                let k = pos[w];
                let mut k2 = k;
                while k2 < b.idx.len() && seq(b, k2) == next + (k2 - k) as u64 {
                    k2 += 1;
                }
                if k2 == k {
                    break;
                }
                let (j0, r0) = if k == 0 { (0, 0) } else { b.out.ends[k - 1] };
                let (j1, r1) = b.out.ends[k2 - 1];
                if let (Some(tr), true) = (traces.as_deref_mut(), j1 > j0) {
                    line.clear();
                    for t in &b.out.traced[j0..j1] {
                        crate::dataplane::frame::write_trace_line_at(
                            &mut line,
                            world,
                            t.number,
                            t.outcome,
                            b.out.ats[t.ats.clone()].iter().copied(),
                            Some(t.version),
                        );
                    }
                    tr.write_all(&line).map_err(PipelineError::Traces)?;
                }
                if let (Some(out), true) = (pcapng.as_deref_mut(), r1 > r0) {
                    // Blocks go out in runs; a capture point seen for the
                    // first time has its interface described just before
                    // its block (the same file for any number of workers).
                    let bytes = &mut b.out.bytes;
                    let mut from = b.out.recs[r0].block.start;
                    for r in &b.out.recs[r0..r1] {
                        if !out.has_interface(r.point) {
                            out.write_encoded(&bytes[from..r.block.start])?;
                            from = r.block.start;
                        }
                        let id = out.interface_of(r.point, || world.capture_point_name(r.point))?;
                        crate::io::set_epb_interface(&mut bytes[r.block.clone()], id);
                    }
                    out.write_encoded(&bytes[from..b.out.recs[r1 - 1].block.end])?;
                }
                next += (k2 - k) as u64;
                progressed = true;
                pos[w] = k2;
                if pos[w] == b.idx.len() {
                    pos[w] = 0;
                    if let Some(mut b) = queues[w].pop_front() {
                        b.recycle();
                        let _ = free.send(b);
                    }
                }
            }
        }
        if progressed {
            continue;
        }
        match done.recv() {
            Ok(b) => {
                let w = b.worker;
                queues[w].push_back(b);
            }
            Err(_) => break,
        }
    }
    if queues.iter().any(|q| !q.is_empty()) {
        return Err(PipelineError::Unwritten(next));
    }
    Ok(())
}
