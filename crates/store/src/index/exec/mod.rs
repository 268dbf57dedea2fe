//! Query planning and execution.
//!
//! A query is compiled into a [`Plan`]: the column filter, the prepared text query, the spatial
//! area, and the trees that can hold matches (the cuisines' trees when cuisines are asked for,
//! else the kinds'). Candidates then come from the cheapest source for the sort order, each
//! candidate is checked against the whole filter, and the page is cut after the cursor:
//!
//! - id order: a scan of rows (rows are in id order), of the text postings, or of the area's
//!   points in row order (best-first on the trees' smallest rows), all stopping at the limit;
//! - distance order: best-first nearest iteration over the trees (stopping at the radius and at
//!   the limit, skipping subtrees wholly before the cursor), or the text matches collected and
//!   sorted; places without coordinates follow, in id order;
//! - name, rating and price orders: a scan of the precomputed permutation from the cursor's
//!   position, stopping at the limit, or the matches of the smallest source collected and sorted.
//!
//! Costs are estimated from the posting counts and a coarse count of the trees' points in the
//! area; the result does not depend on the choice, only the time does.
//!
//! The end-to-end tests (random queries against a brute-force reference, paging) are in `tests`.

use std::cmp::Ordering;

use sadomap_core::{Cuisine, Locality};

use super::columns::{
    kind_code, rating_code, ColumnFilter, DISTRICT_OTHER, DISTRICT_OUTSIDE, DISTRICT_UNKNOWN,
    NO_LOCATION,
};
use super::cursor::{Cursor, CursorKey};
use super::query::{Hit, Query, QueryError, QueryResult, Sort};
use super::spatial::{first_rows, Area, ByRow, GeoTree, Nearest, Origin};
use super::text::TextQuery;
use super::{price_key, rating_key, Index};

/// Node size at which area estimates stop descending.
const COARSE: usize = 256;

/// A compiled query.
pub(crate) struct Plan<'a> {
    ix: &'a Index,
    cf: ColumnFilter,
    text: Option<TextQuery>,
    area: Area,
    origin: Option<Origin>,
    trees: Vec<&'a GeoTree>,
    /// Whether membership of `trees` already implies the column filter.
    trees_imply_cf: bool,
}

/// Where the page starts: strictly after `(key, id)`; rows at or after `row` share the id order.
struct After {
    key: CursorKey,
    /// First row whose id is greater than the cursor's id.
    row: usize,
}

impl Index {
    /// Answers a query.
    pub fn query(&self, q: &Query) -> Result<QueryResult, QueryError> {
        q.validate()?;
        let plan = Plan::new(self, q);
        let after = q.cursor.as_ref().map(|c| After {
            key: c.key().clone(),
            row: self.records.partition_point(|r| r.id <= c.last_id()),
        });
        let mut rows = if q.limit == 0 {
            Vec::new()
        } else {
            match q.sort {
                Sort::Id => plan.by_id(q.limit + 1, after.as_ref()),
                Sort::Distance => plan.by_distance(q.limit + 1, after.as_ref()),
                Sort::Name | Sort::Rating | Sort::Price => {
                    plan.by_key(q.sort, q.limit + 1, after.as_ref())
                }
            }
        };
        let more = rows.len() > q.limit;
        rows.truncate(q.limit);
        let next_cursor = match rows.last() {
            Some(&(row, d)) if more => Some(Cursor::new(
                q.sort,
                plan.cursor_key(q.sort, row, d),
                self.records[row as usize].id,
            )),
            _ => None,
        };
        let hits = rows
            .into_iter()
            .map(|(row, d)| Hit {
                id: self.records[row as usize].id,
                distance_m: d.or_else(|| plan.distance(row as usize)),
            })
            .collect();
        let total = q.with_total.then(|| plan.count());
        Ok(QueryResult {
            hits,
            total,
            next_cursor,
        })
    }
}

impl<'a> Plan<'a> {
    fn new(ix: &'a Index, q: &Query) -> Plan<'a> {
        let cols = &ix.cols;
        let kinds = if q.kinds.is_empty() {
            0b111
        } else {
            q.kinds.iter().fold(0u8, |m, &k| m | 1 << kind_code(k))
        };
        let mut other_districts = Vec::new();
        let districts = (!q.districts.is_empty()).then(|| {
            let mut mask = [0u64; 4];
            let mut set = |d: u8| mask[usize::from(d >> 6)] |= 1 << (d & 63);
            for l in &q.districts {
                match l {
                    Locality::Unknown => set(DISTRICT_UNKNOWN),
                    Locality::Outside => set(DISTRICT_OUTSIDE),
                    Locality::District(name) => {
                        match cols.district_names.iter().position(|d| d == name) {
                            Some(i) => set(i as u8),
                            None => {
                                set(DISTRICT_OTHER);
                                other_districts.push(name.clone());
                            }
                        }
                    }
                }
            }
            mask
        });
        let cuisines = (!q.cuisines.is_empty())
            .then(|| q.cuisines.iter().fold(0u32, |m, c| m | 1 << c.index()));
        let price = (q.price_min.is_some() || q.price_max.is_some()).then(|| {
            (
                q.price_min.map_or(1, |p| p.rank()),
                q.price_max.map_or(4, |p| p.rank()),
            )
        });
        let cf = ColumnFilter {
            kinds,
            districts,
            other_districts,
            cuisines,
            price,
            rating: q.min_rating.map_or(0, rating_code),
            features: q.features.bits(),
            open_at: q.open_at,
        };
        let origin = q.near.map(|(p, _)| Origin::new(p));
        let area = Area {
            bbox: q.bbox,
            circle: match (origin, q.near) {
                (Some(o), Some((_, Some(r)))) => Some((o, r)),
                _ => None,
            },
        };
        let mut rest = cf.clone();
        let trees: Vec<&GeoTree> = if q.cuisines.is_empty() {
            rest.kinds = 0b111;
            (0..ix.kind_trees.len())
                .filter(|&k| kinds & (1 << k) != 0)
                .map(|k| &ix.kind_trees[k])
                .collect()
        } else {
            rest.cuisines = None;
            let mut cs: Vec<Cuisine> = q.cuisines.clone();
            cs.sort();
            cs.dedup();
            cs.iter()
                .filter_map(|c| ix.cuisine_trees.get(usize::from(c.index())))
                .collect()
        };
        let text =
            q.q.as_deref()
                .and_then(|t| ix.text.prepare(t, q.expand_synonyms));
        Plan {
            ix,
            trees_imply_cf: rest.is_trivial(),
            cf,
            text,
            area,
            origin,
            trees,
        }
    }

    /// The coordinates of `row`.
    #[inline]
    fn location(&self, row: usize) -> Option<(f64, f64)> {
        let cols = &self.ix.cols;
        let loc = cols.loc[row];
        if loc == NO_LOCATION {
            return None;
        }
        self.ix
            .kind_trees
            .get(usize::from(cols.kind[row]))?
            .point(loc)
    }

    fn distance(&self, row: usize) -> Option<f64> {
        let o = self.origin?;
        self.location(row).map(|(lat, lng)| o.distance(lat, lng))
    }

    /// The whole filter; `in_area` when the source already guarantees the area.
    #[inline]
    fn matches(&self, row: usize, in_area: bool) -> bool {
        let ix = self.ix;
        if !self.cf.matches(&ix.cols, &ix.records, row) {
            return false;
        }
        if !in_area && !self.area.is_empty() {
            match self.location(row) {
                Some((lat, lng)) if self.area.contains(lat, lng) => {}
                _ => return false,
            }
        }
        match &self.text {
            Some(t) => ix.text.matches(t, &ix.cols, row),
            None => true,
        }
    }

    fn tree_points(&self) -> usize {
        self.trees.iter().map(|t| t.len()).sum()
    }

    /// Lower and upper bounds of the points in the area, if there is an area.
    fn area_estimate(&self) -> Option<(usize, usize)> {
        (!self.area.is_empty()).then(|| {
            self.trees.iter().fold((0, 0), |(lo, hi), t| {
                let (l, h) = t.count_in(&self.area, COARSE);
                (lo + l, hi + h)
            })
        })
    }

    /// The `k` smallest matches in the area after `keep`, in `cmp` order.
    fn collect_area(
        &self,
        k: usize,
        keep: impl Fn(u32) -> bool,
        cmp: impl Fn(&u32, &u32) -> Ordering,
    ) -> Vec<u32> {
        let mut top = Smallest::new(k, cmp);
        let check = !(self.trees_imply_cf && self.text.is_none());
        for t in &self.trees {
            t.for_each_in(&self.area, &mut |r| {
                if top.admits(&r) && keep(r) && (!check || self.matches(r as usize, true)) {
                    top.push(r);
                }
                true
            });
        }
        top.finish()
    }

    /// Every text match, ascending.
    fn collect_text(&self, t: &TextQuery, keep: impl Fn(u32) -> bool) -> Vec<u32> {
        self.ix
            .text
            .candidates(t)
            .filter(|&r| keep(r) && self.matches(r as usize, false))
            .collect()
    }

    /// Estimated sizes of each complete source: area `(lower, upper)`, text, scan.
    fn sources(&self) -> (Option<(usize, usize)>, Option<usize>, usize) {
        (
            self.area_estimate(),
            self.text.as_ref().map(|t| t.estimate),
            self.ix.len(),
        )
    }

    /// The first `want` matches in id order after the cursor.
    fn by_id(&self, want: usize, after: Option<&After>) -> Vec<(u32, Option<f64>)> {
        let start = after.map_or(0, |a| a.row);
        let n = self.ix.len();
        // All three sources stop at the limit. An area is read in row order too (`ByRow`), at
        // a cost near that of the matches it yields: it is taken unless the text is cheaper.
        let best = match (&self.text, self.area.is_empty()) {
            (None, true) => 0,
            (None, false) => 2,
            (Some(_), _) => {
                let (area, text, _) = self.sources();
                // Early-stopping streams cost about want × size / matches.
                let matches_lo = area.map_or(n, |a| a.0).min(text.unwrap_or(n)).max(1);
                let scan_cost = (want.saturating_mul(n) / matches_lo).min(n);
                let text_cost = text.map(|t| 2 * (want.saturating_mul(t) / matches_lo).min(t));
                let area_cost = area.map(|a| 2 * (want.saturating_mul(a.1) / matches_lo).min(a.1));
                [Some(scan_cost), text_cost, area_cost]
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.map(|c| (c, i)))
                    .min()
                    .map_or(0, |(_, i)| i)
            }
        };
        let rows: Vec<u32> = match (best, &self.text) {
            (1, Some(t)) => self
                .ix
                .text
                .candidates(t)
                .filter(|&r| r as usize >= start && self.matches(r as usize, false))
                .take(want)
                .collect(),
            (2, _) if self.trees_imply_cf && self.text.is_none() => {
                // Every point in the area matches: walk only the rows below a guessed bound.
                let (lo, hi) = self.area_estimate().unwrap_or((n, n));
                let from = u32::try_from(start).unwrap_or(u32::MAX);
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                first_rows(&self.trees, &self.area, want, from, n, (lo + hi) / 2)
            }
            (2, _) => ByRow::new(self.trees.clone(), self.area)
                .filter(|&r| r as usize >= start && self.matches(r as usize, true))
                .take(want)
                .collect(),
            _ => (start..n)
                .filter(|&r| self.matches(r, false))
                .take(want)
                .map(|r| r as u32)
                .collect(),
        };
        rows.into_iter().map(|r| (r, None)).collect()
    }

    /// The first `want` matches in distance order after the cursor.
    fn by_distance(&self, want: usize, after: Option<&After>) -> Vec<(u32, Option<f64>)> {
        let Some(origin) = self.origin else {
            return Vec::new();
        };
        let (cd, crow) = match after {
            Some(After {
                key: CursorKey::Distance(d),
                row,
            }) => (*d, *row),
            _ => (0.0, 0),
        };
        let is_after = |d: f64, row: u32| d > cd || (d == cd && row as usize >= crow);
        let mut out: Vec<(u32, Option<f64>)> = Vec::with_capacity(want);
        let text_small = self
            .text
            .as_ref()
            .filter(|t| t.estimate * 8 < self.tree_points().max(1) && t.estimate <= 50_000);
        if let Some(t) = text_small {
            let mut v: Vec<(f64, u32)> = self
                .collect_text(t, |_| true)
                .into_iter()
                .filter_map(|r| self.distance(r as usize).map(|d| (d, r)))
                .filter(|&(d, r)| is_after(d, r))
                .collect();
            smallest(&mut v, want, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.extend(v.into_iter().map(|(d, r)| (r, Some(d))));
        } else if cd.is_finite() {
            let it = Nearest::new(self.trees.clone(), origin, self.area, cd);
            for (r, d) in it {
                if is_after(d, r) && self.matches(r as usize, true) {
                    out.push((r, Some(d)));
                    if out.len() == want {
                        break;
                    }
                }
            }
        }
        // Places without coordinates come last, in id order; an area excludes them.
        if out.len() < want && self.area.is_empty() {
            let from = if cd.is_infinite() { crow } else { 0 };
            let start = self.ix.unlocated.partition_point(|&r| (r as usize) < from);
            out.extend(
                self.ix.unlocated[start..]
                    .iter()
                    .filter(|&&r| self.matches(r as usize, true))
                    .take(want - out.len())
                    .map(|&r| (r, None)),
            );
        }
        out
    }

    /// Compares rows in a key order (ties by row, which is id order).
    fn cmp_rows(&self, sort: Sort, a: u32, b: u32) -> Ordering {
        let ix = self.ix;
        let (a, b) = (a as usize, b as usize);
        let by = match sort {
            Sort::Name => ix.text.name_key(a).cmp(ix.text.name_key(b)),
            Sort::Rating => rating_key(&ix.cols, a).cmp(&rating_key(&ix.cols, b)),
            Sort::Price => price_key(&ix.cols, a).cmp(&price_key(&ix.cols, b)),
            Sort::Id | Sort::Distance => Ordering::Equal,
        };
        by.then(a.cmp(&b))
    }

    /// Compares a row with the cursor position.
    fn cmp_after(&self, sort: Sort, row: u32, after: &After) -> Ordering {
        let ix = self.ix;
        let r = row as usize;
        let by = match (&after.key, sort) {
            (CursorKey::Name(k), Sort::Name) => ix.text.name_key(r).cmp(k.as_str()),
            (CursorKey::Num(k), Sort::Rating) => rating_key(&ix.cols, r).cmp(k),
            (CursorKey::Num(k), Sort::Price) => price_key(&ix.cols, r).cmp(k),
            _ => Ordering::Equal,
        };
        by.then(r.cmp(&after.row))
    }

    /// The first `want` matches in name, rating or price order after the cursor.
    fn by_key(&self, sort: Sort, want: usize, after: Option<&After>) -> Vec<(u32, Option<f64>)> {
        let ix = self.ix;
        let perm = match sort {
            Sort::Name => &ix.by_name,
            Sort::Rating => &ix.by_rating,
            _ => &ix.by_price,
        };
        let start = after.map_or(0, |a| {
            perm.partition_point(|&r| self.cmp_after(sort, r, a) == Ordering::Less)
        });
        let is_after = |r: u32| after.is_none_or(|a| self.cmp_after(sort, r, a) != Ordering::Less);
        let n = ix.len();
        let (area, text, _) = self.sources();
        let matches_lo = area.map_or(n, |a| a.0).min(text.unwrap_or(n)).max(1);
        let perm_cost = (want.saturating_mul(n) / matches_lo).min(n);
        let collect = [(area.map(|a| a.1), 0), (text.map(|t| 2 * t), 1)]
            .into_iter()
            .filter_map(|(c, i)| c.map(|c| (c, i)))
            .min();
        let mut v = match collect {
            Some((c, 0)) if c < perm_cost => {
                return self
                    .collect_area(want, is_after, |&a, &b| self.cmp_rows(sort, a, b))
                    .into_iter()
                    .map(|r| (r, None))
                    .collect()
            }
            Some((c, _)) if c < perm_cost => match &self.text {
                Some(t) => self.collect_text(t, is_after),
                None => Vec::new(),
            },
            _ => {
                return perm[start..]
                    .iter()
                    .filter(|&&r| self.matches(r as usize, false))
                    .take(want)
                    .map(|&r| (r, None))
                    .collect()
            }
        };
        smallest(&mut v, want, |&a, &b| self.cmp_rows(sort, a, b));
        v.into_iter().map(|r| (r, None)).collect()
    }

    fn cursor_key(&self, sort: Sort, row: u32, d: Option<f64>) -> CursorKey {
        let r = row as usize;
        match sort {
            Sort::Id => CursorKey::None,
            Sort::Distance => CursorKey::Distance(d.unwrap_or(f64::INFINITY)),
            Sort::Name => CursorKey::Name(self.ix.text.name_key(r).to_owned()),
            Sort::Rating => CursorKey::Num(rating_key(&self.ix.cols, r)),
            Sort::Price => CursorKey::Num(price_key(&self.ix.cols, r)),
        }
    }

    /// Every match, counted over the cheapest complete source.
    fn count(&self) -> usize {
        let (area, text, n) = self.sources();
        let area_cost = area.map_or(usize::MAX, |a| a.1);
        let text_cost = text.map_or(usize::MAX, |t| 2 * t);
        if area_cost <= text_cost && area_cost <= n {
            if self.trees_imply_cf && self.text.is_none() {
                return self.trees.iter().map(|t| t.count_in(&self.area, 0).0).sum();
            }
            let mut c = 0;
            for t in &self.trees {
                t.for_each_in(&self.area, &mut |r| {
                    c += usize::from(self.matches(r as usize, true));
                    true
                });
            }
            c
        } else if let (Some(t), true) = (&self.text, text_cost <= n) {
            self.ix
                .text
                .candidates(t)
                .filter(|&r| self.matches(r as usize, false))
                .count()
        } else {
            (0..n).filter(|&r| self.matches(r, false)).count()
        }
    }
}

/// Collects the `k` smallest of a stream in amortised linear time: keeps at most `2k`, cutting
/// back to `k` (and raising the admission threshold) whenever full.
struct Smallest<T, F> {
    v: Vec<T>,
    k: usize,
    cmp: F,
    threshold: Option<T>,
}

impl<T: Copy, F: Fn(&T, &T) -> Ordering> Smallest<T, F> {
    fn new(k: usize, cmp: F) -> Self {
        Smallest {
            v: Vec::with_capacity(2 * k),
            k,
            cmp,
            threshold: None,
        }
    }

    /// Whether `x` could still be among the `k` smallest.
    #[inline]
    fn admits(&self, x: &T) -> bool {
        self.k > 0
            && self
                .threshold
                .is_none_or(|t| (self.cmp)(x, &t) == Ordering::Less)
    }

    fn push(&mut self, x: T) {
        self.v.push(x);
        if self.v.len() >= 2 * self.k {
            self.v.select_nth_unstable_by(self.k - 1, &self.cmp);
            self.v.truncate(self.k);
            self.threshold = self.v.last().copied();
        }
    }

    fn finish(mut self) -> Vec<T> {
        let cmp = self.cmp;
        smallest(&mut self.v, self.k, cmp);
        self.v
    }
}

/// Keeps the `k` smallest elements of `v`, sorted.
fn smallest<T>(v: &mut Vec<T>, k: usize, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() > k && k > 0 {
        v.select_nth_unstable_by(k - 1, &mut cmp);
        v.truncate(k);
    }
    v.truncate(k);
    v.sort_unstable_by(cmp);
}

#[cfg(test)]
mod tests;
