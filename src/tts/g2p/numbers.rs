//! English number words as num2words writes them (the subset misaki's reading uses): cardinal,
//! ordinal, year and decimal.

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
    ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const SCALES: [&str; 12] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
    "sextillion",
    "septillion",
    "octillion",
    "nonillion",
    "decillion",
];

fn below_1000(mut n: u64) -> Vec<String> {
    let mut words = Vec::new();
    if n >= 100 {
        words.push(ONES[(n / 100) as usize].to_string());
        words.push("hundred".into());
        n %= 100;
        if n > 0 {
            words.push("and".into());
        }
    }
    if n >= 20 {
        let ones =
            if !n.is_multiple_of(10) { format!("-{}", ONES[(n % 10) as usize]) } else { String::new() };
        words.push(format!("{}{ones}", TENS[(n / 10) as usize]));
    } else if n > 0 || words.is_empty() {
        words.push(ONES[n as usize].to_string());
    }
    words
}

/// "one thousand, two hundred and thirty-four".
pub fn cardinal(n: i128) -> String {
    if n < 0 {
        return format!("minus {}", cardinal(-n));
    }
    let mut n = n as u128;
    if n < 1000 {
        return below_1000(n as u64).join(" ");
    }
    let mut groups = Vec::new();
    let mut scale = 0;
    while n > 0 {
        let g = (n % 1000) as u64;
        n /= 1000;
        if g > 0 {
            let mut text = below_1000(g).join(" ");
            if scale > 0 {
                text = format!("{text} {}", SCALES.get(scale).copied().unwrap_or(""));
            }
            groups.push(text);
        }
        scale += 1;
    }
    groups.reverse();
    let last = groups.last().expect("n >= 1000 has a group").clone();
    let after_and = last.rsplit(" and ").next().unwrap_or(&last);
    if groups.len() > 1 && !after_and.contains(' ') && !last.contains("hundred") {
        return format!("{} and {last}", groups[..groups.len() - 1].join(", ")); // "one thousand and one"
    }
    groups.join(", ")
}

fn ordinal_word(w: &str) -> String {
    match w {
        "one" => "first".into(),
        "two" => "second".into(),
        "three" => "third".into(),
        "five" => "fifth".into(),
        "eight" => "eighth".into(),
        "nine" => "ninth".into(),
        "twelve" => "twelfth".into(),
        _ if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        _ => format!("{w}th"),
    }
}

/// "twenty-third", "one hundred and first", "one thousandth".
pub fn ordinal(n: i128) -> String {
    let c = cardinal(n);
    let (head, last) = match c.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l.to_string()),
        None => (String::new(), c.clone()),
    };
    let last = match last.rsplit_once('-') {
        Some((a, b)) => format!("{a}-{}", ordinal_word(b)),
        None => ordinal_word(&last),
    };
    format!("{head}{last}")
}

/// "nineteen oh-five", "two thousand and five", "twenty ten".
pub fn year(n: i128) -> String {
    let (high, low) = (n.div_euclid(100), n.rem_euclid(100));
    if high == 0 || (high % 10 == 0 && low < 10) || high >= 100 {
        return cardinal(n);
    }
    let low = match low {
        0 => "hundred".to_string(),
        1..=9 => format!("oh-{}", cardinal(low)),
        _ => cardinal(low),
    };
    format!("{} {low}", cardinal(high))
}

/// "3.14" → "three point one four" (trailing zeros dropped, as float() does).
pub fn decimal(s: &str) -> String {
    let (ip, fp) = s.split_once('.').unwrap_or((s, ""));
    let fp = fp.trim_end_matches('0');
    let mut words = cardinal(ip.parse::<i128>().unwrap_or(0));
    if !fp.is_empty() {
        words.push_str(" point");
        for c in fp.chars().filter_map(|c| c.to_digit(10)) {
            words.push(' ');
            words.push_str(ONES[c as usize]);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num2words_readings() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(1234), "one thousand, two hundred and thirty-four");
        assert_eq!(cardinal(1001), "one thousand and one");
        assert_eq!(cardinal(1250), "one thousand, two hundred and fifty");
        assert_eq!(cardinal(2_000_000), "two million");
        assert_eq!(cardinal(-7), "minus seven");
        assert_eq!(ordinal(23), "twenty-third");
        assert_eq!(ordinal(101), "one hundred and first");
        assert_eq!(ordinal(1000), "one thousandth");
        assert_eq!(ordinal(12), "twelfth");
        assert_eq!(year(1905), "nineteen oh-five");
        assert_eq!(year(2005), "two thousand and five");
        assert_eq!(year(2010), "twenty ten");
        assert_eq!(year(1999), "nineteen ninety-nine");
        assert_eq!(year(1900), "nineteen hundred");
        assert_eq!(decimal("3.14"), "three point one four");
        assert_eq!(decimal("2.50"), "two point five");
    }
}
