//! Prefixes alike converge once: a class groups prefixes by everything
//! convergence reads of a prefix (originators per direction, family,
//! default route, range and prefix-filter tests), and the class's
//! converged state is copied to its other members.

use super::*;

/// Prefixes grouped by everything their convergence reads of them. A
/// prefix enters BGP decisions only through who originates it (and a
/// gateway's statics for it), its address family, whether it is the default
/// route, and per session direction the prefix tests of export and import
/// (VNet ranges, R25/R36/R37, prefix filters). Prefixes equal in all of
/// these converge to the same state with only the prefix differing: one
/// convergence per class, copied to its other members.
pub(super) struct Classes {
    /// Per prefix (in the order given): its class.
    pub(super) of: Vec<u32>,
    /// Per class: its first prefix's index and how many prefixes it has.
    pub(super) rep: Vec<usize>,
    pub(super) size: Vec<usize>,
}

impl Classes {
    pub(super) fn new(ctx: &Ctx, prefixes: &[IpNet]) -> Classes {
        // What each direction tests of a prefix (the others add nothing).
        let own: Vec<usize> = (0..ctx.dirs.len())
            .filter(|&d| !ctx.dirs[d].own.is_empty())
            .collect();
        let statics: Vec<usize> = (0..ctx.dirs.len())
            .filter(|&d| !ctx.dirs[d].statics.is_empty())
            .collect();
        // Export tests a prefix inside a range (R25, R36); import tests a
        // prefix equal to a VNet prefix (R37).
        let lists = |list: for<'a> fn(&'a Dir<'a>) -> &'a [IpNet]| -> Vec<&[IpNet]> {
            ctx.dirs
                .iter()
                .map(list)
                .filter(|r| !r.is_empty())
                .collect()
        };
        let inside = lists(|d| &d.ranges);
        let equal = lists(|d| &d.to_vnet_prefixes);
        let filters: Vec<(&[IpNet], &[IpNet])> = ctx
            .dirs
            .iter()
            .flat_map(|d| {
                d.cfg_from
                    .map(|c| (&c.export_allow[..], &c.export_deny[..]))
                    .into_iter()
                    .chain(d.cfg_to.map(|c| (&c.import_allow[..], &c.import_deny[..])))
            })
            .filter(|(a, d)| !a.is_empty() || !d.is_empty())
            .collect();
        // Cursors into the sorted originations and statics (the prefixes
        // come sorted: one merge walk each).
        let mut at_own = vec![0usize; own.len()];
        let mut at_static = vec![0usize; statics.len()];
        let mut known: rustc_hash::FxHashMap<Vec<u64>, u32> = Default::default();
        let mut sig: Vec<u64> = Vec::new();
        let mut out = Classes {
            of: Vec::with_capacity(prefixes.len()),
            rep: Vec::new(),
            size: Vec::new(),
        };
        debug_assert!(
            prefixes.windows(2).all(|w| w[0] < w[1]),
            "prefixes sorted and distinct (Ctx::prefixes)"
        );
        for (i, &prefix) in prefixes.iter().enumerate() {
            sig.clear();
            let mut word = 0u64;
            let mut bits = 0u32;
            let mut bit = |b: bool, sig: &mut Vec<u64>| {
                word |= u64::from(b) << bits;
                bits += 1;
                if bits == 64 {
                    sig.push(word);
                    (word, bits) = (0, 0);
                }
            };
            bit(prefix.network().is_ipv4(), &mut sig);
            bit(prefix.prefix_len() == 0, &mut sig);
            let has = |list: &[Path], at: &mut usize| {
                while list.get(*at).is_some_and(|p| p.prefix < prefix) {
                    *at += 1;
                }
                list.get(*at).is_some_and(|p| p.prefix == prefix)
            };
            for (k, &d) in own.iter().enumerate() {
                let b = has(&ctx.dirs[d].own, &mut at_own[k]);
                bit(b, &mut sig);
            }
            // A gateway's statics carry their site and address: a prefix
            // with any is a class of its own (they are few).
            let single = statics
                .iter()
                .zip(&mut at_static)
                .fold(false, |any, (&d, at)| has(&ctx.dirs[d].statics, at) | any);
            for r in &inside {
                bit(covered_by(prefix, r), &mut sig);
            }
            for r in &equal {
                bit(r.contains(&prefix), &mut sig);
            }
            for (allow, deny) in &filters {
                bit(allow.is_empty() || covered_by(prefix, allow), &mut sig);
                bit(covered_by(prefix, deny), &mut sig);
            }
            sig.push(word);
            let class = if single {
                None
            } else {
                known.get(&sig[..]).copied()
            };
            let c = match class {
                Some(c) => {
                    out.size[c as usize] += 1;
                    c
                }
                None => {
                    let c = out.rep.len() as u32;
                    out.rep.push(i);
                    out.size.push(1);
                    if !single {
                        known.insert(sig.clone(), c);
                    }
                    c
                }
            };
            out.of.push(c);
        }
        out
    }
}
