//! Search keys: folding stored text into keys exactly as `search_key` does (with a fast path for
//! already-normalised text), a place's concatenated key, and query keys.

use sadomap_core::{fold_variant_kanji, is_kanji, search_key, PlaceRecord};

use super::SEP;
use crate::index::columns::{Columns, DISTRICT_OTHER, NO_TOWN};

/// A query key: the search key without separator or other control characters.
pub(crate) fn query_key(q: &str) -> String {
    search_key(q).chars().filter(|c| !c.is_control()).collect()
}

/// Whether `c` is a character [`push_key`] may fold itself: printable ASCII, hiragana and
/// katakana without the combining or compatibility ones, and the CJK unified ideographs. Every
/// one is a starter that NFKC leaves alone and that never composes with a neighbour, so a string
/// of them is NFKC, and so is its key.
#[inline]
fn is_plain(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7e | 0x3041..=0x3096 | 0x30a1..=0x30fa | 0x30fc | 0x4e00..=0x9fff)
}

/// Whether a plain character is dropped from search keys (ASCII whitespace and punctuation).
#[inline]
fn plain_separator(c: char) -> bool {
    c == ' ' || c.is_ascii_punctuation()
}

/// Appends `search_key(s)` to `out`, without control characters other than [`SEP`].
///
/// Text made only of plain characters (see [`is_plain`]; nearly all stored text, which was
/// normalised on import) is folded here directly, exactly as `search_key` folds it, without
/// allocating and without the NFKC pass; anything else goes through `search_key` itself.
fn push_key(s: &str, out: &mut String) {
    if !s.chars().all(is_plain) {
        out.extend(
            search_key(s)
                .chars()
                .filter(|&c| c == SEP || !c.is_control()),
        );
        return;
    }
    if s.is_ascii() {
        out.extend(
            s.bytes()
                .filter(|&b| !plain_separator(char::from(b)))
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        return;
    }
    let mut prev: Option<char> = None;
    let mut it = s.chars().filter(|&c| !plain_separator(c)).peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        let c2 = match c {
            // A long-vowel mark between digits is a hyphen: dropped.
            'ー' if prev.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit()) =>
            {
                prev = Some(c);
                continue;
            }
            'ケ' | 'ヶ' | 'ヵ' | 'が' | 'ガ'
                if prev.is_some_and(is_kanji) && next.is_some_and(is_kanji) =>
            {
                'け'
            }
            '\u{30a1}'..='\u{30f6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            '\u{4e00}'..='\u{9fff}' => fold_variant_kanji(c),
            _ => c.to_ascii_lowercase(),
        };
        out.push(c2);
        prev = Some(c);
    }
}

/// Appends the key of one place (fields separated by [`SEP`]) to `out`.
pub(super) fn push_place_key(r: &PlaceRecord, cols: &Columns, row: usize, out: &mut String) {
    let p = &r.place;
    push_key(&p.names.ja, out);
    for s in [&p.names.kana, &p.names.en, &p.address]
        .into_iter()
        .flatten()
    {
        out.push(SEP);
        push_key(s, out);
    }
    // Names the dictionaries could not hold are searched as part of the place itself.
    if cols.district[row] == DISTRICT_OTHER {
        if let Some(d) = p.locality.district() {
            out.push(SEP);
            push_key(d, out);
        }
    }
    if cols.town[row] == NO_TOWN {
        if let Some(t) = &p.town {
            out.push(SEP);
            push_key(t, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_key_is_search_key() {
        let region = sadomap_core::Region::sado();
        let mut texts: Vec<String> = [
            "らーめん 一番 #12",
            "ショッピングプラザ キング",
            "佐渡ヶ島 松ケ崎 松が崎 花が咲く",
            "12ー34 あーい 1ー",
            "Sado Cafe & Bar (本店)",
            "ABC・def、ghi。「jkl」",
            "ｻﾄﾞ ＡＢＣ １２３",
            "か\u{3099} か゛ ﾊﾟ",
            "嶋 兩津 﨑 邊 澤田",
            "tab\there\u{1f}sep\u{1}ctl",
            "ヷヸヹヺ ヴ ヽヾ ゝゞ 々 〆",
            "İstanbul ÀÉÎ Straße",
            "\u{200b}ゼロ\u{feff}幅",
            "",
            "   ",
            "1-2-3 ー ｰ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in sadomap_core::demo_places(region, 3000, 5) {
            let mut p = p;
            sadomap_core::prepare(&mut p, region).ok();
            texts.extend([p.names.ja, p.address.unwrap_or_default()]);
            texts.extend(p.names.kana);
            texts.extend(p.names.en);
        }
        for t in &region.towns {
            texts.push(t.name.clone());
            texts.extend(t.kana.clone());
        }
        for t in texts {
            let mut got = String::from("x");
            push_key(&t, &mut got);
            let want: String = search_key(&t)
                .chars()
                .filter(|&c| c == SEP || !c.is_control())
                .collect();
            assert_eq!(&got[1..], want, "{t:?}");
        }
    }
}
