//! English sentences for the synthetic corpus, from Debian's fortune databases (fortune-mod,
//! BSD license; packages `fortunes-min` and `fortunes`): text the project may obtain and
//! redistribute, and never a dev or evaluation transcript.
//!
//! Only sentences a speech synthesiser reads exactly as written are kept: letters, apostrophes
//! and plain punctuation, no digits (spoken forms vary), no acronyms or all-caps words (spelt or
//! read as words, depending on the voice), no hyphens, brackets or symbols.

use std::collections::HashSet;
use std::path::Path;

/// Where Debian installs the fortune databases.
pub const FORTUNE_DIR: &str = "/usr/share/games/fortunes";

pub const MIN_WORDS: usize = 4;
pub const MAX_WORDS: usize = 20;

/// Splits fortune-file text (entries separated by lines holding only `%`) into sentences that
/// pass [`is_speakable`], in order of appearance, without duplicates.
pub fn sentences_from_fortunes(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for entry in text.split("\n%\n") {
        // Attribution lines ("-- Mark Twain") and indented verse layout are dropped.
        let body: Vec<&str> = entry.lines().map(str::trim).take_while(|l| !l.starts_with("--")).collect();
        let body = body.join(" ");
        for sentence in split_sentences(&body) {
            let sentence = sentence.trim_matches(|c: char| c == '"' || c.is_whitespace()).to_string();
            if is_speakable(&sentence) && seen.insert(sentence.to_lowercase()) {
                out.push(sentence);
            }
        }
    }
    out
}

/// Splits after `.`, `!` or `?` followed by whitespace.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        if matches!(bytes[i], b'.' | b'!' | b'?') && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace())
        {
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Would every synthesiser read this exactly as written?
pub fn is_speakable(sentence: &str) -> bool {
    if !sentence.chars().all(|c| c.is_ascii_alphabetic() || " ',.!?;:\"".contains(c)) {
        return false;
    }
    if sentence.contains("..") || sentence.contains("''") {
        return false;
    }
    let words: Vec<&str> = sentence.split_whitespace().collect();
    if !(MIN_WORDS..=MAX_WORDS).contains(&words.len()) {
        return false;
    }
    words.iter().all(|w| {
        let letters: String = w.chars().filter(|c| c.is_ascii_alphabetic()).collect();
        let upper = letters.chars().filter(|c| c.is_ascii_uppercase()).count();
        // A word: letters, at most one capital (not an acronym), apostrophes only inside.
        !letters.is_empty()
            && upper <= 1
            && !w.trim_matches(|c: char| !c.is_ascii_alphabetic()).starts_with('\'')
    })
}

/// Every speakable sentence of the installed fortune databases (files without a `.dat`/`.u8`
/// extension), sorted by file name for a stable order.
pub fn load_fortunes(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none())
        .collect();
    files.sort();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else { continue };
        for s in sentences_from_fortunes(&String::from_utf8_lossy(&bytes)) {
            if seen.insert(s.to_lowercase()) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortune_entries_become_speakable_sentences() {
        let text = "You will be told about it tomorrow. Go home and prepare thyself.\n%\nI don't know, the man said.\n\t\t-- Anonymous\n%\nCall 555 1234 today for a good time!\n%\nThe NASA rover went to Mars today, and it's fine.\n%\nShort one.\n%\nYou will be told about it tomorrow.\n";
        let s = sentences_from_fortunes(text);
        assert_eq!(
            s,
            vec![
                "You will be told about it tomorrow.",
                "Go home and prepare thyself.",
                "I don't know, the man said."
            ]
        );
    }

    #[test]
    fn symbols_hyphens_and_acronyms_are_refused() {
        for bad in [
            "A well-known fact is true.",
            "Use the (big) one here now.",
            "He said it was OK with me.",
            "It costs $5 and more today.",
        ] {
            assert!(!is_speakable(bad), "{bad}");
        }
        assert!(is_speakable("\"Where are you going?\" she asked him quietly."));
    }
}
