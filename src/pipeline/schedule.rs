//! Scheduled events: an events file says when (at a packet number or a
//! capture time) to apply which control-plane event.
//!
//! ```text
//! # comments and blank lines are ignored
//! at packet 1001 speaker-down nva1     # before packet 1001 (1-based, as Wireshark numbers them)
//! at 2.5s tunnel-down nva1 vx-nva2     # at 2.5 s after the first packet's timestamp
//! at 250ms speaker-up nva1             # units: s, ms, us
//! ```
//!
//! The event itself is any line [`crate::control::events`] reads.

use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};

use super::LiveEvents;
use crate::control::events::Event;

/// When a scheduled event applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// Before the packet with this number (1-based) is forwarded.
    Packet(usize),
    /// Before the first packet whose timestamp is at least this long after
    /// the capture's first packet.
    Time(Duration),
}

/// One line of an events file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub trigger: Trigger,
    pub event: Event,
    /// Line in the events file (1-based; 0 when not from a file).
    pub line: usize,
}

/// A line of an events file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ScheduleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Reads an events file; errors name the file and line.
pub fn parse(text: &str, file: &str) -> Result<Vec<Scheduled>, ScheduleError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |message: String| ScheduleError {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        let rest = line
            .strip_prefix("at ")
            .ok_or_else(|| {
                at(format!(
                    "expected `at packet N EVENT` or `at TIME EVENT`, found `{line}`"
                ))
            })?
            .trim_start();
        let (trigger, event) = if let Some(r) = rest.strip_prefix("packet ") {
            let r = r.trim_start();
            let (n, ev) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            let n: usize = n
                .parse()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| at(format!("packet number `{n}` is not a number ≥ 1")))?;
            (Trigger::Packet(n), ev)
        } else {
            let (t, ev) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (Trigger::Time(duration(t).map_err(at)?), ev)
        };
        let event = Event::parse(event).map_err(|e| at(e.to_string()))?;
        out.push(Scheduled {
            trigger,
            event,
            line: i + 1,
        });
    }
    Ok(out)
}

/// `2.5s`, `250ms`, `40us`.
fn duration(t: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!(
            "time `{t}` needs a unit (s, ms, us), or write `at packet N`"
        ));
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("time `{t}` is not a non-negative number"))?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| format!("time `{t}` is out of range"))
}

/// The 0-based index of the first frame each scheduled event applies
/// before (stable: events at the same index keep file order). An event
/// beyond the last frame applies at the end (index = `timestamps.len()`).
pub fn resolve(sched: &[Scheduled], timestamps: &[Duration]) -> Vec<(usize, Event)> {
    let t0 = timestamps.first().copied().unwrap_or_default();
    let mut out: Vec<(usize, Event)> = sched
        .iter()
        .map(|s| {
            let idx = match s.trigger {
                Trigger::Packet(n) => (n - 1).min(timestamps.len()),
                Trigger::Time(d) => timestamps
                    .iter()
                    .position(|&ts| ts.saturating_sub(t0) >= d)
                    .unwrap_or(timestamps.len()),
            };
            (idx, s.event.clone())
        })
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Live events read from `input` on a thread of their own: the lines that
/// came in one read go as one [`LiveEvents`] (a burst piped in reaches the
/// control plane as one message, a line typed by hand at once). A line
/// that does not parse, or a read that fails, goes to `rejected` as
/// `NAME:LINE: why` (the line is skipped; a failed read ends the input).
pub fn read_events<R: std::io::Read + Send + 'static>(
    input: R,
    name: &'static str,
    mut rejected: impl FnMut(String) + Send + 'static,
) -> Receiver<LiveEvents> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut input = std::io::BufReader::new(input);
        let mut line = String::new();
        let mut batch = Vec::new();
        let mut n = 0usize;
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => n += 1,
                Err(e) => {
                    rejected(format!("{name}:{}: {e}", n + 1));
                    break;
                }
            }
            let l = line.split('#').next().unwrap_or("").trim();
            if !l.is_empty() {
                match Event::parse(l) {
                    Ok(e) => batch.push(e),
                    Err(e) => rejected(format!("{name}:{n}: {e}")),
                }
            }
            // The lines already read in are one burst: sent together once
            // no whole line is left in the buffer.
            if !input.buffer().contains(&b'\n')
                && !batch.is_empty()
                && tx
                    .send(LiveEvents::now(std::mem::take(&mut batch)))
                    .is_err()
            {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(LiveEvents::now(batch));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_packets_and_times() {
        let s = parse(
            "# failover\nat packet 3 speaker-down nva1\n\nat 1.5s speaker-up nva1 # back\nat 20ms tunnel-down nva1 vx\n",
            "ev.txt",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].trigger, Trigger::Packet(3));
        assert_eq!(s[1].trigger, Trigger::Time(Duration::from_millis(1500)));
        assert_eq!(s[2].line, 5);
        let ts: Vec<Duration> = (0..5).map(|i| Duration::from_millis(10 * i)).collect();
        let r = resolve(&s, &ts);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), [2, 2, 5]);
        for (bad, want) in [
            ("at packet 0 speaker-down x", "ev.txt:1: packet number"),
            ("speaker-down x", "ev.txt:1: expected `at"),
            ("at 3 speaker-down x", "needs a unit"),
            ("at packet 2 reboot", "ev.txt:1: event `reboot`"),
        ] {
            let e = parse(bad, "ev.txt").unwrap_err();
            assert!(e.to_string().contains(want), "{bad}: {e}");
        }
    }
}
