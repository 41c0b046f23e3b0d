//! Files: the keys the server mints, the names uploads carry, and the parts of a download's
//! answer that depend on them alone (docs/api.md, Files).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::file_type::FileType;

/// A key the server minted: `<UUIDv7>.<extension>`, or `<UUIDv7>.thumb.<jpg|png>` for a
/// thumbnail. Parsing accepts nothing else, so a key is safe to join to a storage path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    id: Uuid,
    kind: KeyKind,
}

/// What a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// An upload as stored.
    Original(FileType),
    /// The thumbnail of an image (JPEG, or PNG when it has transparency).
    Thumbnail(FileType),
}

impl FileKey {
    /// A new key for an upload of type `ty`.
    #[must_use]
    pub fn mint(ty: FileType) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: KeyKind::Original(ty),
        }
    }

    /// The key of this upload's thumbnail, stored as `ty` (JPEG or PNG).
    #[must_use]
    pub fn thumbnail(&self, ty: FileType) -> Self {
        Self {
            id: self.id,
            kind: KeyKind::Thumbnail(ty),
        }
    }

    /// A key from a client; `None` for anything the server would not have minted.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, rest) = raw.split_once('.')?;
        // Only the hyphenated lower-case form the server writes.
        if id.len() != 36 || id.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let id = Uuid::parse_str(id)
            .ok()
            .filter(|u| u.get_version_num() == 7)?;
        let kind = match rest.split_once('.') {
            None => KeyKind::Original(FileType::from_extension(rest)?),
            Some(("thumb", "jpg")) => KeyKind::Thumbnail(FileType::Jpeg),
            Some(("thumb", "png")) => KeyKind::Thumbnail(FileType::Png),
            Some(_) => return None,
        };
        Some(Self { id, kind })
    }

    /// The upload's id (shared by its thumbnail).
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// What it names.
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The type of the bytes it names.
    #[must_use]
    pub fn file_type(&self) -> FileType {
        match self.kind {
            KeyKind::Original(t) | KeyKind::Thumbnail(t) => t,
        }
    }
}

impl std::fmt::Display for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            KeyKind::Original(t) => write!(f, "{}.{}", self.id, t.extension()),
            KeyKind::Thumbnail(t) => write!(f, "{}.thumb.{}", self.id, t.extension()),
        }
    }
}

/// The name of an upload, as its part gave it: 1–255 characters, no path separator, no
/// control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// Checks a part's file name.
    ///
    /// # Errors
    /// Why it cannot be a name, for a `VALIDATION_ERROR` on `fileName`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if n == 0 || n > 255 {
            return Err(format!("must be 1 to 255 characters; it has {n}"));
        }
        if raw.contains(['/', '\\']) {
            return Err("must not contain '/' or '\\'".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if raw == "." || raw == ".." {
            return Err("must be a file name".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name given to a part that came without one.
    #[must_use]
    pub fn fallback(ty: FileType) -> Self {
        Self(format!("file.{}", ty.extension()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Content-Disposition` of a download: `inline` or `attachment` (by type), with an
    /// ASCII fallback name and the exact one percent-encoded (RFC 6266, RFC 8187).
    #[must_use]
    pub fn content_disposition(&self, ty: FileType) -> String {
        let how = if ty.inline() { "inline" } else { "attachment" };
        let ascii: String = self
            .0
            .chars()
            .map(|c| match c {
                ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
                _ => '_',
            })
            .collect();
        let mut encoded = String::with_capacity(self.0.len() * 3);
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("{how}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No range, or one this server answers with the whole file (several ranges, another
    /// unit, a malformed header): 200.
    Whole,
    /// Bytes `start..=end`: 206.
    Part {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

impl Range {
    /// Reads `bytes=a-b`, `bytes=a-` and `bytes=-n` against a file of `size` bytes.
    #[must_use]
    pub fn parse(header: Option<&str>, size: u64) -> Self {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return Self::Whole;
        };
        if spec.contains(',') {
            return Self::Whole;
        }
        let Some((from, to)) = spec.trim().split_once('-') else {
            return Self::Whole;
        };
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (from.trim(), to.trim()) {
            ("", suffix) => match number(suffix) {
                Some(0) => Self::Unsatisfiable,
                Some(_) if size == 0 => Self::Unsatisfiable,
                Some(n) => Self::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                },
                None => Self::Whole,
            },
            (start, end) => {
                let Some(start) = number(start) else {
                    return Self::Whole;
                };
                let end = if end.is_empty() {
                    Some(u64::MAX)
                } else {
                    number(end)
                };
                match end {
                    None => Self::Whole,
                    Some(end) if end < start => Self::Whole,
                    Some(_) if start >= size => Self::Unsatisfiable,
                    Some(end) => Self::Part {
                        start,
                        end: end.min(size - 1),
                    },
                }
            }
        }
    }
}

/// An upload's row (the `files` table), with the channel of the message attaching it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    /// The key's UUIDv7.
    pub id: Uuid,
    /// Storage key of the bytes as uploaded (less their metadata).
    pub key: String,
    /// Storage key of the thumbnail, for images that have one.
    pub thumbnail_key: Option<String>,
    /// Who uploaded it.
    pub uploader_id: Uuid,
    /// The name it came with (checked by [`FileName::parse`]).
    pub file_name: String,
    /// MIME type decided from the bytes.
    pub file_type: String,
    /// Bytes stored.
    pub file_size: i64,
    /// `pending` until the bytes are stored, then `ready`.
    pub state: String,
    /// The message attaching it.
    pub message_id: Option<Uuid>,
    /// The channel of that message (read with the row, not stored).
    #[sqlx(default)]
    pub channel_id: Option<Uuid>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
}

impl FileRow {
    /// `state` of a row whose bytes are being written.
    pub const PENDING: &str = "pending";
    /// `state` of a row whose bytes are stored.
    pub const READY: &str = "ready";

    /// Whether its bytes are all stored.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == Self::READY
    }

    /// The storage keys holding its bytes (the original, then the thumbnail).
    #[must_use]
    pub fn storage_keys(&self) -> Vec<String> {
        std::iter::once(self.key.clone())
            .chain(self.thumbnail_key.clone())
            .collect()
    }
}

/// The `file` object of the contract.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    /// Where to download it: `/api/files/<key>`.
    pub file_url: String,
    /// The name it was uploaded with.
    pub file_name: String,
    /// MIME type decided from the bytes.
    pub file_type: String,
    /// Bytes stored.
    pub file_size: i64,
    /// `/api/files/<thumbnail key>` for an image with a thumbnail.
    #[schema(required = true)]
    pub thumbnail_url: Option<String>,
    /// The key to attach it to a message or delete it.
    pub key: String,
}

impl From<&FileRow> for FileView {
    fn from(row: &FileRow) -> Self {
        Self {
            file_url: format!("/api/files/{}", row.key),
            file_name: row.file_name.clone(),
            file_type: row.file_type.clone(),
            file_size: row.file_size,
            thumbnail_url: row
                .thumbnail_key
                .as_ref()
                .map(|k| format!("/api/files/{k}")),
            key: row.key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_reads_back_and_nothing_else_does() {
        let key = FileKey::mint(FileType::Png);
        let text = key.to_string();
        assert!(text.ends_with(".png"), "{text}");
        assert_eq!(FileKey::parse(&text), Some(key.clone()));
        let thumb = key.thumbnail(FileType::Jpeg).to_string();
        assert_eq!(thumb, format!("{}.thumb.jpg", key.id()));
        assert_eq!(
            FileKey::parse(&thumb).map(|k| k.kind()),
            Some(KeyKind::Thumbnail(FileType::Jpeg))
        );
        let id = key.id();
        for bad in [
            String::new(),
            "..".into(),
            "../etc/passwd".into(),
            format!("{id}.png/../../x"),
            format!("{id}.png\0"),
            format!("%2e%2e/{id}.png"),
            format!("{id}"),
            format!("{id}.exe"),
            format!("{id}.thumb.gif"),
            format!("{id}.png.png"),
            format!("{}.png", id.to_string().to_uppercase()),
            format!("{}.png", id.simple()),
            format!("{}.png", Uuid::new_v4()),
            format!("{id}..png"),
        ] {
            assert_eq!(FileKey::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked_and_downloads_name_them_safely() {
        assert!(FileName::parse("report (final).pdf").is_ok());
        assert!(FileName::parse("चाय.txt").is_ok());
        for bad in [
            "",
            "a/b.png",
            "a\\b.png",
            "a\nb.png",
            "a\0b",
            "..",
            &"x".repeat(256),
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
        let name = FileName::parse("चाय \"menu\".pdf").unwrap();
        assert_eq!(
            name.content_disposition(FileType::Pdf),
            "inline; filename=\"___ _menu_.pdf\"; \
             filename*=UTF-8''%E0%A4%9A%E0%A4%BE%E0%A4%AF%20%22menu%22.pdf"
        );
        assert!(
            FileName::fallback(FileType::Docx)
                .content_disposition(FileType::Docx)
                .starts_with("attachment; filename=\"file.docx\"")
        );
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let part = |start, end| Range::Part { start, end };
        assert_eq!(Range::parse(None, 100), Range::Whole);
        assert_eq!(Range::parse(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(Range::parse(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(Range::parse(Some("bytes=100-"), 100), Range::Unsatisfiable);
        assert_eq!(Range::parse(Some("bytes=-0"), 100), Range::Unsatisfiable);
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=",
            "0-1",
        ] {
            assert_eq!(Range::parse(Some(whole), 100), Range::Whole, "{whole}");
        }
    }
}
