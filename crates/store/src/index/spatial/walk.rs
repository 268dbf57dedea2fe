//! Walks over several trees at once: the points of an area in ascending row order ([`ByRow`],
//! and [`first_rows`] for the first few), and nearest-first ([`Nearest`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Area, GeoTree, Origin, Side};

/// The `k` smallest rows in `from..n` of the points of `trees` in `area`, ascending, for an area
/// holding about `estimate` points. Rows are ids, unrelated to position, so the `k`-th smallest
/// is near `from + (n - from) * k / estimate`: one depth-first walk under twice that bound
/// usually finds them, and a short one widens the bound fourfold and walks again.
pub(crate) fn first_rows(
    trees: &[&GeoTree],
    area: &Area,
    k: usize,
    from: u32,
    n: u32,
    estimate: usize,
) -> Vec<u32> {
    let span = u64::from(n.saturating_sub(from));
    let mut width = (span * 2 * k as u64)
        .div_ceil(estimate.max(1) as u64)
        .max(1);
    let mut out = Vec::with_capacity(4 * k);
    loop {
        let below = (u64::from(from) + width).min(u64::from(n)) as u32;
        out.clear();
        for t in trees {
            t.rows_between(area, from, below, &mut out);
        }
        if out.len() >= k || below >= n {
            if out.len() > k {
                out.select_nth_unstable(k);
                out.truncate(k);
            }
            out.sort_unstable();
            return out;
        }
        width = width.saturating_mul(4);
    }
}

/// A pending step of [`ByRow`]: a node to expand, or a leaf's next point in the area.
#[derive(Debug, Clone, Copy)]
struct RowStep {
    tree: u8,
    /// `NODE`, `NODE_IN` (wholly inside the area), `POINT` or `POINT_IN`.
    what: u8,
    /// Node index, or point position.
    idx: u32,
    /// For points: the end of their leaf.
    end: u32,
}

const NODE: u8 = 0;
const NODE_IN: u8 = 1;
const POINT: u8 = 2;
const POINT_IN: u8 = 3;

/// The points of several trees in an area, in ascending row order: best-first search on the
/// nodes' smallest rows, each leaf (whose points are in row order) read lazily, one point at a
/// time. Taking the first `k` rows touches little more than the nodes whose smallest row is below
/// the `k`-th.
pub(crate) struct ByRow<'a> {
    trees: Vec<&'a GeoTree>,
    area: Area,
    /// `(row << 32 | step)`, smallest first: the row is a lower bound of every row the step
    /// yields (a node's smallest row, or the point's), the step an index into `steps`.
    heap: BinaryHeap<std::cmp::Reverse<u64>>,
    steps: Vec<RowStep>,
}

impl<'a> ByRow<'a> {
    pub fn new(trees: Vec<&'a GeoTree>, area: Area) -> ByRow<'a> {
        let mut it = ByRow {
            trees,
            area,
            heap: BinaryHeap::with_capacity(256),
            steps: Vec::with_capacity(256),
        };
        for t in 0..it.trees.len() {
            if !it.trees[t].nodes.is_empty() {
                it.push_node(t, 0, false);
            }
        }
        it
    }

    #[inline]
    fn push(&mut self, row: u32, step: RowStep) {
        self.heap.push(std::cmp::Reverse(
            u64::from(row) << 32 | self.steps.len() as u64,
        ));
        self.steps.push(step);
    }

    fn push_node(&mut self, t: usize, i: usize, inside: bool) {
        let n = &self.trees[t].nodes[i];
        let inside = inside
            || match self.area.classify(n) {
                Side::Out => return,
                Side::In => true,
                Side::Partial => false,
            };
        let step = RowStep {
            tree: t as u8,
            what: if inside { NODE_IN } else { NODE },
            idx: i as u32,
            end: 0,
        };
        self.push(n.min_row, step);
    }

    /// Queues the first point at or after position `j` of a leaf ending at `end` that lies in
    /// the area.
    fn push_point(&mut self, t: usize, j: usize, end: usize, inside: bool) {
        let tree = self.trees[t];
        let found = if inside {
            (j < end).then_some(j)
        } else {
            (j..end).find(|&j| self.area.contains(tree.lat[j], tree.lng[j]))
        };
        if let Some(j) = found {
            let step = RowStep {
                tree: t as u8,
                what: if inside { POINT_IN } else { POINT },
                idx: j as u32,
                end: end as u32,
            };
            self.push(tree.row[j], step);
        }
    }
}

impl Iterator for ByRow<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while let Some(std::cmp::Reverse(key)) = self.heap.pop() {
            let row = (key >> 32) as u32;
            let it = self.steps[(key & 0xffff_ffff) as usize];
            let t = usize::from(it.tree);
            match it.what {
                POINT | POINT_IN => {
                    let inside = it.what == POINT_IN;
                    self.push_point(t, it.idx as usize + 1, it.end as usize, inside);
                    return Some(row);
                }
                _ => {
                    let inside = it.what == NODE_IN;
                    let n = self.trees[t].nodes[it.idx as usize];
                    if n.left == 0 {
                        self.push_point(t, n.start as usize, n.end as usize, inside);
                    } else {
                        self.push_node(t, n.left as usize, inside);
                        self.push_node(t, n.left as usize + 1, inside);
                    }
                }
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy)]
struct Item {
    d: f64,
    /// 0 for a node (expanded before points at the same distance), 1 for a point.
    point: u8,
    tree: u8,
    /// Node index or point position.
    idx: u32,
    /// The row, for points; tie-breaker.
    row: u32,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // Reversed: BinaryHeap is a max-heap and we want the nearest first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.d.total_cmp(&self.d)
            .then(o.point.cmp(&self.point))
            .then(o.row.cmp(&self.row))
            .then(o.tree.cmp(&self.tree))
            .then(o.idx.cmp(&self.idx))
    }
}

/// Nearest-first iteration over several trees at once, yielding `(row, distance)` in exact
/// `(distance, row)` order, restricted to `area` (whose circle, if any, must be centred on
/// `origin`) and to distances of at least `min_d`.
pub(crate) struct Nearest<'a> {
    trees: Vec<&'a GeoTree>,
    origin: Origin,
    area: Area,
    max_d: f64,
    min_d: f64,
    heap: BinaryHeap<Item>,
}

impl<'a> Nearest<'a> {
    pub fn new(trees: Vec<&'a GeoTree>, origin: Origin, area: Area, min_d: f64) -> Nearest<'a> {
        let max_d = area.circle.map_or(f64::INFINITY, |(_, r)| r);
        let mut it = Nearest {
            trees,
            origin,
            area: Area {
                bbox: area.bbox,
                circle: None,
            },
            max_d,
            min_d,
            heap: BinaryHeap::with_capacity(256),
        };
        for t in 0..it.trees.len() {
            it.push_node(t, 0);
        }
        it
    }

    fn push_node(&mut self, t: usize, i: usize) {
        let Some(n) = self.trees[t].nodes.get(i) else {
            return;
        };
        if self.area.classify(n) == Side::Out {
            return;
        }
        let d = self.origin.lower_bound(n);
        if d > self.max_d || (self.min_d > 0.0 && self.origin.upper_bound(n) < self.min_d) {
            return;
        }
        self.heap.push(Item {
            d,
            point: 0,
            tree: t as u8,
            idx: i as u32,
            row: 0,
        });
    }
}

impl Iterator for Nearest<'_> {
    type Item = (u32, f64);

    fn next(&mut self) -> Option<(u32, f64)> {
        while let Some(it) = self.heap.pop() {
            if it.d > self.max_d {
                self.heap.clear();
                return None;
            }
            if it.point == 1 {
                return Some((it.row, it.d));
            }
            let tree = self.trees[usize::from(it.tree)];
            let n = tree.nodes[it.idx as usize];
            if n.left == 0 {
                for j in n.start as usize..n.end as usize {
                    let (lat, lng) = (tree.lat[j], tree.lng[j]);
                    if !self.area.contains(lat, lng) {
                        continue;
                    }
                    let d = self.origin.distance(lat, lng);
                    if d <= self.max_d && d >= self.min_d {
                        self.heap.push(Item {
                            d,
                            point: 1,
                            tree: it.tree,
                            idx: j as u32,
                            row: tree.row[j],
                        });
                    }
                }
            } else {
                self.push_node(usize::from(it.tree), n.left as usize);
                self.push_node(usize::from(it.tree), n.left as usize + 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use sadomap_core::{BBox, LatLng};

    use super::super::tests::points;
    use super::*;

    #[test]
    fn nearest_matches_brute_force_order() {
        let pts = points(3000);
        let tree = GeoTree::build(pts.clone());
        let o = Origin::new(LatLng::new(38.0, 138.4).unwrap());
        let mut want: Vec<(f64, u32)> = pts.iter().map(|p| (o.distance(p.0, p.1), p.2)).collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let got: Vec<(f64, u32)> = Nearest::new(vec![&tree], o, Area::default(), 0.0)
            .map(|(r, d)| (d, r))
            .collect();
        assert_eq!(got, want);
        // With a radius and a minimum distance.
        let area = Area {
            bbox: None,
            circle: Some((o, 5_000.0)),
        };
        let got: Vec<(f64, u32)> = Nearest::new(vec![&tree], o, area, 2_000.0)
            .map(|(r, d)| (d, r))
            .collect();
        let want2: Vec<(f64, u32)> = want
            .iter()
            .copied()
            .filter(|x| x.0 >= 2_000.0 && x.0 <= 5_000.0)
            .collect();
        assert!(!want2.is_empty());
        assert_eq!(got, want2);
    }

    #[test]
    fn by_row_yields_the_area_in_row_order() {
        let pts = points(5000);
        let (a, b) = pts.split_at(2000);
        let trees = [GeoTree::build(a.to_vec()), GeoTree::build(b.to_vec())];
        let o = Origin::new(LatLng::new(38.05, 138.35).unwrap());
        let boxed = |s: f64, w: f64, n: f64, e: f64| {
            Some(BBox {
                south: s,
                west: w,
                north: n,
                east: e,
            })
        };
        for area in [
            Area::default(),
            Area {
                bbox: boxed(37.9, 138.25, 38.0, 138.4),
                circle: None,
            },
            Area {
                bbox: boxed(38.0, 138.3, 38.2, 138.5),
                circle: Some((o, 8_000.0)),
            },
            Area {
                bbox: boxed(10.0, 10.0, 11.0, 11.0),
                circle: None,
            },
        ] {
            let want: Vec<u32> = pts
                .iter()
                .filter(|p| area.contains(p.0, p.1))
                .map(|p| p.2)
                .collect();
            let got: Vec<u32> = ByRow::new(trees.iter().collect(), area).collect();
            assert_eq!(got, want);
            // `first_rows` gives the same prefixes whatever its size estimate: a bound too low
            // is widened, one too high only costs time.
            let refs: Vec<&GeoTree> = trees.iter().collect();
            for (k, from) in [(1, 0), (20, 0), (20, 1234), (51, 4990), (10_000, 0)] {
                let expect: Vec<u32> = want
                    .iter()
                    .copied()
                    .filter(|&r| r >= from)
                    .take(k)
                    .collect();
                for estimate in [0, 1, 37, want.len(), 1 << 30] {
                    let got = first_rows(&refs, &area, k, from, 5000, estimate);
                    assert_eq!(got, expect, "k {k} from {from} estimate {estimate}");
                }
            }
        }
    }
}
