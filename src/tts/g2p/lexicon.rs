//! misaki's English lexicon logic (misaki 0.9.4 en.py, as the package's lexicon.py ports it):
//! gold and silver dictionaries with part-of-speech entries, the function-word special cases,
//! -s/-ed/-ing stemming, stress rules and the reading of numbers and currency amounts.

use rustc_hash::FxHashMap;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::numbers;
use super::text::{capitalize, is_alpha, is_ascii_digits, lower, upper};
use super::{Context, Tok};

pub const PRIMARY: char = 'ˈ';
pub const SECONDARY: char = 'ˌ';
const CONSONANTS: &str = "bdfhjklmnpstvwzðŋɡɹɾʃʒʤʧθ";
pub const VOWELS: &str = "AIOQWYaiuæɑɒɔəɛɜɪʊʌᵻ";
const DIPHTHONGS: &str = "AIOQWYʤʧ";
const US_TAUS: &str = "AIOWYiuæɑəɛɪɹʊʌ";
const ORDINALS: [&str; 4] = ["st", "nd", "rd", "th"];

pub fn is_consonant(c: char) -> bool {
    CONSONANTS.contains(c)
}

pub fn is_vowel(c: char) -> bool {
    VOWELS.contains(c)
}

/// A currency symbol's unit and sub-unit.
pub fn currency_units(symbol: &str) -> Option<(&'static str, &'static str)> {
    match symbol {
        "$" => Some(("dollar", "cent")),
        "£" => Some(("pound", "pence")),
        "€" => Some(("euro", "cent")),
        _ => None,
    }
}

pub fn stress_weight(ps: &str) -> usize {
    ps.chars().map(|c| if DIPHTHONGS.contains(c) { 2 } else { 1 }).sum()
}

fn has_stress(ps: &str) -> bool {
    ps.contains(PRIMARY) || ps.contains(SECONDARY)
}

/// Moves each stress mark to just before the vowel it stresses.
fn restress(ps: &str) -> String {
    let chars: Vec<char> = ps.chars().collect();
    let mut placed: Vec<(f64, char)> = chars.iter().enumerate().map(|(i, &c)| (i as f64, c)).collect();
    for (i, &c) in chars.iter().enumerate() {
        if (c == PRIMARY || c == SECONDARY)
            && let Some(j) = (i..chars.len()).find(|&j| is_vowel(chars[j]))
        {
            placed[i] = (j as f64 - 0.5, c);
        }
    }
    placed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    placed.into_iter().map(|(_, c)| c).collect()
}

pub fn apply_stress(ps: &str, stress: Option<f64>) -> String {
    let Some(stress) = stress else { return ps.to_string() };
    let no_vowels = !ps.chars().any(is_vowel);
    if stress < -1.0 {
        ps.replace([PRIMARY, SECONDARY], "")
    } else if stress == -1.0 || ((stress == 0.0 || stress == -0.5) && ps.contains(PRIMARY)) {
        ps.replace(SECONDARY, "").replace(PRIMARY, &SECONDARY.to_string())
    } else if (stress == 0.0 || stress == 0.5 || stress == 1.0) && !has_stress(ps) {
        if no_vowels { ps.to_string() } else { restress(&format!("{SECONDARY}{ps}")) }
    } else if stress >= 1.0 && !ps.contains(PRIMARY) && ps.contains(SECONDARY) {
        ps.replace(SECONDARY, &PRIMARY.to_string())
    } else if stress > 1.0 && !has_stress(ps) {
        if no_vowels { ps.to_string() } else { restress(&format!("{PRIMARY}{ps}")) }
    } else {
        ps.to_string()
    }
}

fn parent_tag(tag: &str) -> &str {
    if tag.starts_with("VB") {
        "VERB"
    } else if tag.starts_with("NN") {
        "NOUN"
    } else if tag.starts_with("ADV") || tag.starts_with("RB") {
        "ADV"
    } else if tag.starts_with("ADJ") || tag.starts_with("JJ") {
        "ADJ"
    } else {
        tag
    }
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Entry {
    Plain(String),
    ByTag(FxHashMap<String, Option<String>>),
}

/// A misaki dictionary with grow_dictionary's semantics at lookup time: a lowercase key also
/// answers to its Capitalized form and vice versa, unless that form has its own entry.
struct Dict(FxHashMap<String, Entry>);

impl Dict {
    fn get(&self, w: &str) -> Option<&Entry> {
        if let Some(v) = self.0.get(w) {
            return Some(v);
        }
        if w.chars().count() < 2 {
            return None;
        }
        if w == lower(w) {
            let c = capitalize(w);
            return if c != w { self.0.get(&c) } else { None };
        }
        if w == capitalize(&lower(w)) {
            return self.0.get(&lower(w));
        }
        None
    }

    fn contains(&self, w: &str) -> bool {
        self.get(w).is_some()
    }

    fn plain(&self, w: &str) -> Option<String> {
        match self.get(w)? {
            Entry::Plain(s) => Some(s.clone()),
            Entry::ByTag(m) => m.get("DEFAULT").cloned().flatten(),
        }
    }
}

type Reading = (Option<String>, Option<u8>);

pub struct Lexicon {
    golds: Dict,
    silvers: Dict,
}

fn ends_doubled_ing(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    if word.ends_with("cking") {
        return true;
    }
    n >= 5
        && chars[n - 4] == chars[n - 5]
        && "bcdgklmnprstvxz".contains(chars[n - 4])
        && word.ends_with("ing")
}

/// Python's slicing by characters: the word without its last `k` characters.
fn drop_last(w: &str, k: usize) -> String {
    let n = w.chars().count();
    w.chars().take(n.saturating_sub(k)).collect()
}

fn char_len(w: &str) -> usize {
    w.chars().count()
}

impl Lexicon {
    pub fn from_json(gold: &[u8], silver: &[u8]) -> crate::error::Result<Self> {
        let parse = |b: &[u8], what: &str| -> crate::error::Result<Dict> {
            serde_json::from_slice(b)
                .map(Dict)
                .map_err(|e| crate::error::Error::Model(format!("{what}: {e}")))
        };
        Ok(Self { golds: parse(gold, "lexicon_us_gold")?, silvers: parse(silver, "lexicon_us_silver")? })
    }

    fn get_nnp(&self, word: &str) -> Reading {
        let mut joined = String::new();
        for c in word.chars().filter(|c| c.is_alphabetic()) {
            match self.golds.plain(&upper(&c.to_string())) {
                Some(p) => joined.push_str(&p),
                None => return (None, None),
            }
        }
        let ps = apply_stress(&joined, Some(0.0));
        let ps = match ps.rsplit_once(SECONDARY) {
            Some((a, b)) => format!("{a}{PRIMARY}{b}"),
            None => ps,
        };
        (Some(ps), Some(3))
    }

    fn special_case(&self, word: &str, tag: &str, stress: Option<f64>, ctx: &Context) -> Reading {
        let stripped = word.trim_matches('.');
        if tag == "ADD" && (word == "." || word == "/") {
            return self.lookup(if word == "." { "dot" } else { "slash" }, None, Some(-0.5), Some(ctx));
        } else if let Some(name) = lexicon_symbol(word) {
            return self.lookup(name, None, None, Some(ctx));
        } else if stripped.contains('.')
            && is_alpha(&word.replace('.', ""))
            && word.split('.').map(char_len).max().unwrap_or(0) < 3
        {
            return self.get_nnp(word);
        }
        match word {
            "a" | "A" => return (Some(if tag == "DT" { "ɐ" } else { "ˈA" }.into()), Some(4)),
            "am" | "Am" | "AM" => {
                if tag.starts_with("NN") {
                    return self.get_nnp(word);
                } else if ctx.future_vowel.is_none() || word != "am" || stress.is_some_and(|s| s > 0.0) {
                    return (self.golds.plain("am"), Some(4));
                }
                return (Some("ɐm".into()), Some(4));
            }
            "an" | "An" | "AN" => {
                if word == "AN" && tag.starts_with("NN") {
                    return self.get_nnp(word);
                }
                return (Some("ɐn".into()), Some(4));
            }
            "I" if tag == "PRP" => return (Some(format!("{SECONDARY}I")), Some(4)),
            "by" | "By" | "BY" if parent_tag(tag) == "ADV" => return (Some("bˈI".into()), Some(4)),
            _ => {}
        }
        if word == "to" || word == "To" || (word == "TO" && (tag == "TO" || tag == "IN")) {
            let ps = match ctx.future_vowel {
                None => self.golds.plain("to"),
                Some(false) => Some("tə".into()),
                Some(true) => Some("tʊ".into()),
            };
            return (ps, Some(4));
        } else if word == "in" || word == "In" || (word == "IN" && tag != "NNP") {
            let stress =
                if ctx.future_vowel.is_none() || tag != "IN" { PRIMARY.to_string() } else { String::new() };
            return (Some(format!("{stress}ɪn")), Some(4));
        } else if word == "the" || word == "The" || (word == "THE" && tag == "DT") {
            return (Some(if ctx.future_vowel == Some(true) { "ði" } else { "ðə" }.into()), Some(4));
        } else if tag == "IN" && (lower(word) == "vs" || lower(word) == "vs.") {
            return self.lookup("versus", None, None, Some(ctx));
        } else if word == "used" || word == "Used" || word == "USED" {
            let key = if (tag == "VBD" || tag == "JJ") && ctx.future_to { "VBD" } else { "DEFAULT" };
            let ps = match self.golds.get("used") {
                Some(Entry::ByTag(m)) => m.get(key).cloned().flatten(),
                Some(Entry::Plain(s)) => Some(s.clone()),
                None => None,
            };
            return (ps, Some(4));
        }
        (None, None)
    }

    pub fn is_known(&self, word: &str, _tag: Option<&str>) -> bool {
        if self.golds.contains(word) || lexicon_symbol(word).is_some() || self.silvers.contains(word) {
            return true;
        }
        if !is_alpha(word) || !word.chars().all(|c| c == '\'' || c == '-' || c.is_ascii_alphabetic()) {
            return false;
        }
        if char_len(word) == 1 {
            return true;
        }
        if word == upper(word) && self.golds.contains(&lower(word)) {
            return true;
        }
        let rest: String = word.chars().skip(1).collect();
        rest == upper(&rest)
    }

    pub fn lookup(
        &self,
        word: &str,
        tag: Option<&str>,
        stress: Option<f64>,
        ctx: Option<&Context>,
    ) -> Reading {
        let mut word = word.to_string();
        let mut is_nnp = None;
        if word == upper(&word) && !self.golds.contains(&word) {
            word = lower(&word);
            is_nnp = Some(tag == Some("NNP"));
        }
        let (mut entry, mut rating) = (self.golds.get(&word).cloned(), 4);
        if entry.is_none() && is_nnp != Some(true) {
            entry = self.silvers.get(&word).cloned();
            rating = 3;
        }
        let ps = match entry {
            None => None,
            Some(Entry::Plain(s)) => Some(s),
            Some(Entry::ByTag(m)) => {
                let key = if ctx.is_some_and(|c| c.future_vowel.is_none()) && m.contains_key("None") {
                    Some("None".to_string())
                } else {
                    match tag {
                        Some(t) if m.contains_key(t) => Some(t.to_string()),
                        Some(t) => Some(parent_tag(t).to_string()),
                        None => None,
                    }
                };
                match key.and_then(|k| m.get(&k).cloned()) {
                    Some(v) => v,
                    None => m.get("DEFAULT").cloned().flatten(),
                }
            }
        };
        if ps.is_none() || (is_nnp == Some(true) && !ps.as_deref().unwrap_or("").contains(PRIMARY)) {
            let (nnp, r) = self.get_nnp(&word);
            if nnp.is_some() {
                return (nnp, r);
            }
        }
        (ps.map(|p| apply_stress(&p, stress)), Some(rating))
    }

    fn suffix_s(stem: Option<String>) -> Option<String> {
        let stem = stem.filter(|s| !s.is_empty())?;
        let last = stem.chars().last()?;
        Some(if "ptkfθ".contains(last) {
            format!("{stem}s")
        } else if "szʃʒʧʤ".contains(last) {
            format!("{stem}ᵻz")
        } else {
            format!("{stem}z")
        })
    }

    fn stem_s(&self, word: &str, tag: Option<&str>, stress: Option<f64>, ctx: Option<&Context>) -> Reading {
        if char_len(word) < 3 || !word.ends_with('s') {
            return (None, None);
        }
        let stem = if !word.ends_with("ss") && self.is_known(&drop_last(word, 1), tag) {
            drop_last(word, 1)
        } else if (word.ends_with("'s")
            || (char_len(word) > 4 && word.ends_with("es") && !word.ends_with("ies")))
            && self.is_known(&drop_last(word, 2), tag)
        {
            drop_last(word, 2)
        } else if char_len(word) > 4
            && word.ends_with("ies")
            && self.is_known(&format!("{}y", drop_last(word, 3)), tag)
        {
            format!("{}y", drop_last(word, 3))
        } else {
            return (None, None);
        };
        let (stem, rating) = self.lookup(&stem, tag, stress, ctx);
        (Self::suffix_s(stem), rating)
    }

    fn suffix_ed(stem: Option<String>) -> Option<String> {
        let stem = stem.filter(|s| !s.is_empty())?;
        let chars: Vec<char> = stem.chars().collect();
        let last = *chars.last()?;
        Some(if "pkfθʃsʧ".contains(last) {
            format!("{stem}t")
        } else if last == 'd' {
            format!("{stem}ᵻd")
        } else if last != 't' {
            format!("{stem}d")
        } else if chars.len() < 2 {
            format!("{stem}ɪd")
        } else if US_TAUS.contains(chars[chars.len() - 2]) {
            format!("{}ɾᵻd", drop_last(&stem, 1))
        } else {
            format!("{stem}ᵻd")
        })
    }

    fn stem_ed(&self, word: &str, tag: Option<&str>, stress: Option<f64>, ctx: Option<&Context>) -> Reading {
        if char_len(word) < 4 || !word.ends_with('d') {
            return (None, None);
        }
        let stem = if !word.ends_with("dd") && self.is_known(&drop_last(word, 1), tag) {
            drop_last(word, 1)
        } else if char_len(word) > 4
            && word.ends_with("ed")
            && !word.ends_with("eed")
            && self.is_known(&drop_last(word, 2), tag)
        {
            drop_last(word, 2)
        } else {
            return (None, None);
        };
        let (stem, rating) = self.lookup(&stem, tag, stress, ctx);
        (Self::suffix_ed(stem), rating)
    }

    fn suffix_ing(stem: Option<String>) -> Option<String> {
        let stem = stem.filter(|s| !s.is_empty())?;
        let chars: Vec<char> = stem.chars().collect();
        let n = chars.len();
        Some(if n > 1 && chars[n - 1] == 't' && US_TAUS.contains(chars[n - 2]) {
            format!("{}ɾɪŋ", drop_last(&stem, 1))
        } else {
            format!("{stem}ɪŋ")
        })
    }

    fn stem_ing(&self, word: &str, tag: Option<&str>, stress: Option<f64>, ctx: Option<&Context>) -> Reading {
        if char_len(word) < 5 || !word.ends_with("ing") {
            return (None, None);
        }
        let base = drop_last(word, 3);
        let stem = if char_len(word) > 5 && self.is_known(&base, tag) {
            base
        } else if self.is_known(&format!("{base}e"), tag) {
            format!("{base}e")
        } else if char_len(word) > 5 && ends_doubled_ing(word) && self.is_known(&drop_last(word, 4), tag) {
            drop_last(word, 4)
        } else {
            return (None, None);
        };
        let (stem, rating) = self.lookup(&stem, tag, stress, ctx);
        (Self::suffix_ing(stem), rating)
    }

    fn get_word(&self, word: &str, tag: &str, stress: Option<f64>, ctx: &Context) -> Reading {
        let special = self.special_case(word, tag, stress, ctx);
        if special.0.is_some() {
            return special;
        }
        let wl = lower(word);
        let rest: String = word.chars().skip(1).collect();
        let mut word = word.to_string();
        if char_len(&word) > 1
            && is_alpha(&word.replace('\'', ""))
            && word != wl
            && (tag != "NNP" || char_len(&word) > 7)
            && !self.golds.contains(&word)
            && !self.silvers.contains(&word)
            && (word == upper(&word) || rest == lower(&rest))
            && (self.golds.contains(&wl)
                || self.silvers.contains(&wl)
                || [
                    self.stem_s(&wl, Some(tag), stress, Some(ctx)),
                    self.stem_ed(&wl, Some(tag), stress, Some(ctx)),
                    self.stem_ing(&wl, Some(tag), stress, Some(ctx)),
                ]
                .iter()
                .any(|(p, _)| p.as_deref().is_some_and(|p| !p.is_empty())))
        {
            word = wl;
        }
        let tag_opt = Some(tag);
        if self.is_known(&word, tag_opt) {
            return self.lookup(&word, tag_opt, stress, Some(ctx));
        } else if word.ends_with("s'") && self.is_known(&format!("{}'s", drop_last(&word, 2)), tag_opt) {
            return self.lookup(&format!("{}'s", drop_last(&word, 2)), tag_opt, stress, Some(ctx));
        } else if word.ends_with('\'') && self.is_known(&drop_last(&word, 1), tag_opt) {
            return self.lookup(&drop_last(&word, 1), tag_opt, stress, Some(ctx));
        }
        let s = self.stem_s(&word, tag_opt, stress, Some(ctx));
        if s.0.is_some() {
            return s;
        }
        let ed = self.stem_ed(&word, tag_opt, stress, Some(ctx));
        if ed.0.is_some() {
            return ed;
        }
        let ing = self.stem_ing(&word, tag_opt, Some(stress.unwrap_or(0.5)), Some(ctx));
        if ing.0.is_some() {
            return ing;
        }
        (None, None)
    }

    fn is_currency(word: &str) -> bool {
        if !word.contains('.') {
            return true;
        }
        if word.matches('.').count() > 1 {
            return false;
        }
        word.split('.').nth(1).map_or(0, char_len) < 3
    }

    pub fn get_number(&self, word: &str, currency: Option<&str>, is_head: bool) -> Reading {
        let suffix_len = word.chars().rev().take_while(|c| c.is_ascii_lowercase() || *c == '\'').count();
        let suffix: Option<String> =
            (suffix_len > 0).then(|| word.chars().skip(char_len(word) - suffix_len).collect());
        let mut word: String = word.chars().take(char_len(word) - suffix_len).collect();
        let mut result: Vec<(String, u8)> = Vec::new();
        let push = |result: &mut Vec<(String, u8)>, r: Reading| {
            result.push((r.0.unwrap_or_default(), r.1.unwrap_or(0)))
        };
        if word.starts_with('-') {
            push(&mut result, self.lookup("minus", None, None, None));
            word = word[1..].to_string();
        }
        let extend_words = |result: &mut Vec<(String, u8)>, words: &str| {
            for w in split_letter_runs(words) {
                if w != "and" {
                    push(result, self.lookup(&w, None, if w == "point" { Some(-2.0) } else { None }, None));
                }
            }
        };
        let extend_num = |result: &mut Vec<(String, u8)>, num: &str| {
            extend_words(result, &numbers::cardinal(num.parse::<i128>().unwrap_or(0)))
        };
        let is_ordinal = suffix.as_deref().is_some_and(|s| ORDINALS.contains(&s));
        let currency_units = currency.and_then(currency_units);
        if is_ascii_digits(&word) && is_ordinal {
            extend_words(&mut result, &numbers::ordinal(word.parse().unwrap_or(0)));
        } else if result.is_empty()
            && char_len(&word) == 4
            && currency_units.is_none()
            && is_ascii_digits(&word)
        {
            extend_words(&mut result, &numbers::year(word.parse().unwrap_or(0)));
        } else if !is_head && !word.contains('.') {
            let num = word.replace(',', "");
            let digits: Vec<char> = num.chars().collect();
            if digits.first() == Some(&'0') || digits.len() > 3 {
                for d in &digits {
                    extend_num(&mut result, &d.to_string());
                }
            } else if digits.len() == 3 && !num.ends_with("00") {
                extend_num(&mut result, &digits[0].to_string());
                if digits[1] == '0' {
                    push(&mut result, self.lookup("O", None, Some(-2.0), None));
                    extend_num(&mut result, &digits[2].to_string());
                } else {
                    extend_num(&mut result, &digits[1..].iter().collect::<String>());
                }
            } else {
                extend_num(&mut result, &num);
            }
        } else if word.matches('.').count() > 1 || !is_head {
            for num in word.replace(',', "").split('.') {
                let digits: Vec<char> = num.chars().collect();
                if digits.is_empty() {
                } else if digits[0] == '0' || (digits.len() != 2 && digits[1..].iter().any(|&d| d != '0')) {
                    for d in &digits {
                        extend_num(&mut result, &d.to_string());
                    }
                } else {
                    extend_num(&mut result, num);
                }
            }
        } else if let Some((unit, sub_unit)) = currency_units.filter(|_| Self::is_currency(&word)) {
            let plain = word.replace(',', "");
            let mut pairs: Vec<(i128, &str)> =
                plain.split('.').zip([unit, sub_unit]).map(|(n, u)| (n.parse().unwrap_or(0), u)).collect();
            if pairs.len() > 1 {
                if pairs[1].0 == 0 {
                    pairs.truncate(1);
                } else if pairs[0].0 == 0 {
                    pairs.remove(0);
                }
            }
            for (i, (num, unit)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    push(&mut result, self.lookup("and", None, None, None));
                }
                extend_num(&mut result, &num.to_string());
                let reading = if num.abs() != 1 && unit != "pence" {
                    self.stem_s(&format!("{unit}s"), None, None, None)
                } else {
                    self.lookup(unit, None, None, None)
                };
                push(&mut result, reading);
            }
        } else {
            let words = if is_ascii_digits(&word) {
                numbers::cardinal(word.parse().unwrap_or(0))
            } else if !word.contains('.') {
                let n = word.replace(',', "").parse().unwrap_or(0);
                if is_ordinal { numbers::ordinal(n) } else { numbers::cardinal(n) }
            } else {
                let plain = word.replace(',', "");
                if let Some(frac) = plain.strip_prefix('.') {
                    format!(
                        "point {}",
                        frac.chars()
                            .map(|d| numbers::cardinal(d.to_digit(10).unwrap_or(0) as i128))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                } else {
                    numbers::decimal(&plain)
                }
            };
            extend_words(&mut result, &words);
        }
        if result.is_empty() {
            return (None, None);
        }
        let rating = result.iter().map(|(_, r)| *r).min();
        let joined = result.into_iter().map(|(p, _)| p).collect::<Vec<_>>().join(" ");
        let ps = match suffix.as_deref() {
            Some("s" | "'s") => Self::suffix_s(Some(joined)),
            Some("ed" | "'d") => Self::suffix_ed(Some(joined)),
            Some("ing") => Self::suffix_ing(Some(joined)),
            _ => Some(joined),
        };
        (ps, rating)
    }

    fn append_currency(&self, ps: String, currency: Option<&str>) -> String {
        let Some((unit, _)) = currency.and_then(currency_units) else { return ps };
        match self.stem_s(&format!("{unit}s"), None, None, None).0 {
            Some(c) if !c.is_empty() => format!("{ps} {c}"),
            _ => ps,
        }
    }

    fn is_number(word: &str, is_head: bool) -> bool {
        if !word.chars().any(|c| c.is_ascii_digit()) {
            return false;
        }
        let mut word = word;
        for s in ["ing", "'d", "ed", "'s", "st", "nd", "rd", "th", "s"] {
            if let Some(w) = word.strip_suffix(s) {
                word = w;
                break;
            }
        }
        word.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == ',' || c == '.' || (is_head && i == 0 && c == '-'))
    }

    /// A token's phonemes and rating (misaki Lexicon.__call__).
    pub fn read(&self, tk: &Tok, ctx: &Context) -> Reading {
        let word = tk.alias.as_deref().unwrap_or(&tk.text).replace(['\u{2018}', '\u{2019}'], "'");
        let word: String = word.nfkc().collect();
        let stress = if word == lower(&word) {
            None
        } else if word == upper(&word) {
            Some(2.0)
        } else {
            Some(0.5)
        };
        let (ps, rating) = self.get_word(&word, &tk.tag, stress, ctx);
        if let Some(ps) = ps {
            return (
                Some(apply_stress(&self.append_currency(ps, tk.currency.as_deref()), tk.stress)),
                rating,
            );
        }
        if Self::is_number(&word, tk.is_head) {
            let (ps, rating) = self.get_number(&word, tk.currency.as_deref(), tk.is_head);
            return (ps.map(|p| apply_stress(&p, tk.stress)), rating);
        }
        (None, None)
    }
}

/// The lexicon's own symbol words.
fn lexicon_symbol(word: &str) -> Option<&'static str> {
    match word {
        "%" => Some("percent"),
        "&" => Some("and"),
        "+" => Some("plus"),
        "@" => Some("at"),
        _ => None,
    }
}

/// `re.split(r"[^a-z]+", s)`: the runs of lowercase letters between separator runs, with an
/// empty piece where the text starts or ends with a separator.
fn split_letter_runs(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_separator = false;
    for c in s.chars() {
        if c.is_ascii_lowercase() {
            current.push(c);
            in_separator = false;
        } else if !in_separator {
            parts.push(std::mem::take(&mut current));
            in_separator = true;
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_runs_split_like_python() {
        assert_eq!(split_letter_runs("one thousand, two"), ["one", "thousand", "two"]);
        assert_eq!(split_letter_runs("-ab"), ["", "ab"]);
        assert_eq!(split_letter_runs("ab-"), ["ab", ""]);
        assert_eq!(split_letter_runs("twenty-three"), ["twenty", "three"]);
    }

    #[test]
    fn stress_rules() {
        assert_eq!(apply_stress("kˈæt", Some(-2.0)), "kæt");
        assert_eq!(apply_stress("kˈæt", Some(-0.5)), "kˌæt");
        assert_eq!(apply_stress("kæt", Some(2.0)), "kˈæt");
        assert_eq!(apply_stress("kæt", Some(0.5)), "kˌæt");
        assert_eq!(apply_stress("kˌæt", Some(1.0)), "kˈæt");
        assert_eq!(apply_stress("st", Some(2.0)), "st");
    }
}
