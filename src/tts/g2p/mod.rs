//! Text → misaki-style English phonemes, as hibari's G2P reads it (misaki 0.9.4's en.py without
//! spaCy or espeak-ng): normalise → tokenise (spaCy's rules) → tag (a perceptron) → lexicon with
//! part-of-speech and context rules → a small network for words in no dictionary → stress.
//! The result must equal the package's phonemes: the acoustic model was trained on exactly them.

mod lexicon;
mod normalize;
mod numbers;
pub mod oov;
mod tagger;
mod text;
mod tokenize;

use std::path::Path;

use fancy_regex::Regex;

use crate::error::{Error, Result};
use lexicon::{Lexicon, PRIMARY, apply_stress, currency_units, is_consonant, is_vowel, stress_weight};
use normalize::Normalizer;
use oov::OovModel;
use tagger::Tagger;
use tokenize::Tokenizer;

/// What a word's reading depends on in the words after it (the G2P reads right to left).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Whether the next word starts with a vowel sound; None when punctuation comes first.
    pub future_vowel: Option<bool>,
    pub future_to: bool,
}

/// One token on its way to phonemes (misaki's MToken).
#[derive(Debug, Clone, Default)]
pub struct Tok {
    pub text: String,
    pub tag: String,
    pub whitespace: String,
    pub phonemes: Option<String>,
    pub is_head: bool,
    pub alias: Option<String>,
    pub stress: Option<f64>,
    pub currency: Option<String>,
    pub num_flags: String,
    pub prespace: bool,
    pub rating: Option<u8>,
}

enum Word {
    One(Tok),
    /// Pieces written together without whitespace ("U.S.-made").
    Many(Vec<Tok>),
}

const PUNCTS: &str = ";:,.!?—…\"“”";
const NON_QUOTE_PUNCTS: &str = ";:,.!?—…";
const SUBTOKEN_JUNKS: &str = "',-._‘’/";
const PUNCT_TAGS: [&str; 10] = [".", ",", "-LRB-", "-RRB-", "``", "\"\"", "''", ":", "$", "#"];
const PUNCT_TAGS_NFP: &str = "NFP";

fn punct_tag_phonemes(tag: &str) -> Option<&'static str> {
    match tag {
        "-LRB-" => Some("("),
        "-RRB-" => Some(")"),
        "``" => Some("\u{201c}"),
        "\"\"" | "''" => Some("\u{201d}"),
        _ => None,
    }
}

fn symbol_phonemes(c: char) -> &'static str {
    match c {
        '/' => "slˈæʃ",
        '=' => "ˈikwᵊlz",
        '+' => "plˈʌs",
        '&' => "ænd",
        '@' => "æt",
        '%' => "pəɹsˈɛnt",
        '#' => "hˈæʃ",
        '*' => "ˈæstəɹˌɪsk",
        '~' => "tˈɪldə",
        '^' => "kˈɛɹət",
        '<' => "lˈɛs ðən",
        '>' => "ɡɹˈATəɹ ðən",
        '—' => "—",
        _ => "",
    }
}

/// misaki's merge_tokens: pieces read as one word.
fn merge_tokens(tokens: &[Tok], unk: Option<&str>) -> Tok {
    let stresses: Vec<f64> = tokens.iter().filter_map(|t| t.stress).collect();
    let stress = if !stresses.is_empty() && stresses.iter().all(|s| *s == stresses[0]) {
        Some(stresses[0])
    } else {
        None
    };
    let currency = tokens.iter().filter_map(|t| t.currency.clone()).max();
    let phonemes = unk.map(|unk| {
        let mut p = String::new();
        for tk in tokens {
            if tk.prespace
                && !p.is_empty()
                && !p.ends_with(char::is_whitespace)
                && tk.phonemes.as_deref().is_some_and(|x| !x.is_empty())
            {
                p.push(' ');
            }
            p.push_str(tk.phonemes.as_deref().unwrap_or(unk));
        }
        p
    });
    let text =
        tokens[..tokens.len() - 1].iter().map(|t| format!("{}{}", t.text, t.whitespace)).collect::<String>()
            + &tokens[tokens.len() - 1].text;
    // The tag of the piece with the most (capital-weighted) letters; the first of equals.
    let weight = |t: &Tok| {
        t.text.chars().map(|c| if c.to_lowercase().eq(std::iter::once(c)) { 1 } else { 2 }).sum::<usize>()
    };
    let tag = tokens
        .iter()
        .fold((None::<&Tok>, 0), |(best, w), t| {
            if best.is_none() || weight(t) > w { (Some(t), weight(t)) } else { (best, w) }
        })
        .0
        .map(|t| t.tag.clone())
        .unwrap_or_default();
    let mut flags: Vec<char> = tokens.iter().flat_map(|t| t.num_flags.chars()).collect();
    flags.sort();
    flags.dedup();
    Tok {
        text,
        tag,
        whitespace: tokens[tokens.len() - 1].whitespace.clone(),
        phonemes,
        is_head: tokens[0].is_head,
        alias: None,
        stress,
        currency,
        num_flags: flags.into_iter().collect(),
        prespace: tokens[0].prespace,
        rating: if tokens.iter().any(|t| t.rating.is_none()) {
            None
        } else {
            tokens.iter().filter_map(|t| t.rating).min()
        },
    }
}

pub struct G2p {
    normalizer: Normalizer,
    tokenizer: Tokenizer,
    tagger: Tagger,
    lexicon: Lexicon,
    oov: OovModel,
    subtoken: Regex,
    link: Regex,
    fallback_piece: Regex,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| Error::io(&path, e))
}

fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)
        .map_err(|e| Error::Model(format!("{name}: {e}")))?;
    Ok(out)
}

impl G2p {
    /// Loads the front end from an installed hibari model folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let text = |name: &str| -> Result<String> {
            String::from_utf8(read(dir, name)?).map_err(|e| Error::Model(format!("{name}: {e}")))
        };
        let gz = |name: &str| gunzip(&read(dir, name)?, name);
        // The tagger and the dictionaries are the bulk of start-up (about 10 MB of JSON): parse
        // them side by side.
        let (tagger, lexicon) = rayon::join(
            || Tagger::from_json(&gz("tagger.json.gz")?),
            || Lexicon::from_json(&gz("lexicon_us_gold.json.gz")?, &gz("lexicon_us_silver.json.gz")?),
        );
        Ok(Self {
            normalizer: Normalizer::from_json(&text("normalize.json")?)?,
            tokenizer: Tokenizer::from_json(&text("tokenizer_exceptions.json")?)?,
            tagger: tagger?,
            lexicon: lexicon?,
            oov: OovModel::load(dir)?,
            subtoken: Regex::new(
                r"^['‘’]+|[A-ZÀ-ÖØ-Þ](?=[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ])|(?:^-)?(?:\d?[,.]?\d)+|[-_]+|['‘’]{2,}|[^\W\d_]*?(?:['‘’][^\W\d_])*?[a-zß-öø-ÿ](?=[A-ZÀ-ÖØ-Þ])|[^\W\d_]+(?:['‘’][^\W\d_])*|[^\w\-'‘’]|['‘’]+$",
            )
            .expect("subtoken pattern"),
            link: Regex::new(r"\[([^\]]+)\]\(([^\)]*)\)").expect("link pattern"),
            fallback_piece: Regex::new(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[,.]\d+)*|[^\w\s]+").expect("fallback pattern"),
        })
    }

    /// The titles after which a period does not end a sentence ("Dr. Smith").
    pub fn is_title(&self, word: &str) -> bool {
        self.normalizer.is_title(word)
    }

    fn tokens(&self, text: &str) -> Vec<Tok> {
        let pairs = self.tokenizer.tokenize(text);
        if pairs.is_empty() {
            return Vec::new();
        }
        let words: Vec<String> = pairs.iter().map(|(t, _)| t.clone()).collect();
        let tags = self.tagger.tag(&words);
        pairs
            .into_iter()
            .zip(tags)
            .map(|((text, whitespace), tag)| Tok {
                text,
                tag,
                whitespace,
                is_head: true,
                ..Default::default()
            })
            .collect()
    }

    /// Tokens with tags; `[text](/phonemes/)` sets a token's phonemes directly.
    fn tokenize(&self, text: &str) -> Vec<Tok> {
        let mut toks = Vec::new();
        let mut pos = 0;
        for c in self.link.captures_iter(text).flatten() {
            let whole = c.get(0).expect("match");
            toks.extend(self.tokens(&text[pos..whole.start()]));
            let target = c.get(2).map_or("", |m| m.as_str());
            let phonemes = (target.chars().count() > 1 && target.starts_with('/') && target.ends_with('/'))
                .then(|| target[1..].trim_end_matches('/').to_string());
            let whitespace = if text[whole.end()..].starts_with(char::is_whitespace) { " " } else { "" };
            toks.push(Tok {
                text: c.get(1).map_or("", |m| m.as_str()).into(),
                tag: "NN".into(),
                whitespace: whitespace.into(),
                phonemes,
                is_head: true,
                rating: Some(5),
                ..Default::default()
            });
            pos = whole.end();
        }
        toks.extend(self.tokens(&text[pos..]));
        toks
    }

    fn retokenize(&self, tokens: Vec<Tok>) -> Vec<Word> {
        let mut words: Vec<Word> = Vec::new();
        let mut currency: Option<String> = None;
        let tags: Vec<String> = tokens.iter().map(|t| t.tag.clone()).collect();
        for (i, token) in tokens.into_iter().enumerate() {
            let mut tks: Vec<Tok> = if token.alias.is_none() && token.phonemes.is_none() {
                self.subtoken
                    .find_iter(&token.text)
                    .flatten()
                    .map(|m| Tok {
                        text: m.as_str().into(),
                        whitespace: String::new(),
                        is_head: true,
                        prespace: false,
                        ..token.clone()
                    })
                    .collect()
            } else {
                vec![token.clone()]
            };
            let Some(last) = tks.last_mut() else { continue };
            last.whitespace = token.whitespace.clone();
            let n = tks.len();
            for j in 0..n {
                let (prev_last, next_first) = (
                    j.checked_sub(1).and_then(|k| tks[k].text.chars().last()),
                    tks.get(j + 1).and_then(|t| t.text.chars().next()),
                );
                let tk = &mut tks[j];
                if tk.alias.is_some() || tk.phonemes.is_some() {
                } else if tk.tag == "$" && currency_units(&tk.text).is_some() {
                    currency = Some(tk.text.clone());
                    tk.phonemes = Some(String::new());
                    tk.rating = Some(4);
                } else if tk.tag == ":" && (tk.text == "-" || tk.text == "–") {
                    tk.phonemes = Some("—".into());
                    tk.rating = Some(3);
                } else if (PUNCT_TAGS.contains(&tk.tag.as_str()) || tk.tag == PUNCT_TAGS_NFP)
                    && !tk.text.chars().all(|c| c.to_lowercase().all(|l| l.is_ascii_lowercase()))
                {
                    tk.phonemes = Some(punct_tag_phonemes(&tk.tag).map_or_else(
                        || tk.text.chars().filter(|c| PUNCTS.contains(*c)).collect(),
                        String::from,
                    ));
                    tk.rating = Some(4);
                } else if let Some(cur) = &currency {
                    if tk.tag != "CD" {
                        currency = None;
                    } else if j + 1 == n && tags.get(i + 1).is_none_or(|t| t != "CD") {
                        tk.currency = Some(cur.clone());
                    }
                } else if 0 < j
                    && j + 1 < n
                    && tk.text == "2"
                    && prev_last.zip(next_first).is_some_and(|(a, b)| a.is_alphabetic() && b.is_alphabetic())
                {
                    tk.alias = Some("to".into());
                }
                let tk = tks[j].clone();
                if tk.alias.is_some() || tk.phonemes.is_some() {
                    words.push(Word::One(tk));
                } else if let Some(Word::Many(group)) = words.last_mut().filter(
                    |w| matches!(w, Word::Many(g) if g.last().is_some_and(|t| t.whitespace.is_empty())),
                ) {
                    group.push(Tok { is_head: false, ..tk });
                } else if !tk.whitespace.is_empty() {
                    words.push(Word::One(tk));
                } else {
                    words.push(Word::Many(vec![tk]));
                }
            }
        }
        words
            .into_iter()
            .map(|w| match w {
                Word::Many(mut g) if g.len() == 1 => Word::One(g.remove(0)),
                w => w,
            })
            .collect()
    }

    fn token_context(ctx: Context, ps: Option<&str>, token: &Tok) -> Context {
        let mut vowel = ctx.future_vowel;
        if let Some(ps) = ps.filter(|p| !p.is_empty())
            && let Some(c) =
                ps.chars().find(|&c| is_vowel(c) || is_consonant(c) || NON_QUOTE_PUNCTS.contains(c))
        {
            vowel = if NON_QUOTE_PUNCTS.contains(c) { None } else { Some(is_vowel(c)) };
        }
        let future_to = token.text == "to"
            || token.text == "To"
            || (token.text == "TO" && (token.tag == "TO" || token.tag == "IN"));
        Context { future_vowel: vowel, future_to }
    }

    fn resolve_tokens(tokens: &mut [Tok]) {
        let n = tokens.len();
        let text = tokens[..n - 1].iter().map(|t| format!("{}{}", t.text, t.whitespace)).collect::<String>()
            + &tokens[n - 1].text;
        let kinds: std::collections::HashSet<u8> = text
            .chars()
            .filter(|c| !SUBTOKEN_JUNKS.contains(*c))
            .map(|c| {
                if c.is_alphabetic() {
                    0
                } else if c.is_ascii_digit() {
                    1
                } else {
                    2
                }
            })
            .collect();
        let prespace = text.contains(' ') || text.contains('/') || kinds.len() > 1;
        for (i, tk) in tokens.iter_mut().enumerate() {
            if tk.phonemes.is_none() {
                if i == n - 1 && tk.text.chars().count() == 1 && NON_QUOTE_PUNCTS.contains(tk.text.as_str()) {
                    tk.phonemes = Some(tk.text.clone());
                    tk.rating = Some(3);
                } else if tk.text.chars().all(|c| SUBTOKEN_JUNKS.contains(c)) {
                    tk.phonemes = Some(String::new());
                    tk.rating = Some(3);
                }
            } else if i > 0 {
                tk.prespace = prespace;
            }
        }
        if prespace {
            return;
        }
        let mut indices: Vec<(bool, usize, usize)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.phonemes
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| (p.contains(PRIMARY), stress_weight(p), i))
            })
            .collect();
        if indices.len() == 2 && tokens[indices[0].2].text.chars().count() == 1 {
            let i = indices[1].2;
            tokens[i].phonemes = tokens[i].phonemes.as_deref().map(|p| apply_stress(p, Some(-0.5)));
            return;
        }
        if indices.len() < 2 || indices.iter().filter(|(b, _, _)| *b).count() <= indices.len().div_ceil(2) {
            return;
        }
        indices.sort();
        let half = indices.len() / 2;
        for &(_, _, i) in &indices[..half] {
            tokens[i].phonemes = tokens[i].phonemes.as_deref().map(|p| apply_stress(p, Some(-0.5)));
        }
    }

    /// A word no dictionary knows: letters go to the OOV network, digits to the number reader,
    /// symbols to a small table.
    fn fallback(&self, tk: &Tok) -> Result<(String, u8)> {
        let mut out = Vec::new();
        for m in self.fallback_piece.find_iter(&tk.text).flatten() {
            let piece = m.as_str();
            let first = piece.chars().next().unwrap_or(' ');
            let ps = if first.is_ascii_digit() || first.is_numeric() {
                self.lexicon.get_number(piece, None, false).0
            } else if first.is_alphabetic() {
                self.oov.read(piece)?
            } else {
                Some(piece.chars().map(symbol_phonemes).collect())
            };
            if let Some(ps) = ps.filter(|p| !p.is_empty()) {
                out.push(ps);
            }
        }
        Ok(if out.is_empty() { (String::new(), 3) } else { (out.join(" "), 2) })
    }

    fn phonemize_tokens(&self, tokens: Vec<Tok>) -> Result<Vec<Tok>> {
        let mut words = self.retokenize(tokens);
        let mut ctx = Context::default();
        for w in words.iter_mut().rev() {
            match w {
                Word::One(tk) => {
                    if tk.phonemes.is_none() {
                        let (ps, rating) = self.lexicon.read(tk, &ctx);
                        (tk.phonemes, tk.rating) = (ps, rating);
                    }
                    if tk.phonemes.is_none() {
                        let (ps, rating) = self.fallback(tk)?;
                        (tk.phonemes, tk.rating) = (Some(ps), Some(rating));
                    }
                    ctx = Self::token_context(ctx, tk.phonemes.as_deref(), tk);
                }
                Word::Many(group) => {
                    let (mut left, mut right) = (0, group.len());
                    let mut should_fallback = false;
                    while left < right {
                        let merged =
                            if group[left..right].iter().any(|t| t.alias.is_some() || t.phonemes.is_some()) {
                                None
                            } else {
                                Some(merge_tokens(&group[left..right], None))
                            };
                        let (ps, rating) =
                            merged.as_ref().map_or((None, None), |tk| self.lexicon.read(tk, &ctx));
                        if let Some(ps) = ps {
                            group[left].phonemes = Some(ps.clone());
                            group[left].rating = rating;
                            for x in &mut group[left + 1..right] {
                                x.phonemes = Some(String::new());
                                x.rating = rating;
                            }
                            ctx = Self::token_context(
                                ctx,
                                Some(&ps),
                                merged.as_ref().expect("read a merged token"),
                            );
                            right = left;
                            left = 0;
                        } else if left + 1 < right {
                            left += 1;
                        } else {
                            right -= 1;
                            let tk = &mut group[right];
                            if tk.phonemes.is_none() {
                                if tk.text.chars().all(|c| SUBTOKEN_JUNKS.contains(c)) {
                                    tk.phonemes = Some(String::new());
                                    tk.rating = Some(3);
                                } else {
                                    should_fallback = true;
                                    break;
                                }
                            }
                            left = 0;
                        }
                    }
                    if should_fallback {
                        let merged = merge_tokens(group, None);
                        let (ps, rating) = self.fallback(&merged)?;
                        group[0].phonemes = Some(ps);
                        group[0].rating = Some(rating);
                        for x in &mut group[1..] {
                            x.phonemes = Some(String::new());
                            x.rating = Some(rating);
                        }
                    } else {
                        Self::resolve_tokens(group);
                    }
                }
            }
        }
        Ok(words
            .into_iter()
            .map(|w| match w {
                Word::One(tk) => tk,
                Word::Many(group) => merge_tokens(&group, Some("")),
            })
            .map(|mut tk| {
                tk.phonemes = tk.phonemes.map(|p| p.replace('ɾ', "T").replace('ʔ', "t"));
                tk
            })
            .collect())
    }

    /// The phonemes of one line of text.
    pub fn phonemize(&self, text: &str) -> Result<String> {
        let text = self.normalizer.normalize(text);
        let tokens = self.phonemize_tokens(self.tokenize(&text))?;
        let joined: String = tokens
            .iter()
            .map(|t| {
                format!(
                    "{}{}",
                    t.phonemes.as_deref().unwrap_or(""),
                    if t.whitespace.is_empty() { "" } else { " " }
                )
            })
            .collect();
        Ok(joined.trim().to_string())
    }
}
