//! Sorting helpers for route lists that arrive mostly in order.

/// The longest run `[a, b)` of `0..n` in which each item `i` after the
/// first continues the run (`continues(i)`: item `i - 1` may precede it).
pub fn longest_run(n: usize, continues: impl Fn(usize) -> bool) -> std::ops::Range<usize> {
    let (mut a, mut b, mut start) = (0, n.min(1), 0);
    for i in 1..n {
        if !continues(i) {
            start = i;
        } else if i + 1 - start > b - a {
            (a, b) = (start, i + 1);
        }
    }
    a..b
}

/// `v` sorted.
pub fn sorted_mostly_in_order<T: Ord>(v: Vec<T>) -> Vec<T> {
    sorted_mostly_in_order_by(v, T::cmp)
}

/// `v` sorted by `cmp`, for vectors that come mostly in order (NIC
/// tables: a few system and user routes around the long sorted run of a
/// gateway's or Route Server's routes): the longest ascending run stays
/// as it is, the few others are sorted and each put where a binary search
/// in the run says, instead of a general sort shifting the long run at
/// every merge.
pub fn sorted_mostly_in_order_by<T>(
    v: Vec<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    use std::cmp::Ordering::Greater;
    let std::ops::Range { start: a, end: b } =
        longest_run(v.len(), |i| cmp(&v[i - 1], &v[i]) != Greater);
    if b - a == v.len() {
        return v;
    }
    let mut v = v;
    if b - a < v.len() / 2 {
        v.sort_by(&cmp);
        return v;
    }
    let mut tail = v.split_off(b);
    let run = v.split_off(a);
    v.append(&mut tail);
    v.sort_by(&cmp);
    let mut out = Vec::with_capacity(run.len() + v.len());
    let mut run = run.into_iter();
    for x in v {
        let before = run.as_slice().partition_point(|r| cmp(r, &x) != Greater);
        out.extend(run.by_ref().take(before));
        out.push(x);
    }
    out.extend(run);
    out
}
