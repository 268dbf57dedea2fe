//! Postal codes in free text.

/// Finds a Japanese postal code in `s` and returns its 7 digits: `〒952-0011`, `952-0011`,
/// `9520011`, `９５２－００１１`, `〒 952 0011`. A code after `〒` is preferred; otherwise the first
/// `ddd-dddd` or bare 7-digit number not part of a longer number (phone numbers are not codes).
pub fn parse_postal_code(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let digit = |i: usize| -> Option<char> {
        let c = *chars.get(i)?;
        match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        }
    };
    let hyphen = |i: usize| {
        chars.get(i).is_some_and(|&c| {
            matches!(
                c,
                '-' | '－' | 'ー' | 'ｰ' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '﹣'
            )
        })
    };
    // Reads a code starting at `i`; `spaced` allows a space as the separator (after 〒 only).
    let read = |i: usize, spaced: bool| -> Option<String> {
        if i > 0 && digit(i - 1).is_some() {
            return None;
        }
        let mut code = String::with_capacity(7);
        for k in 0..3 {
            code.push(digit(i + k)?);
        }
        let mut j = i + 3;
        if hyphen(j) || (spaced && chars.get(j).is_some_and(|c| c.is_whitespace())) {
            j += 1;
        }
        for k in 0..4 {
            code.push(digit(j + k)?);
        }
        if digit(j + 4).is_some() {
            return None;
        }
        Some(code)
    };
    for (i, &c) in chars.iter().enumerate() {
        if c == '〒' {
            let mut j = i + 1;
            while chars.get(j).is_some_and(|c| c.is_whitespace() || *c == ':') {
                j += 1;
            }
            if let Some(code) = read(j, true) {
                return Some(code);
            }
        }
    }
    (0..chars.len()).find_map(|i| read(i, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_codes_are_found_in_every_form() {
        for s in [
            "〒952-0011 新潟県佐渡市両津夷",
            "952-0011",
            "9520011",
            "９５２－００１１",
            "〒 952 0011",
            "〒９５２ー００１１",
            "Ryotsu-minato, Sado, Niigata 952-0011, Japan",
            "日本、〒952-0011 新潟県佐渡市両津夷",
        ] {
            assert_eq!(parse_postal_code(s).as_deref(), Some("9520011"), "{s}");
        }
        // A 〒 code wins over an earlier number; phone numbers and long numbers are no codes.
        assert_eq!(
            parse_postal_code("電話 025-923-1234 〒952-0116").as_deref(),
            Some("9520116")
        );
        assert_eq!(parse_postal_code("0259-27-1234"), None);
        assert_eq!(parse_postal_code("12345678"), None);
        assert_eq!(parse_postal_code("両津湊198-1"), None);
        assert_eq!(parse_postal_code(""), None);
    }
}
