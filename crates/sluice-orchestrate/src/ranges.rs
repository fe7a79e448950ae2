//! Sets of partitions as sorted, disjoint, non-adjacent inclusive ranges of partition indices.
//!
//! A million consecutive partitions are one range, so what is built, planned or done costs a few
//! numbers however many partitions there are; every operation is linear in the number of ranges.

use serde::Serialize;

/// An inclusive range of partition indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Range {
    /// First partition.
    pub lo: i64,
    /// Last partition (inclusive).
    pub hi: i64,
}

impl Range {
    /// `lo..=hi` (swapped when given backwards).
    pub fn new(lo: i64, hi: i64) -> Range {
        Range {
            lo: lo.min(hi),
            hi: lo.max(hi),
        }
    }

    /// How many partitions.
    pub fn len(&self) -> u64 {
        self.hi.abs_diff(self.lo) + 1
    }

    /// Never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RangeSet {
    ranges: Vec<Range>,
}

impl RangeSet {
    /// No partitions.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The union of `ranges` (any order, overlapping or not).
    pub fn from_ranges(ranges: impl IntoIterator<Item = Range>) -> RangeSet {
        let mut v: Vec<Range> = ranges.into_iter().collect();
        v.sort_unstable();
        let mut out: Vec<Range> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(last) if r.lo <= last.hi.saturating_add(1) => last.hi = last.hi.max(r.hi),
                _ => out.push(r),
            }
        }
        RangeSet { ranges: out }
    }

    /// The set of single partitions `keys`, coalesced into ranges.
    pub fn from_keys(keys: impl IntoIterator<Item = i64>) -> RangeSet {
        RangeSet::from_ranges(keys.into_iter().map(|k| Range::new(k, k)))
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Number of ranges.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Number of partitions.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(Range::len).sum()
    }

    /// No partition.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether partition `k` is in the set (binary search).
    pub fn contains(&self, k: i64) -> bool {
        let i = self.ranges.partition_point(|r| r.hi < k);
        self.ranges.get(i).is_some_and(|r| r.lo <= k)
    }

    /// Adds `lo..=hi`, coalescing with overlapping and adjacent ranges.
    pub fn insert(&mut self, lo: i64, hi: i64) {
        let r = Range::new(lo, hi);
        // First range that could touch r: its hi + 1 >= r.lo.
        let start = self
            .ranges
            .partition_point(|x| x.hi.saturating_add(1) < r.lo);
        // First range after r that does not touch it: its lo - 1 > r.hi.
        let end = self
            .ranges
            .partition_point(|x| x.lo.saturating_sub(1) <= r.hi);
        let mut merged = r;
        if start < end {
            merged.lo = merged.lo.min(self.ranges[start].lo);
            merged.hi = merged.hi.max(self.ranges[end - 1].hi);
        }
        self.ranges.splice(start..end, [merged]);
    }

    /// Removes `lo..=hi`.
    pub fn remove(&mut self, lo: i64, hi: i64) {
        let r = Range::new(lo, hi);
        let start = self.ranges.partition_point(|x| x.hi < r.lo);
        let end = self.ranges.partition_point(|x| x.lo <= r.hi);
        if start >= end {
            return;
        }
        let mut keep = Vec::with_capacity(2);
        let (first, last) = (self.ranges[start], self.ranges[end - 1]);
        if first.lo < r.lo {
            keep.push(Range::new(first.lo, r.lo - 1));
        }
        if last.hi > r.hi {
            keep.push(Range::new(r.hi + 1, last.hi));
        }
        self.ranges.splice(start..end, keep);
    }

    /// The parts of `lo..=hi` not in the set.
    pub fn gaps(&self, lo: i64, hi: i64) -> RangeSet {
        let r = Range::new(lo, hi);
        let mut out = Vec::new();
        let mut next = r.lo;
        let start = self.ranges.partition_point(|x| x.hi < r.lo);
        for x in &self.ranges[start..] {
            if x.lo > r.hi {
                break;
            }
            if x.lo > next {
                out.push(Range::new(next, x.lo - 1));
            }
            next = x.hi.saturating_add(1);
            if next > r.hi {
                break;
            }
        }
        if next <= r.hi {
            out.push(Range::new(next, r.hi));
        }
        RangeSet { ranges: out }
    }

    /// The partitions in both sets.
    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let lo = a.lo.max(b.lo);
            let hi = a.hi.min(b.hi);
            if lo <= hi {
                out.push(Range::new(lo, hi));
            }
            if a.hi < b.hi {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet::from_ranges(out)
    }

    /// The partitions of this set that are not in `other`.
    pub fn minus(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for r in &other.ranges {
            out.remove(r.lo, r.hi);
        }
        out
    }

    /// Every partition, in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.ranges.iter().flat_map(|r| r.lo..=r.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[(i64, i64)]) -> RangeSet {
        RangeSet::from_ranges(v.iter().map(|&(a, b)| Range::new(a, b)))
    }

    fn pairs(s: &RangeSet) -> Vec<(i64, i64)> {
        s.ranges().iter().map(|r| (r.lo, r.hi)).collect()
    }

    #[test]
    fn insert_coalesces_overlapping_and_adjacent() {
        let mut s = RangeSet::new();
        s.insert(10, 12);
        s.insert(20, 25);
        assert_eq!(pairs(&s), [(10, 12), (20, 25)]);
        s.insert(13, 13); // adjacent on the left range
        assert_eq!(pairs(&s), [(10, 13), (20, 25)]);
        s.insert(14, 19); // bridges both
        assert_eq!(pairs(&s), [(10, 25)]);
        s.insert(1, 3);
        s.insert(30, 30);
        s.insert(2, 31); // swallows everything
        assert_eq!(pairs(&s), [(1, 31)]);
        s.insert(40, 35); // backwards
        assert_eq!(pairs(&s), [(1, 31), (35, 40)]);
        assert_eq!(s.count(), 31 + 6);
        assert!(s.contains(35) && !s.contains(33) && s.contains(1) && !s.contains(0));
    }

    #[test]
    fn remove_and_gaps() {
        let mut s = set(&[(1, 10), (20, 30)]);
        s.remove(5, 22);
        assert_eq!(pairs(&s), [(1, 4), (23, 30)]);
        s.remove(0, 100);
        assert!(s.is_empty());
        let s = set(&[(3, 5), (8, 8), (12, 20)]);
        assert_eq!(pairs(&s.gaps(1, 15)), [(1, 2), (6, 7), (9, 11)]);
        assert_eq!(pairs(&s.gaps(3, 5)), Vec::<(i64, i64)>::new());
        assert_eq!(pairs(&s.gaps(19, 25)), [(21, 25)]);
        assert_eq!(pairs(&RangeSet::new().gaps(4, 6)), [(4, 6)]);
        assert_eq!(
            pairs(&s.intersect(&set(&[(4, 9), (15, 40)]))),
            [(4, 5), (8, 8), (15, 20)]
        );
        assert_eq!(
            pairs(&set(&[(1, 10)]).minus(&set(&[(3, 4), (7, 7)]))),
            [(1, 2), (5, 6), (8, 10)]
        );
    }

    #[test]
    fn from_keys_coalesces_a_million_partitions() {
        let keys = (0..1_000_000i64).filter(|k| k % 250_000 != 7);
        let s = RangeSet::from_keys(keys);
        assert_eq!(s.range_count(), 5);
        assert_eq!(s.count(), 1_000_000 - 4);
        assert_eq!(
            pairs(&s.gaps(0, 999_999)),
            [
                (7, 7),
                (250_007, 250_007),
                (500_007, 500_007),
                (750_007, 750_007)
            ]
        );
    }
}
