//! The progress of a long replay on a terminal: packets read, their rate,
//! and (reading a file) bytes against its size with the time left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vnetplane::pipeline::stream::Progress;

/// How often the display is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A display drawn on standard error by a thread of its own.
pub struct Display {
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Display {
    /// Starts drawing `p`; `size` is the input's length when known.
    pub fn start(p: Arc<Progress>, size: Option<u64>) -> Self {
        let bar = match size {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes}  {msg}  {eta} left")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} read, {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let frames = p.frames.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(p.bytes.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{frames} packets, {:.2} Mpps",
                    frames as f64 / secs / 1e6
                ));
                std::thread::sleep(TICK);
            }
            bar.finish_and_clear();
        });
        Display { done, thread }
    }

    /// Clears the display.
    pub fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
