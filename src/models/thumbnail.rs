//! Thumbnails of JPEG, PNG, GIF (its first frame) and WebP images: at most
//! [`LONG_SIDE`] pixels on the long side, JPEG — PNG when the image has transparency —
//! written fresh, so they carry no metadata. CPU-bound: callers run it on a blocking thread.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::file_type::FileType;

/// Longest side of a thumbnail, in pixels.
pub const LONG_SIDE: u32 = 320;
/// Largest image decoded, in pixels (width × height): beyond it, no thumbnail.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Most memory the decoder may allocate, in bytes.
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// JPEG quality of a thumbnail.
const QUALITY: u8 = 80;

/// A thumbnail: its type (JPEG or PNG) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// [`FileType::Jpeg`] or [`FileType::Png`].
    pub file_type: FileType,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// The thumbnail of an image of type `ty`; `None` for other types, for an image that
/// cannot be decoded, and for one beyond [`MAX_PIXELS`] or [`MAX_ALLOC`] (a decompression
/// bomb is refused from its header, before any pixel is allocated).
#[must_use]
pub fn make(ty: FileType, bytes: &[u8]) -> Option<Thumbnail> {
    let format = match ty {
        FileType::Jpeg => ImageFormat::Jpeg,
        FileType::Png => ImageFormat::Png,
        FileType::Gif => ImageFormat::Gif,
        FileType::Webp => ImageFormat::WebP,
        _ => return None,
    };
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_alloc = Some(MAX_ALLOC);
        reader.limits(limits);
        reader
    };
    let (width, height) = reader().into_dimensions().ok()?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS || width == 0 || height == 0 {
        return None;
    }
    let image = reader().decode().ok()?;
    let small = if width <= LONG_SIDE && height <= LONG_SIDE {
        image
    } else {
        image.thumbnail(LONG_SIDE, LONG_SIDE)
    };
    encode(&small)
}

fn encode(image: &DynamicImage) -> Option<Thumbnail> {
    let mut out = Cursor::new(Vec::new());
    if transparent(image) {
        image.to_rgba8().write_to(&mut out, ImageFormat::Png).ok()?;
        return Some(Thumbnail {
            file_type: FileType::Png,
            bytes: out.into_inner(),
        });
    }
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY);
    image.to_rgb8().write_with_encoder(encoder).ok()?;
    Some(Thumbnail {
        file_type: FileType::Jpeg,
        bytes: out.into_inner(),
    })
}

/// Whether any pixel is less than opaque (an alpha channel alone is not enough).
fn transparent(image: &DynamicImage) -> bool {
    image.has_alpha() && image.to_rgba8().pixels().any(|p| p.0[3] < u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, alpha: u8) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 30, alpha]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn dimensions(thumb: &Thumbnail) -> (u32, u32) {
        image::load_from_memory(&thumb.bytes)
            .unwrap()
            .to_rgb8()
            .dimensions()
    }

    #[test]
    fn a_large_opaque_image_becomes_a_jpeg_of_320_on_its_long_side() {
        let thumb = make(FileType::Png, &png(1000, 500, 255)).unwrap();
        assert_eq!(thumb.file_type, FileType::Jpeg);
        assert_eq!(dimensions(&thumb), (320, 160));
    }

    #[test]
    fn a_transparent_image_keeps_its_transparency_as_png_and_small_ones_are_not_enlarged() {
        let thumb = make(FileType::Png, &png(40, 90, 10)).unwrap();
        assert_eq!(thumb.file_type, FileType::Png);
        assert_eq!(dimensions(&thumb), (40, 90));
    }

    #[test]
    fn a_header_claiming_100000_by_100000_pixels_gets_no_thumbnail() {
        // A valid PNG signature and IHDR for a 100,000 × 100,000 image, and nothing else.
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            let mut crc = flate2::Crc::new();
            crc.update(&body);
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut ihdr = 100_000u32.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        // A megabyte of zero rows deflates to about a kilobyte.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zlib, &vec![0u8; 1 << 20]).unwrap();
        let idat = zlib.finish().unwrap();
        let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut bomb, b"IHDR", &ihdr);
        chunk(&mut bomb, b"IDAT", &idat);
        chunk(&mut bomb, b"IEND", &[]);
        assert!(bomb.len() < 8 * 1024, "a few kilobytes: {}", bomb.len());
        let header = ImageReader::with_format(Cursor::new(&bomb), ImageFormat::Png);
        assert_eq!(
            header.into_dimensions().unwrap(),
            (100_000, 100_000),
            "the header itself is valid"
        );
        assert_eq!(make(FileType::Png, &bomb), None);
    }

    #[test]
    fn other_types_and_broken_images_get_none() {
        assert_eq!(make(FileType::Pdf, b"%PDF-1.7"), None);
        assert_eq!(make(FileType::Png, b"\x89PNG\r\n\x1a\nbroken"), None);
    }
}
