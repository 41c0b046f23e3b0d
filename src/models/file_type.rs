//! The file types an upload may be, told from its bytes alone (docs/api.md, Files).
//!
//! Signatures come from the `infer` crate where its check is enough; where it is not, the
//! checks here help it: PNG and GIF need their whole signature, WebP its `RIFF` header, MP3
//! a second frame after the first (two bytes of frame sync are too common by chance), OLE
//! files the stream that makes them DOC or XLS, ZIP files the entries that make them DOCX or
//! XLSX, and text must be UTF-8 that is neither markup nor a script.

use std::io::{self, Read, Seek, SeekFrom};

/// An accepted type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Jpeg,
    Png,
    Gif,
    Webp,
    Pdf,
    Doc,
    Docx,
    Xls,
    Xlsx,
    Txt,
    Mp4,
    Webm,
    Mp3,
    Wav,
}

impl FileType {
    /// Every type, for the tests and the documentation.
    pub const ALL: [Self; 14] = [
        Self::Jpeg,
        Self::Png,
        Self::Gif,
        Self::Webp,
        Self::Pdf,
        Self::Doc,
        Self::Docx,
        Self::Xls,
        Self::Xlsx,
        Self::Txt,
        Self::Mp4,
        Self::Webm,
        Self::Mp3,
        Self::Wav,
    ];

    /// The `fileType` of the contract.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
            Self::Doc => "application/msword",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Xls => "application/vnd.ms-excel",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Txt => "text/plain",
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
            Self::Mp3 => "audio/mpeg",
            Self::Wav => "audio/wav",
        }
    }

    /// The extension of its keys (and of a name made up for a part without one).
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Pdf => "pdf",
            Self::Doc => "doc",
            Self::Docx => "docx",
            Self::Xls => "xls",
            Self::Xlsx => "xlsx",
            Self::Txt => "txt",
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
            Self::Mp3 => "mp3",
            Self::Wav => "wav",
        }
    }

    /// The type of a key's extension.
    #[must_use]
    pub fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.extension() == ext)
    }

    /// Whether it gets a thumbnail.
    #[must_use]
    pub fn is_image(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Gif | Self::Webp)
    }

    /// Whether a browser may show it in place (`Content-Disposition: inline`); Office files
    /// are downloaded.
    #[must_use]
    pub fn inline(self) -> bool {
        !matches!(self, Self::Doc | Self::Docx | Self::Xls | Self::Xlsx)
    }
}

/// How much of the start is read for the signatures.
const HEAD: usize = 8192;

/// The type of the bytes in `src` (read from its start), or `None` when they are none of the
/// accepted types.
///
/// # Errors
/// Reading `src` failed.
pub fn detect<R: Read + Seek>(src: &mut R) -> io::Result<Option<FileType>> {
    src.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(HEAD);
    src.by_ref().take(HEAD as u64).read_to_end(&mut head)?;
    let head = head.as_slice();
    let found = if infer::image::is_jpeg(head) {
        Some(FileType::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(FileType::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(FileType::Gif)
    } else if head.starts_with(b"RIFF") && infer::image::is_webp(head) {
        Some(FileType::Webp)
    } else if infer::audio::is_wav(head) {
        Some(FileType::Wav)
    } else if head.starts_with(b"%PDF-") {
        Some(FileType::Pdf)
    } else if infer::video::is_mp4(head) {
        Some(FileType::Mp4)
    } else if is_webm(head) {
        Some(FileType::Webm)
    } else if head.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        ole_kind(src)?
    } else if head.starts_with(b"PK\x03\x04") {
        zip_kind(src)?
    } else if is_mp3(head) {
        Some(FileType::Mp3)
    } else if looks_like_text(head) && all_utf8(src)? {
        Some(FileType::Txt)
    } else {
        None
    };
    Ok(found)
}

/// An EBML header whose DocType is `webm` (infer wants 256 bytes; a short file may be less).
fn is_webm(head: &[u8]) -> bool {
    head.starts_with(b"\x1a\x45\xdf\xa3")
        && head[..head.len().min(256)]
            .windows(7)
            .any(|w| w == b"\x42\x82\x84webm")
}

/// DOC or XLS by the stream at the root of the OLE container; any other OLE file is none.
fn ole_kind<R: Read + Seek>(src: &mut R) -> io::Result<Option<FileType>> {
    src.seek(SeekFrom::Start(0))?;
    let Ok(file) = cfb::CompoundFile::open(&mut *src) else {
        return Ok(None);
    };
    Ok(if file.is_stream("/WordDocument") {
        Some(FileType::Doc)
    } else if file.is_stream("/Workbook") || file.is_stream("/Book") {
        Some(FileType::Xls)
    } else {
        None
    })
}

/// DOCX or XLSX by the entries of the ZIP's central directory (names only: nothing is
/// inflated); any other ZIP is none.
fn zip_kind<R: Read + Seek>(src: &mut R) -> io::Result<Option<FileType>> {
    let names = zip_names(src)?;
    let has = |n: &str| names.iter().any(|e| e == n);
    Ok(if !has("[Content_Types].xml") {
        None
    } else if has("word/document.xml") {
        Some(FileType::Docx)
    } else if has("xl/workbook.xml") {
        Some(FileType::Xlsx)
    } else {
        None
    })
}

/// The entry names of a ZIP's central directory (empty when it cannot be read).
fn zip_names<R: Read + Seek>(src: &mut R) -> io::Result<Vec<String>> {
    let len = src.seek(SeekFrom::End(0))?;
    // The end record is 22 bytes plus a comment of at most 65,535.
    let tail_len = len.min(22 + 65_535);
    src.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    src.by_ref().take(tail_len).read_to_end(&mut tail)?;
    let Some(end) = tail
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .filter(|&at| at + 22 <= tail.len())
    else {
        return Ok(Vec::new());
    };
    let u16_at = |b: &[u8], at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let entries = u16_at(&tail, end + 10);
    let size = u64::from(u32_at(&tail, end + 12));
    let offset = u64::from(u32_at(&tail, end + 16));
    if offset.saturating_add(size) > len || size > 4 << 20 {
        return Ok(Vec::new());
    }
    src.seek(SeekFrom::Start(offset))?;
    let mut dir = Vec::new();
    src.by_ref().take(size).read_to_end(&mut dir)?;
    let mut names = Vec::with_capacity(entries);
    let mut at = 0;
    while names.len() < entries && at + 46 <= dir.len() && dir[at..].starts_with(b"PK\x01\x02") {
        let (name_len, extra, comment) = (
            u16_at(&dir, at + 28),
            u16_at(&dir, at + 30),
            u16_at(&dir, at + 32),
        );
        let Some(name) = dir.get(at + 46..at + 46 + name_len) else {
            break;
        };
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra + comment;
    }
    Ok(names)
}

/// An ID3v2 tag, or an MPEG audio Layer III frame followed by another.
fn is_mp3(head: &[u8]) -> bool {
    if head.len() >= 10 && head.starts_with(b"ID3") && head[3] < 5 && head[5] & 0x0f == 0 {
        // The tag size is four 7-bit bytes.
        return head[6..10].iter().all(|b| b & 0x80 == 0);
    }
    match mp3_frame_len(head) {
        Some(first) => head.get(first..).and_then(mp3_frame_len).is_some(),
        None => false,
    }
}

/// The length of the Layer III frame whose header starts `b`, if it is one.
fn mp3_frame_len(b: &[u8]) -> Option<usize> {
    let h = b.get(..4)?;
    if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (h[1] >> 3) & 0b11; // 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    let layer = (h[1] >> 1) & 0b11; // 1: Layer III
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 0b11);
    let padding = usize::from((h[2] >> 1) & 1);
    if version == 1 || layer != 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const MPEG1: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    const RATES: [usize; 3] = [44_100, 48_000, 32_000];
    let (kbps, rate, per_frame) = match version {
        3 => (MPEG1[bitrate_index], RATES[rate_index], 144),
        2 => (MPEG2[bitrate_index], RATES[rate_index] / 2, 72),
        _ => (MPEG2[bitrate_index], RATES[rate_index] / 4, 72),
    };
    Some(per_frame * kbps * 1000 / rate + padding)
}

/// Text by its start: no NUL, not markup (a first non-blank `<`), not a script (`#!`).
fn looks_like_text(head: &[u8]) -> bool {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    !head.contains(&0) && first != Some(&b'<') && !body.starts_with(b"#!")
}

/// Whether every byte of `src` is UTF-8 without NUL, read in pieces.
fn all_utf8<R: Read + Seek>(src: &mut R) -> io::Result<bool> {
    src.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of a character cut by the end of the previous piece.
    let mut carry = 0;
    loop {
        let n = src.read(&mut buf[carry..])?;
        if n == 0 {
            return Ok(carry == 0);
        }
        let filled = carry + n;
        let piece = &buf[..filled];
        if piece.contains(&0) {
            return Ok(false);
        }
        match std::str::from_utf8(piece) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_none() => {
                // An incomplete character at the end: keep it for the next piece.
                let valid = e.valid_up_to();
                buf.copy_within(valid..filled, 0);
                carry = filled - valid;
            }
            Err(_) => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn kind(bytes: &[u8]) -> Option<FileType> {
        detect(&mut Cursor::new(bytes.to_vec())).unwrap()
    }

    /// A ZIP with empty stored entries of these names.
    fn zip(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = u32::try_from(out.len()).unwrap();
            let n = u16::try_from(name.len()).unwrap();
            out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
            out.extend_from_slice(&[0; 12]); // crc, sizes
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            central
                .extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&n.to_le_bytes());
            central.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let start = u32::try_from(out.len()).unwrap();
        let size = u32::try_from(central.len()).unwrap();
        let count = u16::try_from(names.len()).unwrap();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    /// An OLE compound file with one stream of this name at its root.
    fn ole(stream: &str) -> Vec<u8> {
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        file.create_stream(format!("/{stream}"))
            .unwrap()
            .write_all(b"content")
            .unwrap();
        file.flush().unwrap();
        file.into_inner().into_inner()
    }

    /// Two MPEG-1 Layer III frames at 128 kb/s, 44.1 kHz (417 bytes each).
    fn mp3_frames() -> Vec<u8> {
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xff, 0xfb, 0x90, 0x00]);
        [frame.clone(), frame].concat()
    }

    #[test]
    fn each_type_is_told_from_its_bytes() {
        let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm".to_vec();
        webm.resize(64, 0);
        let cases: Vec<(Vec<u8>, FileType)> = vec![
            (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00".to_vec(), FileType::Jpeg),
            (
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(),
                FileType::Png,
            ),
            (b"GIF89a\x01\x00\x01\x00".to_vec(), FileType::Gif),
            (b"RIFF\x24\x00\x00\x00WEBPVP8 ".to_vec(), FileType::Webp),
            (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(), FileType::Pdf),
            (ole("WordDocument"), FileType::Doc),
            (ole("Workbook"), FileType::Xls),
            (
                zip(&["[Content_Types].xml", "word/document.xml"]),
                FileType::Docx,
            ),
            (
                zip(&["[Content_Types].xml", "xl/workbook.xml"]),
                FileType::Xlsx,
            ),
            (
                "Chai, with ginger — ☕\n".as_bytes().to_vec(),
                FileType::Txt,
            ),
            (
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec(),
                FileType::Mp4,
            ),
            (webm, FileType::Webm),
            (
                b"ID3\x04\x00\x00\x00\x00\x00\x10rest".to_vec(),
                FileType::Mp3,
            ),
            (mp3_frames(), FileType::Mp3),
            (b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec(), FileType::Wav),
        ];
        for (bytes, expected) in cases {
            assert_eq!(kind(&bytes), Some(expected), "{expected:?}");
        }
    }

    #[test]
    fn what_is_none_of_them_is_refused() {
        let refused: Vec<(&str, Vec<u8>)> = vec![
            (
                "ELF executable",
                b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec(),
            ),
            (
                "PE executable",
                b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec(),
            ),
            ("shell script", b"#!/bin/sh\nrm -rf /\n".to_vec()),
            (
                "HTML",
                b"  <!DOCTYPE html><html><script>x()</script>".to_vec(),
            ),
            (
                "SVG",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            ),
            ("XML", b"\xEF\xBB\xBF<?xml version=\"1.0\"?><a/>".to_vec()),
            ("a plain ZIP", zip(&["notes.txt"])),
            ("a ZIP without content types", zip(&["word/document.xml"])),
            ("another OLE file", ole("PowerPoint Document")),
            ("Latin-1 text", b"caf\xe9 au lait".to_vec()),
            ("text with NUL", b"abc\x00def".to_vec()),
            (
                "one lone frame sync",
                b"\xff\xfb\x90\x00 and then text".to_vec(),
            ),
            (
                "WEBP without RIFF",
                b"XXXX\x24\x00\x00\x00WEBPVP8 ".to_vec(),
            ),
        ];
        for (what, bytes) in refused {
            assert_eq!(kind(&bytes), None, "{what}");
        }
    }

    #[test]
    fn text_is_checked_to_its_last_byte_across_pieces() {
        // A multi-byte character cut by the 64 KiB piece boundary is still valid…
        let mut text = "a".repeat(64 * 1024 - 1).into_bytes();
        text.extend_from_slice("€ end".as_bytes());
        assert_eq!(kind(&text), Some(FileType::Txt));
        // …and an invalid byte far past the signature window is still found.
        let mut bad = "a".repeat(100_000).into_bytes();
        bad.push(0xff);
        assert_eq!(kind(&bad), None);
        // A character cut off by the end of the file is not text.
        let mut cut = b"abc".to_vec();
        cut.extend_from_slice(&"€".as_bytes()[..2]);
        assert_eq!(kind(&cut), None);
    }

    #[test]
    fn keys_extensions_name_one_type_each() {
        for t in FileType::ALL {
            assert_eq!(FileType::from_extension(t.extension()), Some(t));
        }
        assert_eq!(FileType::from_extension("exe"), None);
    }
}
