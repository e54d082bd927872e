//! Longest-prefix match over a table with the R16 exception, every
//! candidate route returned with why it won or lost.

use super::*;

/// Platform addresses that routes cannot override (R19).
pub const PLATFORM_IPS: [IpAddr; 2] = [
    IpAddr::V4(std::net::Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
];

/// Why a candidate route did or did not decide a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This route decides the packet.
    Selected,
    /// A longer prefix matched.
    LessSpecific { winner_len: u8 },
    /// Lost the same-prefix tie-break (the route is Invalid).
    Invalid(String),
    /// A BGP route ignored because the destination is inside a VNet, peering or
    /// service endpoint system route (R16).
    IgnoredForSystemRoute { system: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub index: usize,
    pub verdict: Verdict,
}

/// The outcome of one lookup, with every matching route and why it won or lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The index of the selected route in the table, if any matched.
    pub selected: Option<usize>,
    /// `dst` is a platform address that no route can override (R19).
    pub platform: bool,
    pub candidates: Vec<Candidate>,
}

/// Longest-prefix match over the Active routes with the R16 exception (R14, R16).
pub fn lookup(table: &Table, dst: IpAddr) -> Decision {
    if PLATFORM_IPS.contains(&dst) {
        return Decision {
            selected: None,
            platform: true,
            candidates: Vec::new(),
        };
    }
    let matching: Vec<usize> = (0..table.routes.len())
        .filter(|&i| table.routes[i].prefix.contains(&dst))
        .collect();
    let system = matching
        .iter()
        .copied()
        .find(|&i| table.routes[i].state == State::Active && table.routes[i].is_vnet_system());
    let eligible = |i: usize| {
        let r = &table.routes[i];
        r.state == State::Active && !(system.is_some() && r.source == Source::VirtualNetworkGateway)
    };
    let selected = matching
        .iter()
        .copied()
        .filter(|&i| eligible(i))
        .max_by_key(|&i| (table.routes[i].prefix.prefix_len(), std::cmp::Reverse(i)));
    let win_len = selected.map_or(0, |i| table.routes[i].prefix.prefix_len());
    let mut candidates: Vec<Candidate> = matching
        .iter()
        .map(|&i| {
            let r = &table.routes[i];
            let verdict = if Some(i) == selected {
                Verdict::Selected
            } else if r.state == State::Invalid {
                Verdict::Invalid(r.invalid_because.as_deref().unwrap_or_default().to_string())
            } else if let (Some(sys), Source::VirtualNetworkGateway) = (system, r.source) {
                Verdict::IgnoredForSystemRoute { system: sys }
            } else {
                Verdict::LessSpecific {
                    winner_len: win_len,
                }
            };
            Candidate { index: i, verdict }
        })
        .collect();
    // Most specific first, the selected route on top.
    candidates.sort_by_key(|c| {
        (
            c.verdict != Verdict::Selected,
            std::cmp::Reverse(table.routes[c.index].prefix.prefix_len()),
            c.index,
        )
    });
    Decision {
        selected,
        platform: false,
        candidates,
    }
}
