//! The spatial part of the index: static k-d trees over exact `f64` coordinates, one per kind and
//! one per cuisine, answering nearest-first iteration and box/circle range scans.
//!
//! Each tree keeps its points as a struct of arrays (`lat`, `lng`, `row`), ordered so every node
//! covers a contiguous range, and its nodes carry latitude/longitude bounds. Nearest-first
//! iteration is best-first search with a conservative great-circle lower bound per node, so points
//! come out in exact (haversine distance, row) order: the distance reported is the one
//! `LatLng::distance_m` computes from the stored coordinates, and ties are broken by row (= id).
//!
//! Building the trees and scanning one tree (range scans, counts) are here; the walks over several
//! trees at once, in row order and nearest-first, are in `walk`.

mod walk;

use sadomap_core::{BBox, LatLng, EARTH_RADIUS_M};

pub(crate) use walk::{first_rows, ByRow, Nearest};

/// Points per leaf.
const LEAF: usize = 16;

/// A node: 32 bytes, so a pair of siblings shares a cache line (the walks read both).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Node {
    /// Bounds rounded outwards to `f32` (see [`down`], [`up`]): still conservative, so a node
    /// is never called "out" or "in" wrongly; points are always checked at full precision.
    min_lat: f32,
    max_lat: f32,
    min_lng: f32,
    max_lng: f32,
    start: u32,
    end: u32,
    /// Index of the left child (the right one follows it); 0 for a leaf.
    left: u32,
    /// The smallest row below the node.
    min_row: u32,
}

/// One static tree.
#[derive(Debug, Default)]
pub(crate) struct GeoTree {
    lat: Vec<f64>,
    lng: Vec<f64>,
    row: Vec<u32>,
    nodes: Vec<Node>,
}

/// A reference point with its trigonometry precomputed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub at: LatLng,
    phi: f64,
    lambda: f64,
    cos_phi: f64,
}

impl Origin {
    pub fn new(at: LatLng) -> Origin {
        let phi = at.lat().to_radians();
        Origin {
            at,
            phi,
            lambda: at.lng().to_radians(),
            cos_phi: phi.cos(),
        }
    }

    /// Exact distance to a stored point, as `LatLng::distance_m` computes it.
    #[inline]
    pub fn distance(&self, lat: f64, lng: f64) -> f64 {
        LatLng::new(lat, lng).map_or(f64::INFINITY, |p| self.at.distance_m(p))
    }

    /// Whether a stored point lies within `r` metres (`distance <= r`, exactly as
    /// [`Origin::distance`] decides it). Points clearly inside or outside are told apart by a local
    /// flat-earth estimate, whose error is far below the 2 % margin used for radii up to 20 km at
    /// latitudes up to 60°; the rest get the exact distance.
    #[inline]
    pub fn within(&self, lat: f64, lng: f64, r: f64) -> bool {
        if r <= 20_000.0 && self.cos_phi >= 0.5 {
            let y = (lat.to_radians() - self.phi) * EARTH_RADIUS_M;
            let x = (lng.to_radians() - self.lambda) * self.cos_phi * EARTH_RADIUS_M;
            let d2 = x * x + y * y;
            let (inner, outer) = (r * 0.98 - 1.0, r * 1.02 + 1.0);
            if inner > 0.0 && d2 < inner * inner {
                return true;
            }
            if d2 > outer * outer {
                return false;
            }
        }
        self.distance(lat, lng) <= r
    }

    /// A lower bound of the distance to any point in the node's box.
    fn lower_bound(&self, n: &Node) -> f64 {
        let n = n.bounds();
        let (s, nn) = (n.min_lat.to_radians(), n.max_lat.to_radians());
        let (w, e) = (n.min_lng.to_radians(), n.max_lng.to_radians());
        let dlat = if self.phi < s {
            s - self.phi
        } else if self.phi > nn {
            self.phi - nn
        } else {
            0.0
        };
        let dlng = if self.lambda >= w && self.lambda <= e {
            0.0
        } else {
            circ(self.lambda, w).min(circ(self.lambda, e))
        };
        let min_cos = s.cos().min(nn.cos()).max(0.0);
        let a = (dlat / 2.0).sin().powi(2) + self.cos_phi * min_cos * (dlng / 2.0).sin().powi(2);
        // Shrink a little so rounding never lifts the bound above an exact distance.
        let a = (a * (1.0 - 1e-9)).clamp(0.0, 1.0);
        (2.0 * EARTH_RADIUS_M * a.sqrt().asin() - 1e-6).max(0.0)
    }

    /// An upper bound of the distance to any point in the node's box: to its centre, then along
    /// a meridian and a parallel.
    fn upper_bound(&self, n: &Node) -> f64 {
        let n = n.bounds();
        let (clat, clng) = ((n.min_lat + n.max_lat) / 2.0, (n.min_lng + n.max_lng) / 2.0);
        let to_centre = self.distance(clat, clng);
        let max_cos = if n.min_lat <= 0.0 && n.max_lat >= 0.0 {
            1.0
        } else {
            n.min_lat.abs().min(n.max_lat.abs()).to_radians().cos()
        };
        let half_lat = ((n.max_lat - n.min_lat) / 2.0).to_radians();
        let half_lng = ((n.max_lng - n.min_lng) / 2.0).to_radians();
        (to_centre + EARTH_RADIUS_M * (half_lat + max_cos * half_lng)) * (1.0 + 1e-9) + 1e-6
    }
}

/// Angular distance between two longitudes (radians), 0..=π.
fn circ(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() % std::f64::consts::TAU;
    d.min(std::f64::consts::TAU - d)
}

/// The part of the map a range scan covers: a box, a circle, or both.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Area {
    pub bbox: Option<BBox>,
    pub circle: Option<(Origin, f64)>,
}

#[derive(PartialEq, Eq)]
enum Side {
    Out,
    Partial,
    In,
}

impl Area {
    fn classify(&self, n: &Node) -> Side {
        let mut side = Side::In;
        if let Some(b) = &self.bbox {
            let n = n.bounds();
            if n.max_lat < b.south
                || n.min_lat > b.north
                || n.max_lng < b.west
                || n.min_lng > b.east
            {
                return Side::Out;
            }
            if !(n.min_lat >= b.south
                && n.max_lat <= b.north
                && n.min_lng >= b.west
                && n.max_lng <= b.east)
            {
                side = Side::Partial;
            }
        }
        if let Some((o, r)) = &self.circle {
            if o.lower_bound(n) > *r {
                return Side::Out;
            }
            if side == Side::In && o.upper_bound(n) > *r {
                side = Side::Partial;
            }
        }
        side
    }

    /// Whether a point lies in the area (box edges and the circle's rim included).
    #[inline]
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        if let Some(b) = &self.bbox {
            if !(lat >= b.south && lat <= b.north && lng >= b.west && lng <= b.east) {
                return false;
            }
        }
        match &self.circle {
            Some((o, r)) => o.within(lat, lng, *r),
            None => true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bbox.is_none() && self.circle.is_none()
    }
}

impl GeoTree {
    /// Builds a tree over `(lat, lng, row)` points.
    pub fn build(mut pts: Vec<(f64, f64, u32)>) -> GeoTree {
        let mut nodes = Vec::with_capacity(pts.len() / LEAF * 2 + 1);
        if !pts.is_empty() {
            nodes.push(bounds(&pts, 0));
            let mut stack = vec![0usize];
            while let Some(i) = stack.pop() {
                let (s, e) = (nodes[i].start as usize, nodes[i].end as usize);
                if e - s <= LEAF {
                    // Leaves keep their points in row order (see `ByRow`).
                    pts[s..e].sort_unstable_by_key(|p| p.2);
                    continue;
                }
                let n = nodes[i].bounds();
                let cos = ((n.min_lat + n.max_lat) / 2.0).to_radians().cos();
                let by_lat = n.max_lat - n.min_lat >= (n.max_lng - n.min_lng) * cos;
                let mid = (s + e) / 2;
                let slice = &mut pts[s..e];
                if by_lat {
                    slice.select_nth_unstable_by(mid - s, |a, b| a.0.total_cmp(&b.0));
                } else {
                    slice.select_nth_unstable_by(mid - s, |a, b| a.1.total_cmp(&b.1));
                }
                let left = nodes.len();
                nodes[i].left = left as u32;
                nodes.push(bounds(&pts[s..mid], s));
                nodes.push(bounds(&pts[mid..e], mid));
                stack.push(left);
                stack.push(left + 1);
            }
        }
        nodes.shrink_to_fit();
        GeoTree {
            lat: pts.iter().map(|p| p.0).collect(),
            lng: pts.iter().map(|p| p.1).collect(),
            row: pts.iter().map(|p| p.2).collect(),
            nodes,
        }
    }

    pub fn len(&self) -> usize {
        self.row.len()
    }

    /// `(row, position)` of every point, for the rows' location column.
    pub fn positions(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.row.iter().enumerate().map(|(i, &r)| (r, i as u32))
    }

    /// The coordinates at `pos`.
    #[inline]
    pub fn point(&self, pos: u32) -> Option<(f64, f64)> {
        let i = pos as usize;
        Some((*self.lat.get(i)?, *self.lng.get(i)?))
    }

    pub fn memory_bytes(&self) -> usize {
        self.lat.capacity() * 8
            + self.lng.capacity() * 8
            + self.row.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    /// Calls `f(row)` for every point in `area`, stopping early when `f` returns `false`.
    pub fn for_each_in(&self, area: &Area, f: &mut impl FnMut(u32) -> bool) -> bool {
        if self.nodes.is_empty() {
            return true;
        }
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let n = &self.nodes[i];
            let (s, e) = (n.start as usize, n.end as usize);
            match area.classify(n) {
                Side::Out => {}
                Side::In => {
                    for &r in &self.row[s..e] {
                        if !f(r) {
                            return false;
                        }
                    }
                }
                Side::Partial if n.left == 0 => {
                    for j in s..e {
                        if area.contains(self.lat[j], self.lng[j]) && !f(self.row[j]) {
                            return false;
                        }
                    }
                }
                Side::Partial => {
                    stack.push(n.left as usize + 1);
                    stack.push(n.left as usize);
                }
            }
        }
        true
    }

    /// Appends to `out` the rows in `from..below` of the points in `area`, in tree order. Subtrees
    /// whose smallest row is `below` or more are skipped, so a low `below` reads little more than
    /// the nodes and leaves that hold its rows; the walk follows the arrays' order, which the
    /// hardware prefetcher rewards.
    pub fn rows_between(&self, area: &Area, from: u32, below: u32, out: &mut Vec<u32>) {
        if self.nodes.is_empty() {
            return;
        }
        // Depth-first with a fixed stack: a tree of 2^32 points is under 40 levels deep.
        let mut stack = [(0u32, false); 64];
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let (i, inside) = stack[top];
            let n = &self.nodes[i as usize];
            if n.min_row >= below {
                continue;
            }
            let inside = inside
                || match area.classify(n) {
                    Side::Out => continue,
                    Side::In => true,
                    Side::Partial => false,
                };
            if n.left == 0 {
                let (s, e) = (n.start as usize, n.end as usize);
                // Leaves are in row order: stop at the first row at or past `below`.
                for j in s..e {
                    let r = self.row[j];
                    if r >= below {
                        break;
                    }
                    if r >= from && (inside || area.contains(self.lat[j], self.lng[j])) {
                        out.push(r);
                    }
                }
            } else {
                debug_assert!(top + 2 <= stack.len(), "median splits keep trees shallow");
                stack[top] = (n.left + 1, inside);
                stack[top + 1] = (n.left, inside);
                top += 2;
            }
        }
    }

    /// Counts the points in `area`: `(lower, upper)` bounds that stop descending at nodes of at
    /// most `coarse` points (with `coarse` 0, both are the exact count).
    pub fn count_in(&self, area: &Area, coarse: usize) -> (usize, usize) {
        if self.nodes.is_empty() {
            return (0, 0);
        }
        let (mut lo, mut hi) = (0, 0);
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let n = &self.nodes[i];
            let (s, e) = (n.start as usize, n.end as usize);
            match area.classify(n) {
                Side::Out => {}
                Side::In => {
                    lo += e - s;
                    hi += e - s;
                }
                Side::Partial if e - s <= coarse => hi += e - s,
                Side::Partial if n.left == 0 => {
                    let c = (s..e)
                        .filter(|&j| area.contains(self.lat[j], self.lng[j]))
                        .count();
                    lo += c;
                    hi += c;
                }
                Side::Partial => {
                    stack.push(n.left as usize + 1);
                    stack.push(n.left as usize);
                }
            }
        }
        (lo, hi)
    }
}

fn bounds(pts: &[(f64, f64, u32)], start: usize) -> Node {
    let (mut min_lat, mut max_lat) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut min_lng, mut max_lng) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut min_row = u32::MAX;
    for p in pts {
        min_row = min_row.min(p.2);
        min_lat = min_lat.min(p.0);
        max_lat = max_lat.max(p.0);
        min_lng = min_lng.min(p.1);
        max_lng = max_lng.max(p.1);
    }
    Node {
        min_lat: down(min_lat),
        max_lat: up(max_lat),
        min_lng: down(min_lng),
        max_lng: up(max_lng),
        start: start as u32,
        end: (start + pts.len()) as u32,
        left: 0,
        min_row,
    }
}

/// A node's bounds in `f64`.
#[derive(Clone, Copy)]
struct Bounds {
    min_lat: f64,
    max_lat: f64,
    min_lng: f64,
    max_lng: f64,
}

impl Node {
    #[inline]
    fn bounds(&self) -> Bounds {
        Bounds {
            min_lat: f64::from(self.min_lat),
            max_lat: f64::from(self.max_lat),
            min_lng: f64::from(self.min_lng),
            max_lng: f64::from(self.max_lng),
        }
    }
}

/// The largest `f32` at or below `x`.
fn down(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        f.next_down()
    } else {
        f
    }
}

/// The smallest `f32` at or above `x`.
fn up(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f.next_up()
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn points(n: usize) -> Vec<(f64, f64, u32)> {
        let mut s = 7;
        (0..n)
            .map(|i| {
                (
                    37.8 + lcg(&mut s) * 0.5,
                    138.2 + lcg(&mut s) * 0.4,
                    i as u32,
                )
            })
            .collect()
    }

    #[test]
    fn range_scans_and_counts_match_brute_force() {
        let pts = points(5000);
        let tree = GeoTree::build(pts.clone());
        let o = Origin::new(LatLng::new(38.05, 138.35).unwrap());
        let areas = [
            Area {
                bbox: Some(BBox {
                    south: 37.9,
                    west: 138.25,
                    north: 38.0,
                    east: 138.4,
                }),
                circle: None,
            },
            Area {
                bbox: None,
                circle: Some((o, 8_000.0)),
            },
            Area {
                bbox: Some(BBox {
                    south: 38.0,
                    west: 138.3,
                    north: 38.2,
                    east: 138.5,
                }),
                circle: Some((o, 8_000.0)),
            },
        ];
        for a in areas {
            let mut want: Vec<u32> = pts
                .iter()
                .filter(|p| a.contains(p.0, p.1))
                .map(|p| p.2)
                .collect();
            let mut got = vec![];
            tree.for_each_in(&a, &mut |r| {
                got.push(r);
                true
            });
            got.sort();
            want.sort();
            assert!(!want.is_empty());
            assert_eq!(got, want);
            assert_eq!(tree.count_in(&a, 0), (want.len(), want.len()));
            let (lo, hi) = tree.count_in(&a, 256);
            assert!(lo <= want.len() && want.len() <= hi, "{lo} {hi}");
        }
    }

    #[test]
    fn node_bounds_round_outwards() {
        for x in [
            0.0,
            38.123_456_789,
            138.987_654_321,
            -0.1,
            1e-30,
            179.999_999_9,
        ] {
            assert!(f64::from(down(x)) <= x && f64::from(up(x)) >= x, "{x}");
            assert!(
                f64::from(up(x)) - f64::from(down(x))
                    <= 2.0 * f64::from(f32::EPSILON) * x.abs().max(1e-30)
            );
        }
        assert_eq!(std::mem::size_of::<Node>(), 32);
    }

    #[test]
    fn fast_within_agrees_with_exact_distance() {
        let pts = points(20_000);
        for (lat, lng) in [(38.0, 138.4), (37.8, 138.2), (38.3, 138.6)] {
            let o = Origin::new(LatLng::new(lat, lng).unwrap());
            for r in [0.0, 50.0, 1_000.0, 7_777.0, 19_999.0, 40_000.0] {
                for p in &pts {
                    assert_eq!(o.within(p.0, p.1, r), o.distance(p.0, p.1) <= r);
                }
            }
        }
    }

    #[test]
    fn bounds_are_conservative_far_away() {
        let pts = points(500);
        let tree = GeoTree::build(pts.clone());
        for (lat, lng) in [(-38.0, -41.6), (89.9, 0.0), (0.0, 138.3), (38.0, -179.9)] {
            let o = Origin::new(LatLng::new(lat, lng).unwrap());
            for n in &tree.nodes {
                let (lb, ub) = (o.lower_bound(n), o.upper_bound(n));
                for j in n.start as usize..n.end as usize {
                    let d = o.distance(tree.lat[j], tree.lng[j]);
                    assert!(lb <= d && d <= ub, "{lb} <= {d} <= {ub}");
                }
            }
        }
    }
}
