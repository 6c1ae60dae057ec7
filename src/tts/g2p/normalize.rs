//! Text normalisation before tokenising: readings the lexicon cannot produce on its own (times,
//! dates, units, abbreviations, other currencies, symbols, letter/digit mixes). Plain numbers
//! (cardinals, ordinals, years, decimals, $/£/€ amounts, percents) are left to the lexicon, as in
//! misaki. The word tables are the package's normalize.json; the rules follow its normalize.py.

use std::collections::HashMap;

use fancy_regex::{Captures, Regex};
use serde::Deserialize;

use super::numbers;
use crate::error::{Error, Result};

/// A JSON object read as its entries in file order (the symbol table is applied in order).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Tables {
    months: HashMap<String, String>,
    abbreviations: HashMap<String, String>,
    titles: HashMap<String, String>,
    units: HashMap<String, [String; 2]>,
    symbols: Ordered<String>,
    currency: HashMap<String, [String; 2]>,
    roman_cardinal: Vec<String>,
    roman_ordinal: Vec<String>,
}

pub struct Normalizer {
    t: Tables,
    month_names: Vec<String>,
    ws: Regex,
    time: Regex,
    date_us: Regex,
    date_iso: Regex,
    month_day: Regex,
    day_month: Regex,
    unit: Regex,
    deg: Regex,
    cents: Regex,
    currency: Regex,
    big_money: Regex,
    title: Regex,
    abbrev: Regex,
    no: Regex,
    hash: Regex,
    roman_c: Regex,
    roman_o: Regex,
    phone: Regex,
    range: Regex,
    fraction: Regex,
    plus: Regex,
    space_punct: Regex,
    symbols: Vec<(Regex, String)>,
}

/// Alternation of literal words, longest first (so a longer word wins at the same position).
fn alternation<'a>(words: impl IntoIterator<Item = &'a String>) -> String {
    let mut words: Vec<&String> = words.into_iter().collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.iter().map(|w| fancy_regex::escape(w).into_owned()).collect::<Vec<_>>().join("|")
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("normalisation pattern {pattern:?}: {e}"))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase())
}

const NUM: &str = r"\d+(?:,\d{3})*(?:\.\d+)?";
const ROMAN_NUMERAL: &str = r"((?=[IVXLC])M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3}))";

fn plural<'a>(n: &str, words: &'a [String; 2]) -> &'a str {
    if matches!(n.replace(',', "").as_str(), "1" | "1.0" | "-1") { &words[0] } else { &words[1] }
}

fn roman(s: &str) -> i128 {
    let value = |c: char| match c {
        'I' => 1,
        'V' => 5,
        'X' => 10,
        'L' => 50,
        'C' => 100,
        'D' => 500,
        _ => 1000,
    };
    let chars: Vec<char> = s.chars().collect();
    (0..chars.len())
        .map(|i| {
            if i + 1 < chars.len() && value(chars[i + 1]) > value(chars[i]) {
                -value(chars[i])
            } else {
                value(chars[i])
            }
        })
        .sum()
}

fn group<'t>(c: &Captures<'t, str>, i: usize) -> &'t str {
    c.get(i).map_or("", |m| m.as_str())
}

fn int(s: &str) -> i128 {
    s.parse().unwrap_or(0)
}

impl Normalizer {
    pub fn from_json(json: &str) -> Result<Self> {
        let t: Tables =
            serde_json::from_str(json).map_err(|e| Error::Model(format!("normalize.json: {e}")))?;
        let mut month_names: Vec<(String, String)> =
            t.months.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        month_names.sort_by_key(|(k, _)| {
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
                .iter()
                .position(|m| m == k)
        });
        let month_names: Vec<String> = month_names.into_iter().map(|(_, v)| v).collect();
        let mut month_words: Vec<String> = month_names.clone();
        month_words.extend(t.months.keys().map(|k| capitalize(k)));
        month_words.push("Sept".into());
        let months = alternation(&month_words);
        let units = alternation(t.units.keys());
        let titles = alternation(t.titles.keys());
        let abbrev = alternation(t.abbreviations.keys());
        let roman_c = alternation(&t.roman_cardinal);
        let roman_o = alternation(&t.roman_ordinal);
        let symbols = t
            .symbols
            .0
            .iter()
            .map(|(sym, word)| {
                let pattern = if "=<>~".contains(sym.as_str()) {
                    format!(r"(?<=\S) ?{} ?(?=\S)", fancy_regex::escape(sym))
                } else {
                    fancy_regex::escape(sym).into_owned()
                };
                (re(&pattern), if word.is_empty() { " ".to_string() } else { format!(" {word} ") })
            })
            .collect();
        Ok(Self {
            ws: re(r"\s+"),
            time: re(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?[Mm]\.?(?![A-Za-z]))?(?!\d)"),
            date_us: re(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"),
            date_iso: re(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
            month_day: re(&format!(
                r"\b({months})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b(?![\d:%])(,? \d{{4}}\b)?"
            )),
            day_month: re(&format!(r"\b(the )?(\d{{1,2}}) (?:of )?({months})\b\.?")),
            unit: re(&format!(r"(?<![\w.])(-?{NUM})\s?({units})(?![\w])")),
            deg: re(&format!(r"(?<![\w.])(-?{NUM})\s?°\s?([CF])?(?![\w])")),
            cents: re(&format!(r"(?<![\w.])({NUM})\s?¢")),
            currency: re(&format!(
                r"(?<![\w])([¥₹₩]|Rs\.?|USD|EUR|GBP)\s?({NUM})(?:\s?(hundred|thousand|million|billion|trillion|[kKmMbB]\b))?"
            )),
            big_money: re(&format!(
                r"([$£€])({NUM})\s?(hundred|thousand|million|billion|trillion|[kKmMbB]\b)"
            )),
            title: re(&format!(r"\b({titles})\.? (?=[A-Z])")),
            abbrev: re(&format!(r"(?<![\w.])({abbrev})(?![\w])")),
            no: re(r"\b(No|Nos)\. ?(?=\d)"),
            hash: re(r"(?<![\w&])#(?=\d)"),
            roman_c: re(&format!(r"\b({roman_c}) {ROMAN_NUMERAL}\b(?![.'’]\w)")),
            roman_o: re(&format!(r"\b({roman_o}) {ROMAN_NUMERAL}\b(?![.'’]\w)")),
            phone: re(r"(?<![\w.\-])(?:\d{3}-)?\d{3}-\d{4}(?![\w.\-])"),
            range: re(r"(?<![\w.\-])(\d{1,4})\s?[-–]\s?(\d{1,4})(?![\w.\-%])"),
            fraction: re(r"(?<![\w./])(\d{1,2})/(\d{1,2})(?![\w./])"),
            plus: re(r"(?<![\w+])\+(?=\d)"),
            space_punct: re(r" +([,.;:!?])"),
            symbols,
            month_names,
            t,
        })
    }

    /// A title after which a period does not end a sentence ("Dr. Smith").
    pub fn is_title(&self, word: &str) -> bool {
        self.t.titles.contains_key(word)
    }

    fn month(&self, name: &str) -> String {
        let key: String = name.to_lowercase().chars().take(3).collect();
        self.t.months.get(&key).cloned().unwrap_or_else(|| name.to_string())
    }

    fn date(&self, year: Option<&str>, month: i128, day: i128) -> Option<String> {
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let mut s = format!("{} {}", self.month_names[(month - 1) as usize], numbers::ordinal(day));
        if let Some(y) = year {
            s.push_str(&format!(", {y}"));
        }
        Some(s)
    }

    pub fn normalize(&self, text: &str) -> String {
        let text = self.ws.replace_all(text, " ");
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        let mut text = text.replace('\u{a0}', " ").replace('’', "'").replace('‒', "-").replace('―', "—");
        let apply = |text: &mut String, re: &Regex, f: &dyn Fn(&Captures<str>, &str) -> String| {
            let source = text.clone();
            *text = re.replace_all(&source, |c: &Captures<str>| f(c, &source)).into_owned();
        };
        apply(&mut text, &self.time, &|c, s| {
            let whole = group(c, 0);
            let (h, mi, sec, ap) = (
                int(group(c, 1)),
                int(group(c, 2)),
                c.get(3).map(|m| m.as_str()),
                c.get(4).map(|m| m.as_str()),
            );
            if h > 24 || mi > 59 || sec.is_some_and(|x| int(x) > 59) {
                return whole.to_string();
            }
            let mut words = numbers::cardinal(h);
            if mi == 0 {
                if ap.is_none() && sec.is_none() {
                    words.push_str(" o'clock");
                }
            } else if mi < 10 {
                words.push_str(&format!(" oh {}", numbers::cardinal(mi)));
            } else {
                words.push_str(&format!(" {}", numbers::cardinal(mi)));
            }
            if let Some(sec) = sec {
                let n = int(sec);
                words.push_str(&format!(
                    " and {}{}",
                    numbers::cardinal(n),
                    if n == 1 { " second" } else { " seconds" }
                ));
            }
            if let Some(ap) = ap {
                // Dotted so the lexicon spells the letters.
                let end = c.get(0).unwrap().end();
                let dot = if s[end..].starts_with('.') { "" } else { "." };
                words.push_str(&format!(" {}.M{dot}", ap.to_uppercase()));
            }
            words
        });
        apply(&mut text, &self.date_iso, &|c, _| {
            self.date(Some(group(c, 1)), int(group(c, 2)), int(group(c, 3)))
                .unwrap_or_else(|| group(c, 0).to_string())
        });
        apply(&mut text, &self.date_us, &|c, _| {
            let (a, b, mut y) = (int(group(c, 1)), int(group(c, 2)), group(c, 3).to_string());
            if y.len() == 2 {
                y = format!("{}{y}", if int(&y) > 30 { "19" } else { "20" });
            }
            let (mo, d) = if a <= 12 { (a, b) } else { (b, a) };
            self.date(Some(&y), mo, d).unwrap_or_else(|| group(c, 0).to_string())
        });
        let scale = |big: &str| match big.to_lowercase().as_str() {
            "k" => "thousand".to_string(),
            "m" => "million".to_string(),
            "b" => "billion".to_string(),
            _ => big.to_string(),
        };
        apply(&mut text, &self.big_money, &|c, _| {
            format!("{} {} {}", group(c, 2), scale(group(c, 3)), self.t.currency[group(c, 1)][1])
        });
        apply(&mut text, &self.cents, &|c, _| {
            format!("{} {}", group(c, 1), plural(group(c, 1), &self.t.currency["¢"]))
        });
        apply(&mut text, &self.currency, &|c, _| {
            let words = &self.t.currency[group(c, 1).trim_end_matches('.')];
            let n = group(c, 2);
            match c.get(3) {
                Some(big) => format!("{n} {} {}", scale(big.as_str()), words[1]),
                None => format!("{n} {}", plural(n, words)),
            }
        });
        apply(&mut text, &self.deg, &|c, _| {
            let n = group(c, 1);
            let mut words = format!(
                "{n} {}",
                if matches!(n.replace(',', "").as_str(), "1" | "1.0" | "-1") { "degree" } else { "degrees" }
            );
            match group(c, 2) {
                "C" => words.push_str(" Celsius"),
                "F" => words.push_str(" Fahrenheit"),
                _ => {}
            }
            words
        });
        apply(&mut text, &self.unit, &|c, _| {
            format!("{} {}", group(c, 1), plural(group(c, 1), &self.t.units[group(c, 2)]))
        });
        apply(&mut text, &self.month_day, &|c, _| {
            let day = int(group(c, 2));
            if !(1..=31).contains(&day) {
                return group(c, 0).to_string();
            }
            format!("{} {}{}", self.month(group(c, 1)), numbers::ordinal(day), group(c, 3))
        });
        apply(&mut text, &self.day_month, &|c, _| {
            let day = int(group(c, 2));
            if !(1..=31).contains(&day) {
                return group(c, 0).to_string();
            }
            format!("the {} of {}", numbers::ordinal(day), self.month(group(c, 3)))
        });
        apply(&mut text, &self.title, &|c, _| format!("{} ", self.t.titles[group(c, 1)]));
        apply(&mut text, &self.abbrev, &|c, s| {
            let word = group(c, 1);
            let at_end = c.get(0).unwrap().end() == s.len() && word.ends_with('.');
            format!("{}{}", self.t.abbreviations[word], if at_end { "." } else { "" })
        });
        apply(&mut text, &self.no, &|c, _| {
            if group(c, 1) == "No" { "Number ".into() } else { "Numbers ".into() }
        });
        apply(&mut text, &self.hash, &|_, _| "number ".into());
        apply(&mut text, &self.roman_c, &|c, _| format!("{} {}", group(c, 1), roman(group(c, 2))));
        apply(&mut text, &self.roman_o, &|c, _| {
            format!("{} the {}", group(c, 1), numbers::ordinal(roman(group(c, 2))))
        });
        apply(&mut text, &self.phone, &|c, _| {
            let spaced: Vec<String> = group(c, 0).replace('-', ", ").chars().map(String::from).collect();
            spaced.join(" ")
        });
        apply(&mut text, &self.fraction, &|c, _| {
            let (a, b) = (int(group(c, 1)), int(group(c, 2)));
            if 0 < a && a < b && b <= 10 {
                let unit = [
                    "", "", "half", "third", "quarter", "fifth", "sixth", "seventh", "eighth", "ninth",
                    "tenth",
                ][b as usize];
                if unit == "half" {
                    return if a == 1 { "one half".into() } else { format!("{a} halves") };
                }
                return format!("{a} {unit}{}", if a == 1 { "" } else { "s" });
            }
            if (1..=12).contains(&a) && (1..=31).contains(&b) {
                return self.date(None, a, b).unwrap_or_default();
            }
            format!("{a} slash {b}")
        });
        apply(&mut text, &self.range, &|c, _| format!("{} to {}", group(c, 1), group(c, 2)));
        apply(&mut text, &self.plus, &|_, _| "plus ".into());
        for ((re, word), (sym, _)) in self.symbols.iter().zip(&self.t.symbols.0) {
            if text.contains(sym.as_str()) {
                text = re.replace_all(&text, word.as_str()).into_owned();
            }
        }
        let text = self.ws.replace_all(&text, " ");
        self.space_punct.replace_all(&text, "$1").trim().to_string()
    }
}
