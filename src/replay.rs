//! `replay` for one worker: a capture's frames through the pipeline with the
//! tables fixed. Every frame read ends in exactly one counter; see
//! [`crate::pipeline`] for workers, events and live updates.

use std::io::Write;
use std::sync::Arc;

use crate::dataplane::World;
pub use crate::dataplane::frame::Counters;
use crate::io::{Frame, PcapNgOut};
use crate::pipeline::{self, PipelineError};
use crate::topology::NicId;

/// Options of a replay.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Send every packet from this NIC instead of the one owning its source.
    pub from: Option<NicId>,
}

/// Replays `frames` on one worker (see [`crate::pipeline`] for more);
/// writes captures to `pcapng` and traces to `traces` when given. Returns
/// the counters.
pub fn replay<W: Write + Send, T: Write + Send>(
    world: &Arc<World>,
    frames: &[Frame],
    opts: Options,
    pcapng: Option<&mut PcapNgOut<W>>,
    traces: Option<&mut T>,
) -> Result<Counters, PipelineError> {
    let run = pipeline::Run {
        world: world.clone(),
        control: None,
        scheduled: Vec::new(),
        live: None,
        stop: None,
        opts: pipeline::Options {
            workers: 1,
            from: opts.from,
            ..Default::default()
        },
    };
    let r = pipeline::run(frames, run, pipeline::Outputs { pcapng, traces })?;
    Ok(r.counters)
}
