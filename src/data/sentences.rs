//! English sentences for the synthetic corpus, from Debian's fortune databases (fortune-mod,
//! BSD license; packages `fortunes-min` and `fortunes`): text the project may obtain and
//! redistribute, and never a dev or evaluation transcript.
//!
//! Only sentences a speech synthesiser reads exactly as written are kept: letters, apostrophes
//! and plain punctuation, no digits (spoken forms vary), no acronyms or all-caps words (spelt or
//! read as words, depending on the voice), no hyphens, brackets or symbols.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

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

/// Sentences of a text file with one sentence per line (plain or gzipped, by its `.gz` name),
/// such as ../shared/text/sentences.txt.gz: those that pass [`is_speakable`] and have no full
/// stop before their end, quotation marks removed (books abbreviate "Mr." and "St.", which voices expand but a
/// transcript keeps as written), in file order, without duplicates.
pub fn load_sentence_file(path: &Path) -> std::io::Result<Vec<String>> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        GzDecoder::new(file).read_to_string(&mut text)?;
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)?;
    }
    Ok(speakable_lines(&text))
}

fn speakable_lines(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    // Quotation marks are dropped: a voice does not speak them, and a line may open a quote
    // that another line closes.
    text.lines()
        .map(|l| l.replace('"', "").trim().to_string())
        .filter(|l| is_speakable(l) && !l[..l.len().saturating_sub(1)].contains('.'))
        .filter(|l| seen.insert(l.to_lowercase()))
        .collect()
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

    #[test]
    fn book_lines_with_abbreviations_or_digits_are_dropped() {
        let text = "Mr. Bennet replied that he had not.\nShe told me all about it, and more.\n\
                    It was in 1811 that they came.\nShe told me all about it, and more.\n\
                    \"Where are you going?\" she asked him quietly.\nNo.\n";
        assert_eq!(
            speakable_lines(text),
            vec!["She told me all about it, and more.", "Where are you going? she asked him quietly."]
        );
    }
}
