//! Word error rate exactly as ../shared/speech/wer.py computes it, and manifest reading for
//! `hark eval`.

use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] =
    ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

fn num_words(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].into(),
        20..=99 => {
            let (t, o) = (n / 10, n % 10);
            if o == 0 {
                TENS[t as usize].into()
            } else {
                format!("{} {}", TENS[t as usize], ONES[o as usize])
            }
        }
        100..=999 => {
            let (h, r) = (n / 100, n % 100);
            if r == 0 {
                format!("{} hundred", ONES[h as usize])
            } else {
                format!("{} hundred {}", ONES[h as usize], num_words(r))
            }
        }
        1000..=999_999 => {
            let (th, r) = (n / 1000, n % 1000);
            if r == 0 {
                format!("{} thousand", num_words(th))
            } else {
                format!("{} thousand {}", num_words(th), num_words(r))
            }
        }
        _ => unreachable!("larger numbers are spelled digit by digit"),
    }
}

/// A run of digits as wer.py spells it: int() drops leading zeros; a million or more is read
/// digit by digit.
fn spell_digits(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return "zero".into();
    }
    if trimmed.len() > 6 {
        return trimmed.chars().map(|c| ONES[c.to_digit(10).unwrap() as usize]).collect::<Vec<_>>().join(" ");
    }
    num_words(trimmed.parse().unwrap())
}

/// wer.py's `normalize`: NFKC, lower case, ’→', hyphens to spaces, digits spelled out, anything
/// but a–z, apostrophe and space removed, apostrophes kept only between letters.
pub fn normalize(text: &str) -> String {
    let text: String = text.nfkc().collect::<String>().to_lowercase().replace('’', "'").replace('-', " ");
    let mut spelled = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            spelled.push_str(&format!(" {} ", spell_digits(&digits)));
            digits.clear();
        }
        spelled.push(c);
    }
    if !digits.is_empty() {
        spelled.push_str(&format!(" {} ", spell_digits(&digits)));
    }
    let kept: Vec<char> = spelled
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c == '\'' || c == ' ' { c } else { ' ' })
        .collect();
    let out: String = kept
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if c != '\'' {
                return c;
            }
            let before = i > 0 && kept[i - 1].is_ascii_lowercase();
            let after = kept.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if before && after { c } else { ' ' }
        })
        .collect();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// (word errors, reference words) by Levenshtein distance over normalised words.
pub fn wer_counts(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let r: Vec<&str> = r.split(' ').filter(|w| !w.is_empty()).collect();
    let h: Vec<&str> = h.split(' ').filter(|w| !w.is_empty()).collect();
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + usize::from(r[i - 1] != h[j - 1]));
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

#[derive(Debug, Clone)]
pub struct ManifestEntry {
    /// As written in the manifest.
    pub name: String,
    pub path: PathBuf,
    pub reference: String,
}

/// Reads a manifest: tab-separated `file duration reference …` with a header line; paths are
/// relative to the manifest's folder unless absolute.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || (n == 0 && line.starts_with("file\t")) {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            return Err(Error::InvalidAudio(format!(
                "{} line {}: expected file<TAB>duration<TAB>transcript",
                path.display(),
                n + 1
            )));
        }
        let file = Path::new(cols[0]);
        let full = if file.is_absolute() { file.to_path_buf() } else { base.join(file) };
        entries.push(ManifestEntry { name: cols[0].to_string(), path: full, reference: cols[2].to_string() });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_matches_wer_py() {
        // Expected strings produced by ../shared/speech/wer.py's normalize().
        assert_eq!(
            normalize("Author of the danger trail, Philip Steels, etc."),
            "author of the danger trail philip steels etc"
        );
        assert_eq!(normalize("lag behind by 25 to 30 year"), "lag behind by twenty five to thirty year");
        assert_eq!(normalize("don't 'quoted' rock-n-roll’s"), "don't quoted rock n roll's");
        assert_eq!(
            normalize("In 1999, 007 and 1234567!"),
            "in one thousand nine hundred ninety nine seven and one two three four five six seven"
        );
        assert_eq!(normalize("ＡＢＣ 100 x2"), "abc one hundred x two");
        assert_eq!(normalize("café 'n' o'"), "caf n o");
    }

    #[test]
    fn wer_counts_edits() {
        assert_eq!(wer_counts("the cat sat", "the cat sat"), (0, 3));
        assert_eq!(wer_counts("the cat sat", "a cat sat down"), (2, 3));
        assert_eq!(wer_counts("one two", ""), (2, 2));
        assert_eq!(wer_counts("Twenty five", "25"), (0, 2));
    }
}
