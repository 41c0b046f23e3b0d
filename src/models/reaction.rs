//! Reactions (docs/api.md, "Reactions"): what an emoji may be, and a message's reactions
//! as the contract shows them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Most different emoji on one message.
pub const MAX_DISTINCT: u32 = 20;
/// Users shown per emoji (`userIds`); `count` counts them all.
pub const SHOWN_USERS: usize = 5;
/// Longest Unicode emoji, in bytes.
const MAX_BYTES: usize = 32;

/// A reaction's emoji: a `:shortcode:` or one Unicode emoji.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    /// Parses an emoji as it came in the path (already percent-decoded).
    ///
    /// # Errors
    /// A message giving both forms.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if shortcode(raw) || unicode_emoji(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be one emoji, or a :shortcode: of 1 to 32 of a-z 0-9 _ + -".into())
        }
    }

    /// The emoji as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn shortcode(raw: &str) -> bool {
    raw.strip_prefix(':')
        .and_then(|r| r.strip_suffix(':'))
        .is_some_and(|code| {
            (1..=32).contains(&code.len())
                && code.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'+' | b'-')
                })
        })
}

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';

fn regional(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007E}').contains(&c)
}

/// Code points that are pictographs on their own (the blocks of Unicode's
/// `Extended_Pictographic` property, less the letter-like ones outside them).
fn pictographic(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{2199}' | '\u{21A9}'..='\u{21AA}' | '\u{231A}'..='\u{231B}'
        | '\u{2328}' | '\u{23CF}' | '\u{23E9}'..='\u{23F3}' | '\u{23F8}'..='\u{23FA}'
        | '\u{24C2}' | '\u{25AA}'..='\u{25AB}' | '\u{25B6}' | '\u{25C0}'
        | '\u{25FB}'..='\u{25FE}' | '\u{2600}'..='\u{27BF}' | '\u{2934}'..='\u{2935}'
        | '\u{2B05}'..='\u{2B07}' | '\u{2B1B}'..='\u{2B1C}' | '\u{2B50}' | '\u{2B55}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}'
        | '\u{1F000}'..='\u{1F1E5}' | '\u{1F200}'..='\u{1F3FA}' | '\u{1F400}'..='\u{1FAFF}')
}

/// One emoji: a keycap, a flag, a tag sequence, or pictographs (each with an optional
/// variation selector and skin tone) joined by zero-width joiners.
fn unicode_emoji(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_BYTES {
        return false;
    }
    let chars: Vec<char> = raw.chars().collect();
    match chars.as_slice() {
        [base, VS16, KEYCAP] | [base, KEYCAP]
            if base.is_ascii_digit() || matches!(base, '#' | '*') =>
        {
            return true;
        }
        [a, b] if regional(*a) && regional(*b) => return true,
        ['\u{1F3F4}', rest @ .., '\u{E007F}'] if !rest.is_empty() => {
            return rest.iter().all(|c| tag(*c));
        }
        _ => {}
    }
    // Pictograph (VS16)? (skin tone)? ( ZWJ pictograph (VS16)? (skin tone)? )*
    let mut i = 0;
    loop {
        let Some(&c) = chars.get(i) else {
            return false;
        };
        if !pictographic(c) {
            return false;
        }
        i += 1;
        if chars.get(i) == Some(&VS16) {
            i += 1;
        }
        if chars.get(i).is_some_and(|c| skin_tone(*c)) {
            i += 1;
        }
        match chars.get(i) {
            None => return true,
            Some(&ZWJ) => i += 1,
            Some(_) => return false,
        }
    }
}

/// One of the first users of an emoji on a message, with the emoji's count (a row of the
/// store's reaction summary).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReactionRow {
    /// Message.
    pub message_id: Uuid,
    /// Emoji.
    pub emoji: String,
    /// One of its first users.
    pub user_id: Uuid,
    /// When that user reacted.
    pub created_at: DateTime<Utc>,
    /// That user's place among the emoji's users (1 = first).
    pub n: i64,
    /// How many reacted with it.
    pub total: i64,
}

/// An emoji on a message, as the contract shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// How many reacted with it.
    pub count: i64,
    /// The first five to react with it.
    pub user_ids: Vec<Uuid>,
    /// Whether the reader did (always false in socket events).
    pub me: bool,
}

/// Each message's reactions from the store's rows: emoji in the order they were first
/// used, users in the order they reacted.
#[must_use]
pub fn summarize(mut rows: Vec<ReactionRow>) -> HashMap<Uuid, Vec<ReactionView>> {
    rows.sort_by(|a, b| {
        (a.message_id, a.emoji.as_str(), a.n).cmp(&(b.message_id, b.emoji.as_str(), b.n))
    });
    let mut first_use: HashMap<(Uuid, String), DateTime<Utc>> = HashMap::new();
    let mut out: HashMap<Uuid, Vec<ReactionView>> = HashMap::new();
    for row in rows {
        let list = out.entry(row.message_id).or_default();
        match list.last_mut() {
            Some(last) if last.emoji == row.emoji => last.user_ids.push(row.user_id),
            _ => {
                first_use.insert((row.message_id, row.emoji.clone()), row.created_at);
                list.push(ReactionView {
                    emoji: row.emoji,
                    count: row.total,
                    user_ids: vec![row.user_id],
                    me: false,
                });
            }
        }
    }
    for (message, list) in &mut out {
        list.sort_by_key(|r| {
            (
                first_use.get(&(*message, r.emoji.clone())).copied(),
                r.emoji.clone(),
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_one_emoji_or_a_shortcode() {
        for ok in [
            "👍",
            "👍🏽",
            "❤️",
            "☺",
            "🇮🇳",
            "1️⃣",
            "#⃣",
            "👩‍💻",
            "👨‍👩‍👧‍👦",
            "🏳️‍🌈",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            ":thumbsup:",
            ":+1:",
            ":a:",
            ":party_parrot-2:",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "ab",
            "👍👍",
            "👍 ",
            " 👍",
            "🇮",
            "🇮🇳🇮🇳",
            "1",
            "x⃣",
            "‍👍",
            "👍‍",
            "::",
            ":Thumbsup:",
            ":a b:",
            ":thumbsup",
            &format!(":{}:", "a".repeat(33)),
            "<script>",
            "🏽",
            "👍\u{FE0F}\u{FE0F}",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            Emoji::parse(&"👍\u{200D}".repeat(9)).is_err(),
            "over 32 bytes"
        );
    }

    #[test]
    fn a_summary_keeps_first_use_order_and_the_first_users() {
        let (m, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let t = Utc::now();
        let row = |emoji: &str, user, secs, n, total| ReactionRow {
            message_id: m,
            emoji: emoji.to_owned(),
            user_id: user,
            created_at: t + chrono::Duration::seconds(secs),
            n,
            total,
        };
        let out = summarize(vec![
            row("👍", b, 5, 2, 7),
            row(":tada:", a, 1, 1, 1),
            row("👍", a, 3, 1, 7),
        ]);
        let list = &out[&m];
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].emoji.as_str(), list[0].count), (":tada:", 1));
        assert_eq!((list[1].emoji.as_str(), list[1].count), ("👍", 7));
        assert_eq!(list[1].user_ids, [a, b]);
    }
}
