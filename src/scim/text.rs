//! What text the server accepts in values: no control characters but tab, carriage return and
//! newline. NUL cannot be stored by PostgreSQL at all, and escape sequences have no place in
//! identity data (they reach terminals, logs and other systems' screens).

/// Does `text` hold a control character other than tab, carriage return or newline?
pub fn has_forbidden_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tab_cr_and_lf_pass() {
        assert!(!has_forbidden_control("Jensen\tBarbara\r\n"));
        assert!(!has_forbidden_control("Zoë 日本"));
        for bad in [
            "a\0b",
            "\u{1b}[31mred",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(has_forbidden_control(bad), "{bad:?}");
        }
    }
}
