//! Food-word synonyms: the [`SYNONYMS`] groups and the expansion of a query key into its
//! alternatives.

use super::query_key;

/// Food-word synonym groups: sushi, soba, udon, ramen, tempura, tonkatsu, yakitori, yakiniku,
/// crab, shrimp, squid, yellowtail, fish, eatery, izakaya, bento, Chinese, coffee.
const SYNONYMS: &[&[&str]] = &[
    &["すし", "鮨", "寿司", "鮓"],
    &["そば", "蕎麦"],
    &["うどん", "饂飩"],
    &["らーめん", "拉麺"],
    &["てんぷら", "天ぷら", "天麩羅"],
    &["とんかつ", "豚かつ"],
    &["やきとり", "焼き鳥", "焼鳥"],
    &["やきにく", "焼肉", "焼き肉"],
    &["かに", "蟹"],
    &["えび", "海老", "蝦"],
    &["いか", "烏賊"],
    &["ぶり", "鰤"],
    &["さかな", "魚"],
    &["しょくどう", "食堂"],
    &["いざかや", "居酒屋"],
    &["べんとう", "弁当"],
    &["ちゅうか", "中華"],
    &["こーひー", "珈琲"],
];

/// The most alternatives one query expands into.
const MAX_ALTERNATIVES: usize = 16;

/// The synonym groups as query keys, folded once.
fn synonym_keys() -> &'static [Vec<String>] {
    static KEYS: std::sync::OnceLock<Vec<Vec<String>>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        SYNONYMS
            .iter()
            .map(|g| g.iter().map(|w| query_key(w)).collect())
            .collect()
    })
}

/// `key` and its synonym alternatives (`key` first, no duplicates, at most
/// [`MAX_ALTERNATIVES`]): every word of a group found in a key is replaced by each other word.
pub(crate) fn alternatives(key: &str) -> Vec<String> {
    let mut out = vec![key.to_owned()];
    for group in synonym_keys() {
        let mut i = 0;
        while i < out.len() {
            let cur = out[i].clone();
            for word in group.iter().filter(|w| cur.contains(w.as_str())) {
                for other in group.iter().filter(|o| *o != word) {
                    let alt = cur.replace(word.as_str(), other);
                    if out.len() < MAX_ALTERNATIVES && !out.contains(&alt) {
                        out.push(alt);
                    }
                }
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_expand_food_words_only() {
        let alts = alternatives(&query_key("すし"));
        for w in ["すし", "鮨", "寿司", "鮓"] {
            assert!(alts.contains(&query_key(w)), "{w} in {alts:?}");
        }
        assert_eq!(
            alternatives(&query_key("スシ")),
            alts,
            "katakana folds first"
        );
        let alts = alternatives(&query_key("手打ちそば"));
        assert!(alts.contains(&query_key("手打ち蕎麦")), "{alts:?}");
        assert_eq!(alternatives("りょうつ"), vec!["りょうつ".to_owned()]);
        let many = alternatives(&query_key("すしそばうどんてんぷらやきとり"));
        assert_eq!(many.len(), MAX_ALTERNATIVES, "expansion is bounded");
    }
}
