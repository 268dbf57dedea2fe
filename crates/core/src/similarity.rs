//! String similarity: Python difflib's `SequenceMatcher(None, a, b).ratio()`, over characters.
//!
//! The original Sado map's duplicate checker (`add_place_with_duplicate_check.py` in
//! nakanaka07/sado-restaurant-map) flagged two curated names as possible duplicates when
//! `SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.8`. This module reproduces that
//! ratio exactly (Ratcliff–Obershelp: the longest common block, then recursively the longest
//! blocks left and right of it; ratio = 2·M / (|a| + |b|)), including difflib's tie-breaking
//! (earliest block in `a`, then in `b`) and its "autojunk" heuristic for sequences of 200 or
//! more characters, so scores agree with Python to the last bit.

use std::collections::HashMap;

/// The similarity of two strings in `0.0..=1.0`, compared character by character; equal to
/// Python's `difflib.SequenceMatcher(None, a, b).ratio()`. Two empty strings score 1.0.
///
/// ```
/// use sadomap_core::similarity;
/// assert_eq!(similarity("abcd", "bcde"), 0.75);
/// ```
pub fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    ratio_of(&a, &b)
}

/// An upper bound of [`similarity`] from the lengths alone (difflib's `real_quick_ratio`):
/// `2·min(|a|, |b|) / (|a| + |b|)`, lengths counted in characters. Use it to skip pairs that
/// cannot reach a threshold before computing the full ratio.
pub fn similarity_upper_bound(a_len: usize, b_len: usize) -> f64 {
    let total = a_len + b_len;
    if total == 0 {
        return 1.0;
    }
    2.0 * a_len.min(b_len) as f64 / total as f64
}

/// The ratio over already split character sequences.
pub(crate) fn ratio_of(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    2.0 * matching_chars(a, b, &b2j(b)) as f64 / total as f64
}

/// The ratio with `b`'s index built once by [`b2j`] (for comparing one name with many).
pub(crate) fn ratio_indexed(a: &[char], b: &[char], b_index: &HashMap<char, Vec<usize>>) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    2.0 * matching_chars(a, b, b_index) as f64 / total as f64
}

/// Index of `b` as difflib builds it: positions of each element, without "popular" elements
/// when `b` has 200 or more of them.
pub(crate) fn b2j(b: &[char]) -> HashMap<char, Vec<usize>> {
    let mut map: HashMap<char, Vec<usize>> = HashMap::new();
    for (j, &c) in b.iter().enumerate() {
        map.entry(c).or_default().push(j);
    }
    let n = b.len();
    if n >= 200 {
        let ntest = n / 100 + 1;
        map.retain(|_, js| js.len() <= ntest);
    }
    map
}

/// Total size of difflib's matching blocks of `a` and `b`.
fn matching_chars(a: &[char], b: &[char], index: &HashMap<char, Vec<usize>>) -> usize {
    let mut j2len = vec![0usize; b.len() + 1];
    let mut new_j2len = vec![0usize; b.len() + 1];
    let mut touched: Vec<usize> = Vec::new();
    let mut new_touched: Vec<usize> = Vec::new();
    let mut queue = vec![(0usize, a.len(), 0usize, b.len())];
    let mut matched = 0;
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = longest_match(
            a,
            b,
            index,
            (alo, ahi, blo, bhi),
            (&mut j2len, &mut new_j2len),
            (&mut touched, &mut new_touched),
        );
        if k > 0 {
            matched += k;
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    matched
}

/// difflib's `find_longest_match` with no junk function: returns `(i, j, size)`.
/// `j2len` arrays are indexed by `j + 1` and kept zeroed between calls (only touched cells are
/// reset), so each call costs O(matches) rather than O(|b|) per element of `a`.
fn longest_match(
    a: &[char],
    b: &[char],
    index: &HashMap<char, Vec<usize>>,
    (alo, ahi, blo, bhi): (usize, usize, usize, usize),
    (j2len, new_j2len): (&mut Vec<usize>, &mut Vec<usize>),
    (touched, new_touched): (&mut Vec<usize>, &mut Vec<usize>),
) -> (usize, usize, usize) {
    let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
    for (i, c) in a.iter().enumerate().take(ahi).skip(alo) {
        if let Some(js) = index.get(c) {
            for &j in js {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                // j2len[j] of the previous row is stored at index j (i.e. (j - 1) + 1).
                let k = j2len[j] + 1;
                new_j2len[j + 1] = k;
                new_touched.push(j + 1);
                if k > bestsize {
                    besti = i + 1 - k;
                    bestj = j + 1 - k;
                    bestsize = k;
                }
            }
        }
        for &t in touched.iter() {
            j2len[t] = 0;
        }
        touched.clear();
        std::mem::swap(j2len, new_j2len);
        std::mem::swap(touched, new_touched);
    }
    for &t in touched.iter() {
        j2len[t] = 0;
    }
    touched.clear();
    // Extend over equal elements the index left out (popular ones); difflib does the same.
    while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
        besti -= 1;
        bestj -= 1;
        bestsize += 1;
    }
    while besti + bestsize < ahi
        && bestj + bestsize < bhi
        && a[besti + bestsize] == b[bestj + bestsize]
    {
        bestsize += 1;
    }
    (besti, bestj, bestsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed with CPython 3's difflib.SequenceMatcher(None, a, b).ratio().
    #[test]
    fn agrees_with_difflib() {
        let cases: &[(&str, &str, f64)] = &[
            ("abcd", "bcde", 0.75),
            ("", "", 1.0),
            ("abc", "", 0.0),
            ("abc", "abc", 1.0),
            ("abc", "xyz", 0.0),
            (
                "private Thread currentThread;",
                "private volatile Thread currentThread;",
                0.8656716417910447,
            ),
            ("qabxcd", "abycdf", 0.6666666666666666),
            ("tide", "diet", 0.25),
            ("diet", "tide", 0.5),
            ("公衆トイレ", "公衆トイレ（駐車場）", 0.6666666666666666),
            (
                "ショッピングプラザ キング 両津店",
                "ショッピングプラザ キング 佐渡サンモールタウン店",
                0.7142857142857143,
            ),
        ];
        for &(a, b, want) in cases {
            let got = similarity(a, b);
            assert!(
                (got - want).abs() < 1e-12,
                "similarity({a:?}, {b:?}) = {got}, difflib says {want}"
            );
        }
    }

    #[test]
    fn autojunk_applies_to_long_sequences() {
        // b has 200+ characters, so 'a' (far above 200/100 + 1 occurrences) is "popular" and
        // dropped from the index: difflib then matches only the extension around other blocks.
        let a = "a".repeat(10) + "xyz";
        let b = "a".repeat(250) + "xyz";
        // CPython: SequenceMatcher(None, a, b).ratio() == 0.09774436090225563 (M = 13)
        let got = similarity(&a, &b);
        assert!((got - 0.09774436090225563).abs() < 1e-12, "got {got}");
    }

    #[test]
    fn upper_bound_bounds() {
        for (a, b) in [("abcd", "bcde"), ("佐渡", "佐渡市役所"), ("", "x")] {
            let bound = similarity_upper_bound(a.chars().count(), b.chars().count());
            assert!(similarity(a, b) <= bound + 1e-12);
        }
        assert_eq!(similarity_upper_bound(0, 0), 1.0);
        assert_eq!(similarity_upper_bound(1, 3), 0.5);
    }
}
