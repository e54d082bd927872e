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

/// The longest line of events read (an event is a few words).
pub const MAX_LINE: usize = 4096;

/// The largest events file read.
pub const MAX_FILE: u64 = 64 << 20;

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

/// Scheduled events checked: (frame index, event) in the order the run
/// applies them, and the lines of those due after the last packet.
pub type Checked = (Vec<(usize, Event)>, Vec<usize>);

/// Resolves scheduled events against a capture's timestamps (see
/// [`resolve`]) after checking that each applies, in the order the run
/// applies them (by the packet it is due before, then file order), to the
/// state the run starts from (`base` after `events`): the first that does
/// not is an error naming its file and line. Also returns the lines of
/// events due after the last packet (they apply to no packet).
pub fn check(
    base: &crate::topology::Topology,
    events: &[Event],
    sched: &[Scheduled],
    timestamps: &[Duration],
    file: &str,
) -> Result<Checked, ScheduleError> {
    let order = positions(sched, timestamps);
    check_order(base, events, sched, &order, file)?;
    let late = order
        .iter()
        .filter(|(i, _)| *i >= timestamps.len())
        .map(|&(_, k)| sched[k].line)
        .collect();
    let resolved = order
        .into_iter()
        .map(|(i, k)| (i, sched[k].event.clone()))
        .collect();
    Ok((resolved, late))
}

/// Checks that each scheduled event applies, in `order` (pairs of frame
/// index and position in `sched`, as [`streamed_positions`] gives them), to the
/// state the run starts from (`base` after `events`): the first that does
/// not is an error naming its file and line.
pub fn check_order(
    base: &crate::topology::Topology,
    events: &[Event],
    sched: &[Scheduled],
    order: &[(usize, usize)],
    file: &str,
) -> Result<(), ScheduleError> {
    let at = |line: usize, message: String| ScheduleError {
        file: file.to_string(),
        line,
        message,
    };
    let (mut topo, mut cond) = crate::control::events::apply(base, events)
        .map_err(|e| at(0, format!("the events given before the run: {e}")))?;
    for &(_, k) in order {
        let s = &sched[k];
        if let Some((_, e)) =
            crate::control::events::apply_each(&mut topo, &mut cond, std::slice::from_ref(&s.event))
                .into_iter()
                .next()
        {
            return Err(at(s.line, e.to_string()));
        }
    }
    Ok(())
}

/// The order a streamed run applies `sched` in, read from the capture's
/// timestamps one record at a time (bounded memory): each event's frame
/// index (`usize::MAX` when its time never comes) and its position in
/// `sched`, sorted. Without time triggers the capture is not read.
pub fn streamed_positions<R: std::io::Read>(
    capture: Option<crate::io::read::CaptureReader<R>>,
    sched: &[Scheduled],
) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = sched
        .iter()
        .enumerate()
        .map(|(k, s)| match s.trigger {
            Trigger::Packet(n) => (n - 1, k),
            Trigger::Time(_) => (usize::MAX, k),
        })
        .collect();
    let mut times: Vec<(Duration, usize)> = sched
        .iter()
        .enumerate()
        .filter_map(|(k, s)| match s.trigger {
            Trigger::Time(d) => Some((d, k)),
            Trigger::Packet(_) => None,
        })
        .collect();
    times.sort();
    if let (Some(mut c), false) = (capture, times.is_empty()) {
        let mut next = 0;
        let mut t0 = None;
        let mut data = Vec::new();
        let mut i = 0;
        while let Some(m) = c.next_into(&mut data) {
            data.clear();
            let since = m.timestamp.saturating_sub(*t0.get_or_insert(m.timestamp));
            while next < times.len() && times[next].0 <= since {
                out[times[next].1].0 = i;
                next += 1;
            }
            if next == times.len() {
                break;
            }
            i += 1;
        }
    }
    out.sort_by_key(|&(i, _)| i);
    out
}

/// Each event's frame index and its position in `sched`, in the order the
/// run applies them.
fn positions(sched: &[Scheduled], timestamps: &[Duration]) -> Vec<(usize, usize)> {
    let t0 = timestamps.first().copied().unwrap_or_default();
    let mut out: Vec<(usize, usize)> = sched
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let idx = match s.trigger {
                Trigger::Packet(n) => (n - 1).min(timestamps.len()),
                Trigger::Time(d) => timestamps
                    .iter()
                    .position(|&ts| ts.saturating_sub(t0) >= d)
                    .unwrap_or(timestamps.len()),
            };
            (idx, k)
        })
        .collect();
    out.sort_by_key(|&(i, _)| i);
    out
}

/// The 0-based index of the first frame each scheduled event applies
/// before (stable: events at the same index keep file order). An event
/// beyond the last frame applies at the end (index = `timestamps.len()`).
pub fn resolve(sched: &[Scheduled], timestamps: &[Duration]) -> Vec<(usize, Event)> {
    positions(sched, timestamps)
        .into_iter()
        .map(|(i, k)| (i, sched[k].event.clone()))
        .collect()
}

/// What reading live events reports of a line besides the events it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineNote {
    /// The line cannot be used: `NAME:LINE: why`.
    Rejected(String),
    /// The event arrived once the run was over: checked, not applied.
    Late(String),
}

/// Live events being read (see [`read_events`]).
pub struct LiveInput {
    /// The events, in the bursts they were read in.
    pub events: Receiver<LiveEvents>,
    /// A message per line read; disconnected at the end of the input. A
    /// caller waits on it after the run for the lines still arriving.
    pub lines: Receiver<()>,
}

/// Live events read from `input` on a thread of their own: the lines that
/// came in one read go as one [`LiveEvents`] (a burst piped in reaches the
/// control plane as one message, a line typed by hand at once). Each event
/// is checked (`check`) as it is read; a line that does not parse or check,
/// is too long or not UTF-8, or a read that fails (which ends the input),
/// goes to `note` as [`LineNote::Rejected`]. Once the run is over (nobody
/// receives the events) the reading goes on: later events are checked and
/// reported as [`LineNote::Late`].
pub fn read_events<R: std::io::Read + Send + 'static>(
    input: R,
    name: &'static str,
    check: impl Fn(&Event) -> Result<(), crate::control::events::EventError> + Send + 'static,
    mut note: impl FnMut(LineNote) + Send + 'static,
) -> LiveInput {
    let (tx, rx) = unbounded();
    let (line_tx, line_rx) = unbounded();
    std::thread::spawn(move || {
        use std::io::{BufRead, Read};
        let mut input = std::io::BufReader::new(input);
        let mut line = Vec::new();
        let mut batch: Vec<(usize, Event)> = Vec::new();
        let mut n = 0usize;
        let mut over = false;
        let mut late = Vec::new();
        loop {
            line.clear();
            // A line is read up to MAX_LINE bytes: a longer one (or an
            // input with no newline at all) is rejected, not buffered.
            match (&mut input)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(0) => break,
                Ok(_) => n += 1,
                Err(e) => {
                    note(LineNote::Rejected(format!("{name}:{}: {e}", n + 1)));
                    break;
                }
            }
            let _ = line_tx.send(());
            if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                note(LineNote::Rejected(format!(
                    "{name}:{n}: a line longer than {MAX_LINE} bytes"
                )));
                // Skip the rest of it.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    match (&mut input)
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut rest)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) if rest.last() == Some(&b'\n') => break,
                        Ok(_) => {}
                    }
                }
                continue;
            }
            let Ok(text) = std::str::from_utf8(&line) else {
                note(LineNote::Rejected(format!("{name}:{n}: not UTF-8 text")));
                continue;
            };
            let l = text.split('#').next().unwrap_or("").trim();
            if !l.is_empty() {
                match Event::parse(l).and_then(|e| check(&e).map(|()| e)) {
                    Ok(e) => batch.push((n, e)),
                    Err(e) => note(LineNote::Rejected(format!("{name}:{n}: {e}"))),
                }
            }
            // The lines already read in are one burst: sent together once
            // no whole line is left in the buffer.
            if !input.buffer().contains(&b'\n') && !batch.is_empty() {
                let burst = std::mem::take(&mut batch);
                if over {
                    late.extend(burst);
                } else if let Err(e) = tx.send(LiveEvents::from_lines(&burst)) {
                    // The run is over.
                    drop(e);
                    over = true;
                    late.extend(burst);
                }
            }
            for (k, e) in late.drain(..) {
                note(LineNote::Late(format!(
                    "{name}:{k}: event `{e}` arrived after the last packet: not applied"
                )));
            }
        }
        if !batch.is_empty() && (over || tx.send(LiveEvents::from_lines(&batch)).is_err()) {
            for (k, e) in batch {
                note(LineNote::Late(format!(
                    "{name}:{k}: event `{e}` arrived after the last packet: not applied"
                )));
            }
        }
    });
    LiveInput {
        events: rx,
        lines: line_rx,
    }
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

    /// Numbers out of range and control characters are errors naming
    /// the line, never a panic.
    #[test]
    fn out_of_range_times_and_control_characters_are_located_errors() {
        for (bad, want) in [
            (
                "at 1e20s speaker-down nva1",
                "ev.txt:1: time `1e20s` is out of range",
            ),
            ("at 18446744073709551616s speaker-down nva1", "out of range"),
            ("at -1s speaker-down nva1", "not a non-negative number"),
            ("at NaNs speaker-down nva1", "not a non-negative number"),
            (
                "at packet 99999999999999999999 speaker-down nva1",
                "packet number",
            ),
            (
                "at packet 1 speaker-down nva1\0",
                "control character U+0000",
            ),
            ("at packet 1 speaker-down \u{202e}nva1", "control character"),
        ] {
            let e = parse(bad, "ev.txt").unwrap_err();
            assert!(e.to_string().contains(want), "{bad:?}: {e}");
        }
    }

    /// Every scheduled event is checked against the topology before the
    /// run, in the order the run applies them: a name that does not exist
    /// is an error naming its line; a route removed after an earlier event
    /// added it is fine; an event due after the last packet is listed.
    #[test]
    fn scheduled_events_are_checked_before_the_run() {
        let t = crate::topology::load_builtin("spoke-to-spoke-udr")
            .expect("builtin")
            .expect("loads");
        let table = &t.route_tables[0].name;
        let ts: Vec<Duration> = (0..4).map(Duration::from_millis).collect();
        let ok = format!(
            "at packet 3 udr-remove {table} extra\nat packet 2 udr-add {table} extra 10.99.0.0/16 None\nat packet 9 udr-remove {table} extra\n"
        );
        let s = parse(&ok, "ev.txt").unwrap();
        let err = check(&t, &[], &s, &ts, "ev.txt").unwrap_err();
        assert_eq!((err.line, err.file.as_str()), (3, "ev.txt"), "{err}");
        assert!(err.message.contains("has no route named extra"), "{err}");
        let good = format!(
            "at packet 2 udr-add {table} extra 10.99.0.0/16 None\nat packet 3 udr-remove {table} extra\nat packet 9 speaker-down nope-not-there\n"
        );
        let s = parse(&good, "ev.txt").unwrap();
        let err = check(&t, &[], &s, &ts, "ev.txt").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let fine = format!(
            "at packet 2 udr-add {table} extra 10.99.0.0/16 None\nat packet 9 udr-remove {table} extra\n"
        );
        let s = parse(&fine, "ev.txt").unwrap();
        let (resolved, late) = check(&t, &[], &s, &ts, "ev.txt").unwrap();
        assert_eq!(resolved.len(), 2);
        assert_eq!(late, [2]);
    }
}
