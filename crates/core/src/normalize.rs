//! Normalisation of Japanese text for storage, search keys and address matching.
//!
//! Three forms, each idempotent:
//!
//! - [`normalize`]: the storage and display form. NFKC (so full-width ASCII becomes half-width and
//!   half-width katakana full-width), zero-width characters dropped, every kind of whitespace
//!   (including U+3000) collapsed to one ASCII space and trimmed, dash-like characters between two
//!   digits unified to `-`, old and variant kanji folded by [`VARIANT_KANJI`], and the small or large
//!   katakana ケ/ヶ/ヵ between two kanji written `ケ` (the region data writes `松ケ崎`).
//! - [`search_key`]: for text search and duplicate keys. Like [`normalize`], then katakana folded to
//!   hiragana, letters lower-cased, whitespace and punctuation removed.
//! - [`address_key`]: for matching addresses against town names. [`normalize`], then `が`/`ガ`
//!   between two kanji also written `ケ` (`松が崎` = `松ケ崎`), and kanji numerals before
//!   `丁目`/`番地`/`番`/`号` written in Arabic digits ([`kanji_numerals_to_arabic`]). Apply it to both
//!   sides of a comparison.
//!
//! `が` is folded only in the matching forms, not in [`normalize`]: between two kanji it is usually
//! the particle (`花が咲く`), and the display form must not change a name's words. `龍`/`竜`, `嶋`/`島`
//! and similar pairs are not folded either: they are distinct in names.

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Old (旧字体) and variant (異体字) kanji seen in addresses and names, with the common form each is
/// folded to by [`normalize`]. Sorted by the old form's code point (checked by a test).
///
/// NFKC already folds the CJK compatibility ideographs that have a canonical decomposition (e.g.
/// U+FA10 塚); this table holds those it leaves alone (`﨑` U+FA11) and ordinary unified
/// ideographs. `齊` folds to `斉`, its standard new form, not to `斎`.
pub const VARIANT_KANJI: &[(char, char)] = &[
    ('佛', '仏'),
    ('來', '来'),
    ('兩', '両'),
    ('區', '区'),
    ('國', '国'),
    ('圓', '円'),
    ('塜', '塚'),
    ('壽', '寿'),
    ('學', '学'),
    ('實', '実'),
    ('寳', '宝'),
    ('寶', '宝'),
    ('嵜', '崎'),
    ('嶽', '岳'),
    ('廣', '広'),
    ('彌', '弥'),
    ('德', '徳'),
    ('惠', '恵'),
    ('會', '会'),
    ('條', '条'),
    ('榮', '栄'),
    ('櫻', '桜'),
    ('淺', '浅'),
    ('澁', '渋'),
    ('澤', '沢'),
    ('濱', '浜'),
    ('瀧', '滝'),
    ('當', '当'),
    ('眞', '真'),
    ('稻', '稲'),
    ('穗', '穂'),
    ('縣', '県'),
    ('與', '与'),
    ('舊', '旧'),
    ('莊', '荘'),
    ('萬', '万'),
    ('藏', '蔵'),
    ('邉', '辺'),
    ('邊', '辺'),
    ('鄕', '郷'),
    ('鐵', '鉄'),
    ('關', '関'),
    ('靜', '静'),
    ('驛', '駅'),
    ('髙', '高'),
    ('黑', '黒'),
    ('齊', '斉'),
    ('齋', '斎'),
    ('龜', '亀'),
    ('﨑', '崎'),
];

/// The common form of an old or variant kanji per [`VARIANT_KANJI`]; any other character unchanged.
pub fn fold_variant_kanji(c: char) -> char {
    if (c as u32) < 0x4E00 {
        return c;
    }
    match VARIANT_KANJI.binary_search_by_key(&c, |&(old, _)| old) {
        Ok(i) => VARIANT_KANJI[i].1,
        Err(_) => c,
    }
}

/// Whether `c` is a kanji (CJK ideograph, including extensions and compatibility ideographs) or the
/// iteration marks `々`/`〆` that behave as one in names.
pub fn is_kanji(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
        || c == '々'
        || c == '〆'
}

/// Zero-width characters dropped before anything else (ZWJ is kept: emoji sequences need it).
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// Characters used as a hyphen between numbers in addresses (after NFKC).
fn is_dash_like(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
            | '\u{2500}'
            | 'ー'
    )
}

/// NFKC with zero-width characters dropped and whitespace collapsed to single ASCII spaces, trimmed.
/// The characters of `s` without zero-width ones, in NFKC. Text that is already NFKC (most text
/// here: it was normalised once on import) skips the normaliser, which costs far more than
/// the quick check that tells.
fn nfkc_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    enum Chars<A, B> {
        Fast(A),
        Slow(B),
    }
    impl<A: Iterator<Item = char>, B: Iterator<Item = char>> Iterator for Chars<A, B> {
        type Item = char;
        fn next(&mut self) -> Option<char> {
            match self {
                Chars::Fast(a) => a.next(),
                Chars::Slow(b) => b.next(),
            }
        }
    }
    if s.chars().all(nfkc_stable) || is_nfkc_quick(s.chars()) == IsNormalized::Yes {
        Chars::Fast(s.chars().filter(|&c| !is_zero_width(c)))
    } else {
        Chars::Slow(s.chars().filter(|&c| !is_zero_width(c)).nfkc())
    }
}

/// Characters that NFKC leaves alone whatever surrounds them: printable ASCII, hiragana and
/// katakana without the combining and spacing sound marks, the long-vowel mark and the CJK
/// unified ideographs. A cheap first test before the full quick check.
fn nfkc_stable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0x3041..=0x3096 | 0x30A1..=0x30FA | 0x30FC | 0x4E00..=0x9FFF)
}

fn nfkc_collapsed(s: &str) -> String {
    let mut buf = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in nfkc_chars(s) {
        if c.is_whitespace() {
            pending_space = !buf.is_empty();
        } else {
            if pending_space {
                buf.push(' ');
                pending_space = false;
            }
            buf.push(c);
        }
    }
    buf
}

/// Normalised form for storage and display: NFKC, unified spaces, dashes between digits, variant
/// kanji and ケ between kanji (see the module documentation).
pub fn normalize(s: &str) -> String {
    let buf = nfkc_collapsed(s);
    let mut out = String::with_capacity(buf.len());
    let mut prev: Option<char> = None;
    let mut it = buf.chars().peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        let folded = if is_dash_like(c)
            && prev.is_some_and(|p| p.is_ascii_digit())
            && next.is_some_and(|n| n.is_ascii_digit())
        {
            '-'
        } else if matches!(c, 'ケ' | 'ヶ' | 'ヵ')
            && prev.is_some_and(is_kanji)
            && next.is_some_and(is_kanji)
        {
            'ケ'
        } else {
            fold_variant_kanji(c)
        };
        out.push(folded);
        prev = Some(c);
    }
    out
}

/// Whether `c` is dropped from search keys: whitespace and punctuation.
fn is_key_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || matches!(c as u32,
            0x2000..=0x206F | 0x3000..=0x3004 | 0x3008..=0x303F | 0x30A0 | 0x30FB | 0xFF5F..=0xFF65)
        || matches!(c, '·' | '«' | '»' | '¡' | '¿' | '§' | '¶')
}

/// Katakana folded to hiragana (ヴ to ゔ, ヽヾ to ゝゞ); other characters unchanged.
fn katakana_to_hiragana(c: char) -> char {
    match c as u32 {
        0x30A1..=0x30F6 | 0x30FD..=0x30FE => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        _ => c,
    }
}

/// One pass of [`search_key`].
fn search_key_once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut it = nfkc_chars(s).filter(|&c| !is_key_separator(c)).peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        if is_dash_like(c)
            && prev.is_some_and(|p| p.is_ascii_digit())
            && next.is_some_and(|n| n.is_ascii_digit())
        {
            // A hyphen between digits is punctuation: dropped like `-`.
            prev = Some(c);
            continue;
        }
        let c2 = if matches!(c, 'ケ' | 'ヶ' | 'ヵ' | 'が' | 'ガ')
            && prev.is_some_and(is_kanji)
            && next.is_some_and(is_kanji)
        {
            'け'
        } else {
            katakana_to_hiragana(fold_variant_kanji(c))
        };
        if c2.is_ascii() {
            out.push(c2.to_ascii_lowercase());
        } else if c2.is_alphabetic() && !c2.is_lowercase() {
            out.extend(c2.to_lowercase());
        } else {
            out.push(c2);
        }
        prev = Some(c);
    }
    out
}

/// Search key: [`normalize`]d, then katakana folded to hiragana, letters lower-cased, whitespace and
/// punctuation (`・`, `-`, `.`, `、`, brackets, …) removed, ケ/ヶ/ヵ/が/ガ between kanji unified.
///
/// `ショッピングプラザ キング` and `しょっぴんぐぷらざきんぐ` give the same key.
pub fn search_key(s: &str) -> String {
    let mut key = search_key_once(s);
    // Removing punctuation can bring a base character and a combining mark together, which NFKC
    // would then compose: repeat until stable (one extra pass at most in practice).
    for _ in 0..4 {
        if is_nfkc_quick(key.chars()) == IsNormalized::Yes {
            break;
        }
        let next = search_key_once(&key);
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// Value of a kanji digit (`〇`, `一`…`九`, and the formal `壱弐参`).
fn kanji_digit(c: char) -> Option<u64> {
    Some(match c {
        '〇' | '零' => 0,
        '一' | '壱' => 1,
        '二' | '弐' => 2,
        '三' | '参' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

/// Value of a kanji numeral unit (`十`, `百`, `千`, `万`, formal `拾`).
fn kanji_unit(c: char) -> Option<u64> {
    Some(match c {
        '十' | '拾' => 10,
        '百' => 100,
        '千' => 1000,
        '万' => 10_000,
        _ => return None,
    })
}

/// Parses a run of kanji numerals: `三百九十四` = 394, `百五` = 105, `二十` = 20, and positional
/// digit strings such as `一〇五` = 105. `None` when the run is not a well-formed number.
pub fn parse_kanji_number(run: &str) -> Option<u64> {
    let has_unit = run.chars().any(|c| kanji_unit(c).is_some());
    if run.is_empty() || run.chars().count() > 16 {
        return None;
    }
    if !has_unit {
        return run.chars().try_fold(0u64, |acc, c| {
            acc.checked_mul(10)?.checked_add(kanji_digit(c)?)
        });
    }
    let (mut total, mut section) = (0u64, 0u64);
    let mut digit: Option<u64> = None;
    let mut last_unit = u64::MAX;
    for c in run.chars() {
        if let Some(d) = kanji_digit(c) {
            if digit.is_some_and(|v| v != 0) {
                return None;
            }
            digit = Some(d);
        } else if let Some(u) = kanji_unit(c) {
            if u == 10_000 {
                let v = section.checked_add(digit.take().unwrap_or(0))?;
                let v = if v == 0 { 1 } else { v };
                total = total.checked_add(v.checked_mul(u)?)?;
                section = 0;
                last_unit = u64::MAX;
            } else {
                if u >= last_unit {
                    return None;
                }
                let d = digit.take().unwrap_or(1);
                section = section.checked_add(d.checked_mul(u)?)?;
                last_unit = u;
            }
        } else {
            return None;
        }
    }
    total.checked_add(section)?.checked_add(digit.unwrap_or(0))
}

/// Address words after which a number is a block or lot number.
const NUMBER_CONTEXTS: [&str; 4] = ["丁目", "番地", "番", "号"];

/// Kanji numerals immediately before `丁目`, `番地`, `番` or `号` written in Arabic digits:
/// `両津福浦二丁目` → `両津福浦2丁目`, `三百九十四番地` → `394番地`. Other kanji numerals (`五十里`,
/// `相川一町目`) are left alone, since they are part of names.
pub fn kanji_numerals_to_arabic(s: &str) -> String {
    if !NUMBER_CONTEXTS.iter().any(|w| s.contains(w)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if kanji_digit(c).is_some() || kanji_unit(c).is_some() {
            let end = rest
                .char_indices()
                .find(|&(_, c)| kanji_digit(c).is_none() && kanji_unit(c).is_none())
                .map_or(rest.len(), |(i, _)| i);
            let (run, after) = rest.split_at(end);
            match parse_kanji_number(run) {
                Some(n) if NUMBER_CONTEXTS.iter().any(|w| after.starts_with(w)) => {
                    out.push_str(&n.to_string())
                }
                _ => out.push_str(run),
            }
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Canonical form of an address or town name for matching: [`normalize`], `が`/`ガ` between kanji
/// written `ケ`, kanji numerals before `丁目`/`番地`/`番`/`号` in Arabic digits.
pub fn address_key(s: &str) -> String {
    let norm = normalize(s);
    let mut folded = String::with_capacity(norm.len());
    let mut prev: Option<char> = None;
    let mut it = norm.chars().peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        if matches!(c, 'が' | 'ガ') && prev.is_some_and(is_kanji) && next.is_some_and(is_kanji) {
            folded.push('ケ');
        } else {
            folded.push(c);
        }
        prev = Some(c);
    }
    let arabic = kanji_numerals_to_arabic(&folded);
    if arabic == folded {
        return arabic;
    }
    // New digits may now stand either side of a dash: unify it as `normalize` would.
    let mut out = String::with_capacity(arabic.len());
    let mut prev: Option<char> = None;
    let mut it = arabic.chars().peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        let digits_around =
            prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        out.push(if is_dash_like(c) && digits_around {
            '-'
        } else {
            c
        });
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stable_characters_are_really_nfkc_stable() {
        use unicode_normalization::UnicodeNormalization;
        for cp in (0x20..=0x7E)
            .chain(0x3041..=0x3096)
            .chain(0x30A1..=0x30FA)
            .chain([0x30FC])
            .chain(0x4E00..=0x9FFF)
        {
            let c = char::from_u32(cp).unwrap();
            assert!(nfkc_stable(c));
            let s = c.to_string();
            assert_eq!(s.nfkc().collect::<String>(), s, "U+{cp:04X}");
        }
        // A stable base followed by a combining mark must still compose: the mark is not stable.
        assert_eq!(normalize("か\u{3099}"), "が");
    }

    #[test]
    fn variant_table_is_sorted_and_folds() {
        assert!(VARIANT_KANJI.windows(2).all(|w| w[0].0 < w[1].0));
        for &(old, new) in VARIANT_KANJI {
            assert_ne!(old, new);
            assert_eq!(fold_variant_kanji(old), new);
            // The common form is itself stable under NFKC and the table.
            assert_eq!(normalize(&new.to_string()), new.to_string());
        }
        assert_eq!(fold_variant_kanji('龍'), '龍');
    }

    #[test]
    fn normalize_width_spaces_and_dashes() {
        assert_eq!(normalize("　ＡＢＣ　１２３　"), "ABC 123");
        assert_eq!(normalize("a \t\n\u{3000} b"), "a b");
        assert_eq!(normalize("ｼｮｯﾋﾟﾝｸﾞ"), "ショッピング");
        assert_eq!(normalize("９５２－００１１"), "952-0011");
        assert_eq!(normalize("両津湊198ー3"), "両津湊198-3");
        assert_eq!(normalize("1‐2−3―4‑5"), "1-2-3-4-5");
        // ー between kana is a long vowel, kept.
        assert_eq!(normalize("ケーキ ー1"), "ケーキ ー1");
        assert_eq!(normalize("a\u{200B}b"), "ab");
    }

    #[test]
    fn normalize_variant_kanji_and_ke() {
        assert_eq!(normalize("新穗"), "新穂");
        assert_eq!(normalize("阿佛坊"), "阿仏坊");
        assert_eq!(
            normalize("髙﨑 齋藤 渡邊 渡邉 濱田 澤"),
            "高崎 斎藤 渡辺 渡辺 浜田 沢"
        );
        assert_eq!(normalize("龍"), "龍");
        assert_eq!(normalize("松ヶ崎"), "松ケ崎");
        assert_eq!(normalize("松ヵ崎"), "松ケ崎");
        assert_eq!(normalize("松ケ崎"), "松ケ崎");
        // Not between two kanji: untouched.
        assert_eq!(normalize("ヶーキ ケーキ"), "ヶーキ ケーキ");
        // が is a particle in names: kept in the display form.
        assert_eq!(normalize("花が咲く"), "花が咲く");
    }

    #[test]
    fn search_key_folds() {
        assert_eq!(
            search_key("ショッピングプラザ キング"),
            search_key("しょっぴんぐぷらざきんぐ")
        );
        assert_eq!(
            search_key("ショッピングプラザ キング"),
            "しょっぴんぐぷらざきんぐ"
        );
        assert_eq!(search_key("Café・BAR. A-1"), "cafébara1");
        assert_eq!(search_key("ＡＢＣ　ｄｅｆ"), "abcdef");
        assert_eq!(search_key("松ヶ崎"), search_key("松が崎"));
        assert_eq!(search_key("松ケ崎"), search_key("松 が 崎"));
        assert_eq!(search_key("「長三郎」鮨"), "長三郎鮨");
        assert_eq!(search_key("ケーキ"), "けーき");
        assert_eq!(search_key("々〇"), "々〇");
    }

    #[test]
    fn kanji_numbers() {
        assert_eq!(parse_kanji_number("十二"), Some(12));
        assert_eq!(parse_kanji_number("二十"), Some(20));
        assert_eq!(parse_kanji_number("百五"), Some(105));
        assert_eq!(parse_kanji_number("三百九十四"), Some(394));
        assert_eq!(parse_kanji_number("千二百三十四"), Some(1234));
        assert_eq!(parse_kanji_number("一〇五"), Some(105));
        assert_eq!(parse_kanji_number("百〇五"), Some(105));
        assert_eq!(parse_kanji_number("二万三千"), Some(23_000));
        assert_eq!(parse_kanji_number("十百"), None);
        assert_eq!(parse_kanji_number("二三十"), None);
        assert_eq!(parse_kanji_number(""), None);
        assert_eq!(
            parse_kanji_number("一一一一一一一一一一一一一一一一一一一一一一"),
            None
        );
    }

    #[test]
    fn numerals_before_address_words() {
        assert_eq!(kanji_numerals_to_arabic("両津福浦二丁目"), "両津福浦2丁目");
        assert_eq!(kanji_numerals_to_arabic("三百九十四番地"), "394番地");
        assert_eq!(kanji_numerals_to_arabic("十二番五号"), "12番5号");
        assert_eq!(kanji_numerals_to_arabic("北五十里三番地"), "北五十里3番地");
        assert_eq!(kanji_numerals_to_arabic("相川一町目"), "相川一町目");
        assert_eq!(kanji_numerals_to_arabic("五十浦"), "五十浦");
        assert_eq!(address_key("両津福浦一丁目"), address_key("両津福浦1丁目"));
        assert_eq!(address_key("両津福浦二丁目"), "両津福浦2丁目");
        assert_eq!(address_key("松が崎"), "松ケ崎");
        assert_eq!(address_key("松ガ崎 ガス"), "松ケ崎 ガス");
        assert_eq!(
            address_key("新潟県佐渡市河原田本町三百九十四番地"),
            "新潟県佐渡市河原田本町394番地"
        );
        assert_eq!(address_key("1ー二番"), "1-2番");
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent(s in any::<String>()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once);
        }

        #[test]
        fn search_key_is_idempotent(s in any::<String>()) {
            let once = search_key(&s);
            prop_assert_eq!(search_key(&once), once);
        }

        #[test]
        fn address_key_is_idempotent(s in any::<String>()) {
            let once = address_key(&s);
            prop_assert_eq!(address_key(&once), once);
        }

        #[test]
        fn japanese_like_text_is_stable(s in "[ 　ア-ンぁ-ん一-龥ー‐－0-9０-９ヶが・、]{0,24}") {
            let n = normalize(&s);
            prop_assert_eq!(normalize(&n), n.clone());
            let k = search_key(&s);
            prop_assert_eq!(search_key(&k), k.clone());
            prop_assert!(!k.contains(' '));
            let a = address_key(&s);
            prop_assert_eq!(address_key(&a), a);
        }

        #[test]
        fn numerals_never_panic(s in "[〇一二三四五六七八九十百千万丁目番地号]{0,30}") {
            let _ = kanji_numerals_to_arabic(&s);
            let _ = parse_kanji_number(&s);
        }
    }
}
