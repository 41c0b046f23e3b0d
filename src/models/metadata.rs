//! Metadata cut out of uploaded images without re-encoding them (docs/api.md, Files): EXIF
//! (GPS position, camera serials) and XMP, from JPEG (`APP1` segments), PNG (`eXIf`
//! chunks) and WebP (`EXIF` and `XMP ` chunks, and their flags in `VP8X`). The pixels are
//! untouched. An image whose structure cannot be walked is left as it is.

use std::borrow::Cow;

use super::file_type::FileType;

/// `bytes` without EXIF and XMP metadata, when `ty` carries any; otherwise as they are.
#[must_use]
pub fn strip(ty: FileType, bytes: &[u8]) -> Cow<'_, [u8]> {
    let stripped = match ty {
        FileType::Jpeg => strip_jpeg(bytes),
        FileType::Png => strip_png(bytes),
        FileType::Webp => strip_webp(bytes),
        _ => None,
    };
    stripped.map_or(Cow::Borrowed(bytes), Cow::Owned)
}

/// JPEG: every segment before the scan is copied but an `APP1` holding EXIF or XMP.
fn strip_jpeg(b: &[u8]) -> Option<Vec<u8>> {
    if !b.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut at = 2;
    let mut cut = false;
    loop {
        let marker = *b.get(at + 1)?;
        if b[at] != 0xff {
            return None;
        }
        // Fill bytes and markers without a length.
        if marker == 0xff {
            at += 1;
            continue;
        }
        if marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            out.extend_from_slice(&b[at..at + 2]);
            at += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]));
        let end = at + 2 + len;
        let segment = b.get(at..end)?;
        if marker == 0xda {
            // Start of scan: the rest is image data, copied as it is.
            out.extend_from_slice(&b[at..]);
            break;
        }
        let payload = &segment[4..];
        let metadata = marker == 0xe1
            && (payload.starts_with(b"Exif\0") || payload.starts_with(b"http://ns.adobe.com/xap/"));
        if metadata {
            cut = true;
        } else {
            out.extend_from_slice(segment);
        }
        at = end;
    }
    cut.then_some(out)
}

/// PNG: every chunk copied but `eXIf`.
fn strip_png(b: &[u8]) -> Option<Vec<u8>> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIGNATURE) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIGNATURE);
    let mut at = SIGNATURE.len();
    let mut cut = false;
    while at < b.len() {
        let len = u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        let end = at
            .checked_add(12)?
            .checked_add(usize::try_from(len).ok()?)?;
        let chunk = b.get(at..end)?;
        if &chunk[4..8] == b"eXIf" {
            cut = true;
        } else {
            out.extend_from_slice(chunk);
        }
        at = end;
    }
    cut.then_some(out)
}

/// WebP: every chunk copied but `EXIF` and `XMP `; `VP8X` stops announcing them and the
/// `RIFF` size is written again.
fn strip_webp(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 12 || !b.starts_with(b"RIFF") || &b[8..12] != b"WEBP" {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..12]);
    let mut at = 12;
    let mut cut = false;
    while at + 8 <= b.len() {
        let fourcc = &b[at..at + 4];
        let len = usize::try_from(u32::from_le_bytes(b[at + 4..at + 8].try_into().ok()?)).ok()?;
        let end = at.checked_add(8 + len + (len & 1))?.min(b.len());
        let chunk = b.get(at..end)?;
        if fourcc == b"EXIF" || fourcc == b"XMP " {
            cut = true;
        } else {
            let start = out.len();
            out.extend_from_slice(chunk);
            if fourcc == b"VP8X" && chunk.len() > 8 {
                // Flags: bit 3 EXIF, bit 2 XMP.
                out[start + 8] &= !0b0000_1100;
            }
        }
        at = end;
    }
    if !cut {
        return None;
    }
    let riff = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).unwrap();
        [&[0xff, marker][..], &len.to_be_bytes(), payload].concat()
    }

    #[test]
    fn jpeg_loses_its_exif_and_xmp_and_keeps_everything_else() {
        let jfif = segment(0xe0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let exif = segment(0xe1, b"Exif\0\0GPS 51.5N 0.1W");
        let xmp = segment(0xe1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>");
        let quant = segment(0xdb, &[0u8; 65]);
        let scan = [
            segment(0xda, &[1, 1, 0, 0, 63, 0]),
            vec![0x12, 0x34, 0xff, 0xd9],
        ]
        .concat();
        let image = [&[0xff, 0xd8][..], &jfif, &exif, &quant, &xmp, &scan].concat();
        let clean = strip(FileType::Jpeg, &image);
        assert_eq!(
            clean.as_ref(),
            [&[0xff, 0xd8][..], &jfif, &quant, &scan]
                .concat()
                .as_slice()
        );
        // Nothing to cut: the very same bytes.
        assert!(matches!(strip(FileType::Jpeg, &clean), Cow::Borrowed(_)));
        // A broken structure is left alone.
        assert_eq!(strip(FileType::Jpeg, &image[..20]).as_ref(), &image[..20]);
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let len = u32::try_from(data.len()).unwrap().to_be_bytes();
        [&len[..], kind, data, &[0, 0, 0, 0]].concat()
    }

    #[test]
    fn png_loses_its_exif_chunk() {
        let sig = b"\x89PNG\r\n\x1a\n".to_vec();
        let ihdr = chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
        let exif = chunk(b"eXIf", b"MM\0*GPS");
        let idat = chunk(b"IDAT", &[1, 2, 3]);
        let end = chunk(b"IEND", &[]);
        let image = [&sig[..], &ihdr, &exif, &idat, &end].concat();
        assert_eq!(
            strip(FileType::Png, &image).as_ref(),
            [&sig[..], &ihdr, &idat, &end].concat().as_slice()
        );
    }

    fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let len = u32::try_from(data.len()).unwrap().to_le_bytes();
        let pad: &[u8] = if data.len() % 2 == 1 { &[0] } else { &[] };
        [&kind[..], &len, data, pad].concat()
    }

    #[test]
    fn webp_loses_its_exif_and_xmp_chunks_and_flags() {
        let vp8x = riff_chunk(b"VP8X", &[0b0000_1100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let image_data = riff_chunk(b"VP8L", &[0x2f, 0, 0, 0, 1]);
        let exif = riff_chunk(b"EXIF", b"MM\0*GPS");
        let xmp = riff_chunk(b"XMP ", b"<x:xmpmeta/>");
        let body = [&b"WEBP"[..], &vp8x, &image_data, &exif, &xmp].concat();
        let riff = u32::try_from(body.len()).unwrap().to_le_bytes();
        let image = [&b"RIFF"[..], &riff, &body].concat();
        let clean = strip(FileType::Webp, &image).into_owned();
        let mut flags_cleared = vp8x;
        flags_cleared[8] = 0;
        let body = [&b"WEBP"[..], &flags_cleared, &image_data].concat();
        let riff = u32::try_from(body.len()).unwrap().to_le_bytes();
        assert_eq!(clean, [&b"RIFF"[..], &riff, &body].concat());
    }

    #[test]
    fn other_types_are_never_touched() {
        let pdf = b"%PDF-1.7 Exif\0\0".to_vec();
        assert!(matches!(strip(FileType::Pdf, &pdf), Cow::Borrowed(_)));
    }
}
