//! Mentions (docs/api.md, "Mentions"): what a message's content names, as the server reads
//! it — a client's own list is never trusted.

use std::collections::HashMap;

use uuid::Uuid;

/// Most different users one message mentions; further names stay text.
pub const MAX_USERS: usize = 50;

/// A channel-wide mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Everyone {
    /// `@channel`: every member.
    Channel,
    /// `@here`: the members online now.
    Here,
}

/// What a message's content names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    /// The lower-cased usernames after `@`, each once, in order of first appearance (at most
    /// [`MAX_USERS`]).
    pub usernames: Vec<String>,
    /// `@channel` (wins over `@here` when both appear) or `@here`.
    pub everyone: Option<Everyone>,
}

/// Whether `content` may mention anyone: without an `@` it names nobody, and neither its
/// names nor its stored mentions need looking up.
#[must_use]
pub fn may_mention(content: &str) -> bool {
    content.contains('@')
}

/// A username's characters (docs/api.md, "Accounts": 3–30 of `[A-Za-z0-9_.-]`).
fn in_username(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Reads the mentions in `content`: an `@` not preceded by a letter, digit or `_` (so
/// `me@example.com` names nobody), followed by a username; a trailing `.` or `-` is
/// punctuation, not part of the name ("thanks @ravi.").
#[must_use]
pub fn parse(content: &str) -> Named {
    let mut named = Named::default();
    let mut previous: Option<char> = None;
    let mut rest = content.char_indices().peekable();
    while let Some((at, c)) = rest.next() {
        let starts = c == '@' && !previous.is_some_and(|p| p.is_alphanumeric() || p == '_');
        previous = Some(c);
        if !starts {
            continue;
        }
        let start = at + 1;
        let mut end = start;
        while let Some(&(i, n)) = rest.peek() {
            if !in_username(n) {
                break;
            }
            end = i + n.len_utf8();
            previous = Some(n);
            rest.next();
        }
        let name = content[start..end].trim_end_matches(['.', '-']);
        match name.to_ascii_lowercase().as_str() {
            "channel" => named.everyone = Some(Everyone::Channel),
            "here" => {
                named.everyone.get_or_insert(Everyone::Here);
            }
            lower
                if (3..=30).contains(&lower.len())
                    && named.usernames.len() < MAX_USERS
                    && !named.usernames.iter().any(|u| u == lower) =>
            {
                named.usernames.push(lower.to_owned());
            }
            _ => {}
        }
    }
    named
}

/// One stored mention of a message (a row of the store's mention list): the user at place
/// `n`, or none at place 0 for a channel-wide one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MentionRow {
    /// Message.
    pub message_id: Uuid,
    /// Place: 0 channel-wide, then 1, 2, … in the order the names appear.
    pub n: i64,
    /// The user mentioned by name.
    pub user_id: Option<Uuid>,
}

/// What a message shows of its mentions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    /// Users mentioned by name, in order.
    pub user_ids: Vec<Uuid>,
    /// `@channel` or `@here` notified the channel.
    pub channel: bool,
}

impl Mentions {
    /// The rows to store: `(n, user)`, place 0 (no user) for a channel-wide one.
    pub fn rows(&self) -> impl Iterator<Item = (i64, Option<Uuid>)> + '_ {
        self.channel
            .then_some((0, None))
            .into_iter()
            .chain((1..).zip(self.user_ids.iter().map(|u| Some(*u))))
    }
}

/// The store's rows as each message's mentions.
#[must_use]
pub fn summarize(mut rows: Vec<MentionRow>) -> HashMap<Uuid, Mentions> {
    rows.sort_by_key(|r| (r.message_id, r.n));
    let mut out: HashMap<Uuid, Mentions> = HashMap::new();
    for row in rows {
        let mentions = out.entry(row.message_id).or_default();
        match row.user_id {
            Some(user) => mentions.user_ids.push(user),
            None => mentions.channel = true,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_after_an_at_sign_are_read_once_in_order_and_emails_are_not() {
        let named = parse("@Ravi and @meera_k, write to me@example.com or @ravi. (@arjun-)");
        assert_eq!(named.usernames, ["ravi", "meera_k", "arjun"]);
        assert_eq!(named.everyone, None);
        assert!(parse("a@b.co x_@ravi 9@meera").usernames.is_empty());
        assert_eq!(
            parse("@ab @abc").usernames,
            ["abc"],
            "names are 3 to 30 characters"
        );
        assert_eq!(parse(&format!("@{}", "a".repeat(31))).usernames.len(), 0);
        assert_eq!(parse("(@here) hi").everyone, Some(Everyone::Here));
        assert_eq!(
            parse("@here and @channel").everyone,
            Some(Everyone::Channel)
        );
        assert_eq!(parse("@CHANNEL!").everyone, Some(Everyone::Channel));
        assert_eq!(parse("@channels").everyone, None);
        assert_eq!(parse("@channels").usernames, ["channels"]);
        assert_eq!(parse("émile@ravi").usernames.len(), 0, "after a letter");
    }

    #[test]
    fn a_storm_of_names_stops_at_fifty() {
        let content: String = (0..1000).map(|i| format!("@user{i} ")).collect();
        let named = parse(&content);
        assert_eq!(named.usernames.len(), MAX_USERS);
        assert_eq!(named.usernames[49], "user49");
    }
}
