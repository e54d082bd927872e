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

/// Reads an events file; errors name the file and line.
pub fn parse(text: &str, file: &str) -> Result<Vec<Scheduled>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |m: String| format!("{file}:{}: {m}", i + 1);
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
    Ok(Duration::from_secs_f64(v * scale))
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
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
