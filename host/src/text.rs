//! Text for a human's terminal.
//!
//! Requester-supplied strings (ids, justifications, policy reasons, audit
//! evidence) end up in an auditor's terminal. Printed raw, a newline forges
//! a line of output and an ANSI/OSC escape rewrites the screen, sets the
//! window title or hides text. [`terminal_safe`] makes any string inert.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every character a terminal would act on written as a visible
/// escape: `\n`, `\r`, `\t`, and `\u{…}` for every other control character
/// (C0, DEL, C1 — which includes the 8-bit CSI and OSC introducers) and
/// for the Unicode format characters that reorder or hide text (bidi
/// overrides and isolates, zero-width marks, line/paragraph separators).
/// Printable text, including all of non-ASCII, is left as it is; nothing
/// is allocated when there is nothing to escape.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // zero-width space/joiners, LRM/RLM, ALM
            '\u{200b}'..='\u{200f}' | '\u{061c}'
            // line and paragraph separators, bidi embeddings and overrides
            | '\u{2028}'..='\u{202e}'
            // word joiner, invisible operators, bidi isolates
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "alice",
            "réclamation ✓ 😀 C:\\path",
            "a \"quoted\" word",
        ] {
            assert!(matches!(terminal_safe(s), Cow::Borrowed(b) if b == s));
        }
    }

    #[test]
    fn forged_lines_and_escape_sequences_become_visible() {
        let hostile =
            "ok\napproved by ceo\r\x1b[2K\x1b]0;owned\x07\u{9b}31m\u{7f}\u{202e}txt\u{2028}";
        let safe = terminal_safe(hostile);
        assert_eq!(
            safe,
            "ok\\napproved by ceo\\r\\u{1b}[2K\\u{1b}]0;owned\\u{7}\\u{9b}31m\\u{7f}\\u{202e}txt\\u{2028}"
        );
        assert!(!safe.chars().any(needs_escape));
    }

    #[test]
    fn no_character_that_needs_escaping_survives() {
        let all: String = (0..=0x10ffff_u32).filter_map(char::from_u32).collect();
        let safe = terminal_safe(&all);
        assert!(!safe.chars().any(needs_escape));
        assert!(!safe.chars().any(char::is_control));
    }
}
