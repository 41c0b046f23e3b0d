//! Search queries (docs/api.md, "Search"): what `q` means, and where a message matches it.
//!
//! One home for the matching rule: the databases' indexes only narrow the candidates (a
//! trigram index cannot tell a word's start, nor index a term of two characters); every
//! candidate is judged here, and the ranges clients highlight come from the same walk.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Longest `q`, in characters, after trimming.
pub const MAX_QUERY_CHARS: usize = 500;

/// Shortest term, in characters; shorter ones are ignored.
pub const MIN_TERM_CHARS: usize = 2;

/// One thing a message must contain, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The characters, lower-cased.
    pub text: String,
    /// Only where a word starts (`deplo*`): the character before is not a letter or digit.
    pub prefix: bool,
}

/// A parsed `q`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Every one must match (AND), in any order.
    pub terms: Vec<Term>,
    /// `from:username`, lower-cased, without a leading `@`.
    pub from: Option<String>,
    /// `in:channel-name`, lower-cased, without a leading `#`.
    pub channel: Option<String>,
}

impl SearchQuery {
    /// Parses `q`.
    ///
    /// # Errors
    /// A message for the `q` field: empty, too long, or nothing left to search for.
    pub fn parse(q: &str) -> Result<Self, String> {
        let q = q.trim();
        if q.is_empty() {
            return Err("is required".into());
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("must be at most {MAX_QUERY_CHARS} characters"));
        }
        let mut query = Self::default();
        let mut rest = q;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[start..];
            if let Some(quoted) = rest.strip_prefix('"') {
                // A phrase runs to the closing quote, or to the end when there is none.
                let (phrase, after) = quoted.split_once('"').unwrap_or((quoted, ""));
                query.push(phrase.trim(), false);
                rest = after;
                continue;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            rest = &rest[end..];
            let lower = word.to_lowercase();
            if let Some(name) = lower.strip_prefix("from:").filter(|n| !n.is_empty()) {
                query.from = Some(name.trim_start_matches('@').to_owned());
            } else if let Some(name) = lower.strip_prefix("in:").filter(|n| !n.is_empty()) {
                query.channel = Some(name.trim_start_matches('#').to_owned());
            } else if let Some(stem) = word.strip_suffix('*') {
                query.push(stem.trim_end_matches('*'), true);
            } else {
                query.push(word, false);
            }
        }
        if query.terms.is_empty() && query.from.is_none() && query.channel.is_none() {
            return Err(format!(
                "has nothing to search for: give a word of at least {MIN_TERM_CHARS} characters, \
                 a \"phrase\", from:username or in:channel"
            ));
        }
        Ok(query)
    }

    /// Adds a term unless it is too short to search for.
    fn push(&mut self, raw: &str, prefix: bool) {
        if raw.chars().count() < MIN_TERM_CHARS {
            return;
        }
        let term = Term {
            text: fold(raw),
            prefix,
        };
        if !self.terms.contains(&term) {
            self.terms.push(term);
        }
    }

    /// Where `content` matches every term: the ranges to highlight, or `None` when one term
    /// is missing. Without terms (only filters), every message matches, with no range.
    #[must_use]
    pub fn matches(&self, content: &str) -> Option<Vec<Match>> {
        let text = Folded::new(content);
        let mut found: Vec<(usize, usize)> = Vec::new();
        for term in &self.terms {
            let needle: Vec<char> = term.text.chars().collect();
            let before = found.len();
            let mut at = 0;
            while let Some(i) = text.find(&needle, at) {
                if !term.prefix || i == 0 || !text.chars[i - 1].is_alphanumeric() {
                    found.push((i, i + needle.len()));
                    at = i + needle.len();
                } else {
                    at = i + 1;
                }
            }
            if found.len() == before {
                return None;
            }
        }
        found.sort_unstable();
        let mut merged: Vec<Match> = Vec::new();
        for (start, end) in found {
            let (start, end) = (text.utf16_start[start], text.utf16_end[end - 1]);
            match merged.last_mut() {
                Some(last) if start <= last.end => last.end = last.end.max(end),
                _ => merged.push(Match { start, end }),
            }
        }
        Some(merged)
    }
}

/// `text` lower-cased character by character, as a message's content is when it is
/// matched (see [`lower`]; `str::to_lowercase` would turn a term's last `Σ` into `ς`, and a
/// message may spell it either way).
#[must_use]
pub fn fold(text: &str) -> String {
    text.chars().flat_map(lower).collect()
}

/// One character lower-cased, with the final sigma `ς` as `σ` (so `ΟΔΟΣ` finds `οδος`)
/// and the dotted capital `İ` as a plain `i` (Unicode lower-cases it to `i` and a combining
/// dot, which `istanbul` would not find).
fn lower(c: char) -> impl Iterator<Item = char> {
    let dotted = c == '\u{130}';
    c.to_lowercase()
        .filter(move |l| !(dotted && *l == '\u{307}'))
        .map(|l| if l == 'ς' { 'σ' } else { l })
}

/// Shortest term the indexes can look up (a trigram); shorter terms are judged by
/// [`SearchQuery::matches`] alone.
pub const MIN_INDEXED_CHARS: usize = 3;

impl SearchQuery {
    /// The terms the index can look up, lower-cased (see [`MIN_INDEXED_CHARS`]).
    #[must_use]
    pub fn indexed_texts(&self) -> Vec<String> {
        self.terms
            .iter()
            .filter(|t| t.text.chars().count() >= MIN_INDEXED_CHARS)
            .map(|t| t.text.clone())
            .collect()
    }
}

/// A `before=` / `after=` bound: a date (`2026-12-01`, its 00:00 UTC) or an RFC 3339 time.
///
/// # Errors
/// A message for the field.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be a date (2026-12-01, UTC) or an RFC 3339 time".to_owned())
}

/// The smallest message id minted at `at` or later (ids are UUIDv7: their first 48 bits
/// are the milliseconds since 1970), so "sent before `at`" is "id below this one".
#[must_use]
pub fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let ms = u128::try_from(at.timestamp_millis().max(0))
        .unwrap_or_default()
        .min((1 << 48) - 1);
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (0b10 << 62))
}

/// A search's candidate as the store reads it.
#[derive(Debug, Clone)]
pub struct SearchRow {
    /// Its place in the store's scan (continuing after it is the next page's start).
    pub key: u128,
    /// Its channel's name.
    pub channel_name: String,
    /// The channel is a DM.
    pub is_dm: bool,
    /// The message.
    pub message: crate::models::message::MessageRow,
}

/// A matched range of a message's content, in UTF-16 code units, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Match {
    /// First code unit.
    pub start: usize,
    /// One past the last.
    pub end: usize,
}

/// A content lower-cased character by character, each lower-cased character knowing the
/// UTF-16 range of the character it came from (a character outside the Basic Multilingual
/// Plane is two code units; and lower-casing may in principle give more than one character).
struct Folded {
    chars: Vec<char>,
    utf16_start: Vec<usize>,
    utf16_end: Vec<usize>,
}

impl Folded {
    fn new(content: &str) -> Self {
        let mut folded = Self {
            chars: Vec::with_capacity(content.len()),
            utf16_start: Vec::with_capacity(content.len()),
            utf16_end: Vec::with_capacity(content.len()),
        };
        let mut offset = 0;
        for c in content.chars() {
            let next = offset + c.len_utf16();
            for lower in lower(c) {
                folded.chars.push(lower);
                folded.utf16_start.push(offset);
                folded.utf16_end.push(next);
            }
            offset = next;
        }
        folded
    }

    /// The first place at or after `from` where `needle` starts.
    fn find(&self, needle: &[char], from: usize) -> Option<usize> {
        if needle.is_empty() || needle.len() > self.chars.len() {
            return None;
        }
        (from..=self.chars.len() - needle.len()).find(|&i| self.chars[i..].starts_with(needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(q: &str) -> Vec<(String, bool)> {
        SearchQuery::parse(q)
            .unwrap()
            .terms
            .into_iter()
            .map(|t| (t.text, t.prefix))
            .collect()
    }

    fn ranges(q: &str, content: &str) -> Option<Vec<(usize, usize)>> {
        SearchQuery::parse(q)
            .unwrap()
            .matches(content)
            .map(|m| m.into_iter().map(|m| (m.start, m.end)).collect())
    }

    #[test]
    fn words_phrases_prefixes_and_filters_parse_as_the_contract_says() {
        assert_eq!(
            terms("Deploy  \"Release Notes\" deplo* v1.2"),
            [
                ("deploy".into(), false),
                ("release notes".into(), false),
                ("deplo".into(), true),
                ("v1.2".into(), false)
            ]
        );
        // An unclosed quote runs to the end; short terms and a lone `*` are ignored.
        assert_eq!(terms("a * \"open ended"), [("open ended".into(), false)]);
        let q = SearchQuery::parse("from:@Ravi in:#General build").unwrap();
        assert_eq!(
            (q.from.as_deref(), q.channel.as_deref()),
            (Some("ravi"), Some("general"))
        );
        assert_eq!(q.terms.len(), 1);
        // Filters alone search every message they allow.
        assert!(SearchQuery::parse("from:ravi").unwrap().terms.is_empty());
        // The same term twice is one term.
        assert_eq!(terms("ok OK"), [("ok".into(), false)]);
    }

    #[test]
    fn nothing_to_search_for_is_refused_with_a_reason() {
        for q in ["", "   ", "a", "* ?", "\"\"", "from:", "x*"] {
            let e = SearchQuery::parse(q);
            // `from:` alone is a word of five characters, searched as text.
            if q == "from:" {
                assert_eq!(terms(q), [("from:".into(), false)]);
                continue;
            }
            assert!(e.is_err(), "{q:?}: {e:?}");
        }
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert!(SearchQuery::parse(&long).unwrap_err().contains("500"));
        assert!(SearchQuery::parse(&"x".repeat(MAX_QUERY_CHARS)).is_ok());
        // Only punctuation is text like any other.
        assert_eq!(terms("..."), [("...".into(), false)]);
    }

    #[test]
    fn substrings_match_in_any_script_case_insensitively() {
        assert_eq!(ranges("deploy", "We REdeployed it"), Some(vec![(5, 11)]));
        assert_eq!(ranges("发布", "新版本发布了"), Some(vec![(3, 5)]));
        assert_eq!(ranges("リリース", "明日リリースします"), Some(vec![(2, 6)]));
        assert_eq!(ranges("배포", "오늘 배포합니다"), Some(vec![(3, 5)]));
        assert_eq!(ranges("ปล่อย", "เราจะปล่อยเวอร์ชันใหม่"), Some(vec![(5, 10)]));
        assert_eq!(ranges("привет", "ПРИВЕТ, мир"), Some(vec![(0, 6)]));
        assert_eq!(ranges("שלום", "שלום עולם"), Some(vec![(0, 4)]));
        assert_eq!(ranges("مرحبا", "قال مرحبا"), Some(vec![(4, 9)]));
        assert_eq!(ranges("nope", "新版本发布了"), None);
    }

    #[test]
    fn ranges_are_utf16_code_units_merged_in_text_order() {
        // 🚀 is two UTF-16 code units: what follows it is offset by two.
        assert_eq!(ranges("🚀🚀", "go 🚀🚀 now"), Some(vec![(3, 7)]));
        assert_eq!(ranges("now", "🚀 now"), Some(vec![(3, 6)]));
        // Every occurrence of every term; overlapping ones merged.
        assert_eq!(ranges("ab bc", "abc xx ab"), Some(vec![(0, 3), (7, 9)]));
        // All terms must be there.
        assert_eq!(ranges("ab zz", "abc"), None);
        // A final `Σ` is matched like any other.
        assert_eq!(ranges("ΟΔΟΣ", "η οδος"), Some(vec![(2, 6)]));
        // `İ` is a plain `i`, whichever way the term spells it; the range is the original's.
        assert_eq!(ranges("istanbul", "İstanbul!"), Some(vec![(0, 8)]));
        assert_eq!(ranges("İSTANBUL", "istanbul!"), Some(vec![(0, 8)]));
    }

    #[test]
    fn time_bounds_read_dates_and_rfc3339_and_become_id_bounds() {
        let day = parse_time("2026-12-01").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let t = parse_time("2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        for bad in ["yesterday", "2026-13-01", "12/01/2026", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        // An id minted in that millisecond is at or above the bound; one before is below.
        let bound = first_id_at(t);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_796_112_000, 0);
        let minted = Uuid::new_v7(ts);
        assert_eq!(t.timestamp(), 1_796_112_000);
        assert!(minted >= bound);
        let earlier = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_796_111_999,
            999_000_000,
        ));
        assert!(earlier < bound);
        assert_eq!(
            first_id_at(DateTime::<Utc>::MIN_UTC),
            Uuid::from_u128((0x7 << 76) | (0b10 << 62))
        );
    }

    #[test]
    fn only_terms_of_three_characters_or_more_go_to_the_index() {
        let q = SearchQuery::parse("ok 发布 deploy* \"go on\"").unwrap();
        assert_eq!(q.indexed_texts(), ["deploy", "go on"]);
    }

    #[test]
    fn a_prefix_matches_only_where_a_word_starts() {
        assert_eq!(ranges("deplo*", "deploying now"), Some(vec![(0, 5)]));
        assert_eq!(ranges("deplo*", "we redeploy"), None);
        assert_eq!(
            ranges("deplo*", "re-deploy, deploy"),
            Some(vec![(3, 8), (11, 16)])
        );
        assert_eq!(
            ranges("\"release notes\"", "the Release Notes!"),
            Some(vec![(4, 17)])
        );
        assert_eq!(ranges("\"release notes\"", "notes release"), None);
    }
}
