//! Word tokenizer with spaCy's English rules (as the package's tokenize.py writes them out):
//! special cases (contractions, "Mr.", "10am"), then prefixes and suffixes peeled off each
//! whitespace-separated chunk, then infixes (hyphens, slashes) split what is left; finally adjacent
//! pieces that spell a special case are joined back ("Sept" + "." → "Sept.").

use std::collections::HashMap;

use fancy_regex::Regex;

use crate::error::{Error, Result};

const LO: &str = "a-zß-öø-ÿ";
const UP: &str = "A-ZÀ-ÖØ-Þ";
const QUOTES: &str = "'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉";
const PUNCT: &str = "…,:;!?¿¡()[]{}<>_#*&。？！，、；：～·";
const ICONS: &str = "™®©°§¶†‡•";
const CURRENCY: &str = r"\$|£|€|¥|฿|US\$|C\$|A\$|₽|₹|₩|₪|₺|₴|₦|₫|₱|₲|₵|₸|₼|₾|₿";
const UNITS: &str = "km|km²|km³|m|m²|m³|dm|dm²|dm³|cm|cm²|cm³|mm|mm²|mm³|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|m/s|km/h\
|kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K|%";

fn esc(s: &str) -> String {
    fancy_regex::escape(s).into_owned()
}

fn each_escaped(chars: &str) -> Vec<String> {
    chars.chars().map(|c| esc(&c.to_string())).collect()
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("tokenizer pattern {pattern:?}: {e}"))
}

pub struct Tokenizer {
    special: HashMap<String, Vec<String>>,
    prefix: Regex,
    suffix: Regex,
    infix: Regex,
    url: Regex,
    chunk: Regex,
}

impl Tokenizer {
    pub fn from_json(json: &str) -> Result<Self> {
        let special = serde_json::from_str(json)
            .map_err(|e| Error::Model(format!("tokenizer_exceptions.json: {e}")))?;
        let punct = each_escaped(PUNCT);
        let quotes = each_escaped(QUOTES);
        let icons = vec![format!("[{}]", esc(ICONS))];
        let mut prefixes: Vec<String> =
            ["§", "%", "=", "—", "–", r"\+(?![0-9])", "…", "……"].iter().map(|s| s.to_string()).collect();
        prefixes.extend(punct.iter().cloned());
        prefixes.extend([r"\.\.+".to_string(), "…".to_string()]);
        prefixes.extend(quotes.iter().cloned());
        prefixes.push(CURRENCY.to_string());
        prefixes.extend(icons.iter().cloned());
        let mut suffixes: Vec<String> = vec!["…".into(), "……".into()];
        suffixes.extend(punct.iter().cloned());
        suffixes.extend([r"\.\.+".to_string(), "…".to_string()]);
        suffixes.extend(quotes.iter().cloned());
        suffixes.extend(icons.iter().cloned());
        suffixes.extend(["'s", "'S", "’s", "’S", "—", "–"].iter().map(|s| s.to_string()));
        suffixes.extend([
            r"(?<=[0-9])\+".to_string(),
            r"(?<=°[FfCcKk])\.".to_string(),
            format!(r"(?<=[0-9])(?:{CURRENCY})"),
            format!(r"(?<=[0-9])(?:{UNITS})"),
            format!(r"(?<=[0-9{LO}%²\-\+{}{}])\.", esc(PUNCT), esc(QUOTES)),
            format!(r"(?<=[{UP}][{UP}])\."),
        ]);
        let mut infixes: Vec<String> = vec![r"\.\.+".into(), "…".into()];
        infixes.extend(icons);
        infixes.extend([
            r"(?<=[0-9])[+\-\*^](?=[0-9-])".to_string(),
            format!(r"(?<=[{LO}{}])\.(?=[{UP}{}])", esc(QUOTES), esc(QUOTES)),
            r"(?<=[^\W\d_]),(?=[^\W\d_])".to_string(),
            r"(?<=[^\W_])(?:-|–|—|--|---|——|~)(?=[^\W\d_])".to_string(),
            r"(?<=[^\W_])[:<>=/](?=[^\W\d_])".to_string(),
        ]);
        Ok(Self {
            special,
            prefix: re(&prefixes.iter().map(|p| format!("^(?:{p})")).collect::<Vec<_>>().join("|")),
            suffix: re(&suffixes.iter().map(|s| format!("(?:{s})$")).collect::<Vec<_>>().join("|")),
            infix: re(&infixes.iter().map(|i| format!("(?:{i})")).collect::<Vec<_>>().join("|")),
            url: re(
                r"(?i)^(?:(?:https?|ftp)://|www\.)\S+$|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$|^(?:[\w-]+\.)+(?:com|org|net|edu|gov|io|co|uk|de|fr|info|biz|us|ca|au|tv|me|ly|ai)(?:/\S*)?$",
            ),
            chunk: re(r"\S+"),
        })
    }

    /// Tokens with the whitespace after each (" " when any followed).
    pub fn tokenize(&self, text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for m in self.chunk.find_iter(text).flatten() {
            let toks = self.split(m.as_str());
            let ws = if m.end() < text.len() { " " } else { "" };
            let n = toks.len();
            out.extend(
                toks.into_iter()
                    .enumerate()
                    .map(|(i, t)| (t, if i + 1 == n { ws.to_string() } else { String::new() })),
            );
        }
        out
    }

    fn find_len(re: &Regex, s: &str) -> usize {
        re.find(s).ok().flatten().map_or(0, |m| m.end() - m.start())
    }

    fn split(&self, s: &str) -> Vec<String> {
        if let Some(toks) = self.special.get(s) {
            return toks.clone();
        }
        let mut s = s.to_string();
        let (mut pre, mut suf) = (Vec::new(), Vec::new());
        let mut last = usize::MAX;
        while !s.is_empty() && s.len() != last && !self.special.contains_key(&s) {
            last = s.len();
            let pre_len = Self::find_len(&self.prefix, &s);
            if pre_len > 0 {
                let rest = &s[pre_len..];
                if !rest.is_empty() && self.special.contains_key(rest) {
                    pre.push(s[..pre_len].to_string());
                    s = rest.to_string();
                    break;
                }
            }
            let suf_len = Self::find_len(&self.suffix, &s[pre_len..]);
            if suf_len > 0 {
                let rest = &s[..s.len() - suf_len];
                if !rest.is_empty() && self.special.contains_key(rest) {
                    suf.push(s[s.len() - suf_len..].to_string());
                    s = rest.to_string();
                    break;
                }
            }
            if pre_len > 0 && suf_len > 0 && pre_len + suf_len <= s.len() {
                pre.push(s[..pre_len].to_string());
                suf.push(s[s.len() - suf_len..].to_string());
                s = s[pre_len..s.len() - suf_len].to_string();
            } else if pre_len > 0 {
                pre.push(s[..pre_len].to_string());
                s = s[pre_len..].to_string();
            } else if suf_len > 0 {
                suf.push(s[s.len() - suf_len..].to_string());
                s = s[..s.len() - suf_len].to_string();
            }
        }
        let mut toks = pre;
        if !s.is_empty() {
            if let Some(special) = self.special.get(&s) {
                toks.extend(special.iter().cloned());
            } else if self.url.is_match(&s).unwrap_or(false) {
                toks.push(s.clone());
            } else {
                let mut start = 0;
                for m in self.infix.find_iter(&s).flatten() {
                    if m.start() == 0 || m.start() == m.end() {
                        continue;
                    }
                    if m.start() > start {
                        toks.push(s[start..m.start()].to_string());
                    }
                    toks.push(m.as_str().to_string());
                    start = m.end();
                }
                if start < s.len() {
                    toks.push(s[start..].to_string());
                }
            }
        }
        toks.extend(suf.into_iter().rev());
        if toks.len() > 1 { self.rejoin(toks) } else { toks }
    }

    /// spaCy's special-case pass over the split pieces.
    fn rejoin(&self, toks: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        'outer: while i < toks.len() {
            for k in [3, 2] {
                if i + k <= toks.len() {
                    let joined: String = toks[i..i + k].concat();
                    if let Some(special) = self.special.get(&joined) {
                        out.extend(special.iter().cloned());
                        i += k;
                        continue 'outer;
                    }
                }
            }
            out.push(toks[i].clone());
            i += 1;
        }
        out
    }
}
