//! Normalisation of Japanese text for storage and for search keys.
//! (Placeholder: being written.)

use unicode_normalization::UnicodeNormalization;

/// Normalised form for storage and display: NFKC, unified spaces and variant kanji.
pub fn normalize(s: &str) -> String {
    s.nfkc()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Search key: [`normalize`], then folded (katakana to hiragana, lower case, no spaces).
pub fn search_key(s: &str) -> String {
    normalize(s).to_lowercase().replace(' ', "")
}
