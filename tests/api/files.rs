//! Files (API.md §7, docs/api.md Files): uploads judged by their bytes, limits decided while
//! the body streams, thumbnails, downloads with ranges and caching, keys that cannot escape
//! the storage, deletes, attachments on messages. Runs on SQLite + a local directory in the
//! first pass and on PostgreSQL + Redis + an S3-compatible server in the second.

use std::io::Cursor;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, TestUser, assert_error, json};

const WAIT: Duration = Duration::from_secs(5);
const BOUNDARY: &str = "chai-test-boundary-7MA4YWxk";

/// One part of a multipart body.
struct Part<'a> {
    name: &'a str,
    file_name: Option<&'a str>,
    bytes: &'a [u8],
}

fn part<'a>(name: &'a str, file_name: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name,
        file_name: Some(file_name),
        bytes,
    }
}

/// A `multipart/form-data` body; each part claims `application/octet-stream` (the server
/// must not care).
fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match p.file_name {
            Some(f) => format!("form-data; name=\"{}\"; filename=\"{f}\"", p.name),
            None => format!("form-data; name=\"{}\"", p.name),
        };
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Type: image/png\r\n\r\n");
        body.extend_from_slice(p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_body(
    app: &TestApp,
    user: &TestUser,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&user.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn upload_parts(
    app: &TestApp,
    user: &TestUser,
    path: &str,
    parts: &[Part<'_>],
) -> reqwest::Response {
    post_body(
        app,
        user,
        path,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart(parts),
    )
    .await
}

/// Uploads one file; its `file` object.
pub(crate) async fn upload(app: &TestApp, user: &TestUser, name: &str, bytes: &[u8]) -> Value {
    let (status, body) =
        json(upload_parts(app, user, "/api/upload", &[part("file", name, bytes)]).await).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["file"].clone()
}

async fn download(app: &TestApp, user: &TestUser, url: &str) -> reqwest::Response {
    app.get_as(&user.token, url).await
}

/// Keys in the app's storage.
async fn stored_keys(app: &TestApp) -> Vec<String> {
    let mut keys = app.state.storage.keys().await.unwrap();
    keys.sort();
    keys
}

/// Asserts nothing is stored and no upload is left `pending`.
async fn assert_nothing_stored(app: &TestApp) {
    assert_eq!(
        stored_keys(app).await,
        Vec::<String>::new(),
        "no bytes left behind"
    );
    let pending = app
        .state
        .store
        .delete_stale_files(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(pending.is_empty(), "no row left behind: {pending:?}");
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([x.to_le_bytes()[0], y.to_le_bytes()[0], 90])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG with an EXIF segment holding a GPS position.
fn jpeg_with_gps() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(800, 600, image::Rgb([10, 120, 200]));
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let plain = out.into_inner();
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0GPS 48.8584N 2.2945E".to_vec();
    let len = u16::try_from(exif.len() + 2).unwrap().to_be_bytes();
    let mut segment = vec![0xFF, 0xE1, len[0], len[1]];
    segment.append(&mut exif);
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&segment);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn wav() -> Vec<u8> {
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(36u32 + 8).to_le_bytes());
    w.extend_from_slice(
        b"WAVEfmt \x10\0\0\0\x01\0\x01\0\x44\xac\0\0\x88\x58\x01\0\x02\0\x10\0data",
    );
    w.extend_from_slice(&8u32.to_le_bytes());
    w.extend_from_slice(&[0; 8]);
    w
}

#[tokio::test]
async fn an_image_is_stored_with_a_thumbnail_and_served_with_its_headers() {
    let app = TestApp::spawn().await;
    let u = app.signup("painter").await;
    let original = png(1000, 500);
    let file = upload(&app, &u, "sunset é.png", &original).await;
    let key = file["key"].as_str().unwrap();
    assert_eq!(file["fileType"], "image/png");
    assert_eq!(file["fileName"], "sunset é.png");
    assert_eq!(file["fileSize"], original.len());
    assert_eq!(file["fileUrl"], format!("/api/files/{key}"));
    let thumb_url = file["thumbnailUrl"].as_str().unwrap();
    assert!(thumb_url.ends_with(".thumb.jpg"), "{thumb_url}");

    let r = download(&app, &u, file["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], original.len().to_string().as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "private, max-age=31536000, immutable");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"sunset _.png\"; filename*=UTF-8''sunset%20%C3%A9.png"
    );
    assert_eq!(r.bytes().await.unwrap(), original, "stored byte for byte");

    // A cached copy is confirmed without a body.
    let etag = h["etag"].to_str().unwrap().to_owned();
    let r = app
        .client
        .get(app.url(file["fileUrl"].as_str().unwrap()))
        .bearer_auth(&u.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());

    let thumb = download(&app, &u, thumb_url).await;
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 160));
}

#[tokio::test]
async fn ranges_serve_parts_for_seeking_and_refuse_one_past_the_end() {
    let app = TestApp::spawn().await;
    let u = app.signup("seeker").await;
    let text: Vec<u8> = (0..2000u32)
        .map(|i| b'a' + (i % 26).to_le_bytes()[0])
        .collect();
    let file = upload(&app, &u, "notes.txt", &text).await;
    assert_eq!(file["fileType"], "text/plain");
    assert_eq!(file["thumbnailUrl"], Value::Null);
    let url = app.url(file["fileUrl"].as_str().unwrap());
    let ranged = |range: &'static str| {
        app.client
            .get(&url)
            .bearer_auth(&u.token)
            .header("range", range)
            .send()
    };
    for (range, from, to) in [
        ("bytes=0-9", 0, 9),
        ("bytes=1990-", 1990, 1999),
        ("bytes=-5", 1995, 1999),
        ("bytes=100-99999", 100, 1999),
    ] {
        let r = ranged(range).await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {from}-{to}/2000").as_str()
        );
        assert_eq!(
            r.headers()["content-length"],
            (to - from + 1).to_string().as_str()
        );
        assert_eq!(r.bytes().await.unwrap(), text[from..=to], "{range}");
    }
    let r = ranged("bytes=2000-").await.unwrap();
    assert_eq!(r.headers()["content-range"], "bytes */2000");
    assert_error(r, 416, "RANGE_NOT_SATISFIABLE").await;
    // Never compressed: the length and the ranges stay those of the stored bytes.
    let r = app
        .client
        .get(&url)
        .bearer_auth(&u.token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["content-length"], "2000");
    let whole = ranged("bytes=0-1,5-9").await.unwrap();
    assert_eq!(whole.status(), 200, "several ranges: the whole file");
    assert_eq!(whole.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(whole.bytes().await.unwrap(), text);
}

#[tokio::test]
async fn types_come_from_the_bytes_never_from_the_name() {
    let app = TestApp::spawn().await;
    let u = app.signup("checker").await;
    let pdf = upload(
        &app,
        &u,
        "report.png",
        b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n",
    )
    .await;
    assert_eq!(pdf["fileType"], "application/pdf");
    let r = download(&app, &u, pdf["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let sound = upload(&app, &u, "voice.wav", &wav()).await;
    assert_eq!(sound["fileType"], "audio/wav");

    // The rest of the types, whatever their names claim (the detector's unit tests build
    // DOCX and XLSX too); Office files download as attachments, the others inline.
    let mut doc = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    std::io::Write::write_all(&mut doc.create_stream("/WordDocument").unwrap(), b"words").unwrap();
    doc.flush().unwrap();
    let doc = doc.into_inner().into_inner();
    let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm".to_vec();
    webm.resize(64, 0);
    let typed: [(&str, &[u8], &str, &str); 6] = [
        ("minutes.txt", &doc, "application/msword", "attachment"),
        (
            "clip.mp3",
            b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom",
            "video/mp4",
            "inline",
        ),
        ("clip.mp4", &webm, "video/webm", "inline"),
        (
            "song.wav",
            b"ID3\x04\0\0\0\0\0\x10rest",
            "audio/mpeg",
            "inline",
        ),
        (
            "anim.webp",
            b"GIF89a\x01\0\x01\0\0\0\0",
            "image/gif",
            "inline",
        ),
        (
            "still.gif",
            b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0",
            "image/webp",
            "inline",
        ),
    ];
    for (name, bytes, mime, disposition) in typed {
        let file = upload(&app, &u, name, bytes).await;
        assert_eq!(file["fileType"], mime, "{name}");
        let r = download(&app, &u, file["fileUrl"].as_str().unwrap()).await;
        assert_eq!(r.headers()["content-type"], mime);
        let got = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(got.starts_with(disposition), "{name}: {got}");
        assert_eq!(r.bytes().await.unwrap(), bytes, "{name}");
    }

    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(4096, 0);
    let refused: [(&str, &[u8]); 5] = [
        ("cat.png", &elf),
        ("run.txt", b"#!/bin/sh\nrm -rf /\n"),
        ("page.txt", b"<!doctype html><script>alert(1)</script>"),
        (
            "logo.txt",
            b"  <svg xmlns=\"http://www.w3.org/2000/svg\"></svg>",
        ),
        (
            "archive.docx",
            b"PK\x03\x04\x14\0\0\0\0\0not an office file",
        ),
    ];
    for (name, bytes) in refused {
        let r = upload_parts(&app, &u, "/api/upload", &[part("file", name, bytes)]).await;
        assert_error(r, 415, "UNSUPPORTED_FILE_TYPE").await;
    }
    // A part without a file name is named after its type.
    let r = upload_parts(
        &app,
        &u,
        "/api/upload",
        &[Part {
            name: "file",
            file_name: None,
            bytes: b"plain words",
        }],
    )
    .await;
    let (status, body) = json(r).await;
    assert_eq!(
        (status, body["data"]["file"]["fileName"].as_str()),
        (201, Some("file.txt")),
        "{body}"
    );
    assert_eq!(
        stored_keys(&app).await.len(),
        9,
        "only the accepted files are stored"
    );
}

#[tokio::test]
async fn exif_gps_is_cut_from_the_original_and_the_thumbnail_and_bombs_get_no_thumbnail() {
    let app = TestApp::spawn().await;
    let u = app.signup("traveller").await;
    let jpeg = jpeg_with_gps();
    assert!(contains(&jpeg, b"GPS 48.8584N"));
    let file = upload(&app, &u, "tower.jpg", &jpeg).await;
    let stored = download(&app, &u, file["fileUrl"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert!(!contains(&stored, b"GPS 48.8584N") && !contains(&stored, b"Exif\0\0"));
    assert_eq!(file["fileSize"], stored.len());
    assert_eq!(
        image::load_from_memory(&stored).unwrap().width(),
        800,
        "still the same image"
    );
    let thumb = download(&app, &u, file["thumbnailUrl"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert!(!contains(&thumb, b"GPS 48.8584N") && !contains(&thumb, b"Exif\0\0"));

    // A few kilobytes claiming 100,000 × 100,000 pixels: stored, without a thumbnail.
    let mut header = png(1, 1);
    let ihdr = 16;
    header[ihdr..ihdr + 4].copy_from_slice(&100_000u32.to_be_bytes());
    header[ihdr + 4..ihdr + 8].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&header[12..29]);
    header[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let bomb = upload(&app, &u, "bomb.png", &header).await;
    assert_eq!(bomb["fileType"], "image/png");
    assert_eq!(bomb["thumbnailUrl"], Value::Null);
}

#[tokio::test]
async fn max_file_size_is_exact_and_an_endless_body_is_refused_without_being_read() {
    let app = TestApp::spawn_with(|v| {
        v.insert("MAX_FILE_SIZE".into(), "100000".into());
    })
    .await;
    let u = app.signup("hoarder").await;
    let exact = vec![b'x'; 100_000];
    upload(&app, &u, "exact.txt", &exact).await;
    let over = vec![b'x'; 100_001];
    let r = upload_parts(&app, &u, "/api/upload", &[part("file", "over.txt", &over)]).await;
    assert_error(r, 413, "FILE_TOO_LARGE").await;
    // The JSON routes keep their 64 KiB limit.
    let big = json!({"content": "x".repeat(70_000)});
    let r = app
        .send_as(Method::POST, &u.token, "/api/channels", &big)
        .await;
    assert_error(r, 413, "PAYLOAD_TOO_LARGE").await;

    // A 5 GB upload declared up front is refused before its body is read.
    let (status, sent) = stream_upload(&app, &u, Some(5_000_000_000)).await;
    assert_eq!(status, 413);
    assert!(sent < 20_000_000, "sent {sent} bytes before the answer");
    // One that does not say its length is cut off once the file passes the limit.
    let (status, sent) = stream_upload(&app, &u, None).await;
    assert_eq!(status, 413);
    assert!(sent < 20_000_000, "sent {sent} bytes before the answer");
    assert_eq!(stored_keys(&app).await.len(), 1, "only the exact-size file");
}

/// Streams an endless file part (up to 200 MB) over a raw connection until the server
/// answers; its status and how many bytes went out before the answer came.
async fn stream_upload(app: &TestApp, user: &TestUser, length: Option<u64>) -> (u16, u64) {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let framing = match length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_owned(),
    };
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n",
        user.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        let start = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.txt\"\r\n\r\n"
        );
        let chunk = vec![b'x'; 64 * 1024];
        let mut first = true;
        while sent < 200_000_000 {
            let data: Vec<u8> = if first {
                first = false;
                [start.as_bytes(), &chunk].concat()
            } else {
                chunk.clone()
            };
            let framed = if length.is_some() {
                data
            } else {
                [format!("{:x}\r\n", data.len()).as_bytes(), &data, b"\r\n"].concat()
            };
            if write.write_all(&framed).await.is_err() {
                break;
            }
            sent += framed.len() as u64;
        }
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    drop(read);
    writer.abort();
    let sent = writer.await.unwrap_or(0);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    (status, sent)
}

#[tokio::test]
async fn malformed_uploads_get_a_clear_error_and_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let u = app.signup("mangler").await;
    let multi = format!("multipart/form-data; boundary={BOUNDARY}");
    let good = multipart(&[part("file", "a.txt", b"fine")]);
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "no boundary",
            "multipart/form-data".into(),
            good.clone(),
            "body",
        ),
        (
            "not multipart",
            "application/json".into(),
            b"{}".to_vec(),
            "body",
        ),
        (
            "truncated",
            multi.clone(),
            good[..good.len() - 20].to_vec(),
            "body",
        ),
        ("empty body", multi.clone(), Vec::new(), "body"),
        (
            "missing part",
            multi.clone(),
            format!("--{BOUNDARY}--\r\n").into_bytes(),
            "file",
        ),
        (
            "other part",
            multi.clone(),
            multipart(&[part("avatar", "a.txt", b"x")]),
            "avatar",
        ),
        (
            "empty file",
            multi.clone(),
            multipart(&[part("file", "a.txt", b"")]),
            "file",
        ),
        (
            "slash",
            multi.clone(),
            multipart(&[part("file", "../../etc/passwd", b"x")]),
            "fileName",
        ),
        (
            "backslash",
            multi.clone(),
            multipart(&[part("file", "..\\\\boot.ini", b"x")]),
            "fileName",
        ),
        (
            "control",
            multi.clone(),
            multipart(&[part("file", "tab\there.txt", b"x")]),
            "fileName",
        ),
        (
            "two files",
            multi.clone(),
            multipart(&[part("file", "a.txt", b"x"), part("file", "b.txt", b"y")]),
            "file",
        ),
    ];
    for (what, content_type, body, field) in cases {
        let r = post_body(&app, &u, "/api/upload", &content_type, body).await;
        let body = assert_error(r, 400, "VALIDATION_ERROR").await;
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{what}: {body}"
        );
    }
    let long = "n".repeat(10_000);
    let r = upload_parts(&app, &u, "/api/upload", &[part("file", &long, b"x")]).await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"][0]["field"], "fileName");
    assert_eq!(
        assert_error(
            app.client
                .post(app.url("/api/upload"))
                .send()
                .await
                .unwrap(),
            401,
            "AUTH_REQUIRED"
        )
        .await["success"],
        false
    );
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn several_files_come_back_in_order_and_one_bad_file_stores_none() {
    let app = TestApp::spawn().await;
    let u = app.signup("batcher").await;
    let image = png(40, 30);
    let parts = [
        part("files", "one.txt", b"first"),
        part("files", "two.png", &image),
        part("files", "three.pdf", b"%PDF-1.4\n%%EOF\n"),
    ];
    let (status, body) = json(upload_parts(&app, &u, "/api/upload/multiple", &parts).await).await;
    assert_eq!(status, 201, "{body}");
    let names: Vec<&str> = body["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one.txt", "two.png", "three.pdf"]);
    let stored = stored_keys(&app).await;
    assert_eq!(stored.len(), 4, "three files and one thumbnail: {stored:?}");

    let fresh = TestApp::spawn().await;
    let v = fresh.signup("batcher2").await;
    let bad = [
        part("files", "ok.txt", b"fine"),
        part(
            "files",
            "evil.png",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
        ),
        part("files", "late.txt", b"x"),
    ];
    let r = upload_parts(&fresh, &v, "/api/upload/multiple", &bad).await;
    assert_error(r, 415, "UNSUPPORTED_FILE_TYPE").await;
    let empty = [
        part("files", "ok.txt", b"fine"),
        part("files", "void.txt", b""),
    ];
    let r = upload_parts(&fresh, &v, "/api/upload/multiple", &empty).await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"][0]["field"], "files[1]");
    let eleven: Vec<Part<'_>> = (0..11).map(|_| part("files", "n.txt", b"n")).collect();
    let r = upload_parts(&fresh, &v, "/api/upload/multiple", &eleven).await;
    let body = assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"][0]["field"], "files");
    let r = upload_parts(
        &fresh,
        &v,
        "/api/upload/multiple",
        &[part("file", "a.txt", b"a")],
    )
    .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_nothing_stored(&fresh).await;
}

#[tokio::test]
async fn keys_the_server_did_not_mint_never_reach_the_storage() {
    let app = TestApp::spawn().await;
    let u = app.signup("prober").await;
    let file = upload(&app, &u, "real.txt", b"real").await;
    let key = file["key"].as_str().unwrap().to_owned();
    let stem = key.trim_end_matches(".txt");
    for path in [
        "..%2F..%2Fetc%2Fpasswd".to_owned(),
        "%2e%2e".to_owned(),
        "..".to_owned(),
        format!("{key}%00"),
        format!("{stem}.pdf"),
        format!("{stem}.thumb.jpg"),
        key.to_uppercase(),
        format!("{}.txt", uuid::Uuid::now_v7()),
        "0190d6e2-0000-4000-8000-000000000000.txt".to_owned(),
    ] {
        let r = download(&app, &u, &format!("/api/files/{path}")).await;
        assert_eq!(r.status(), 404, "{path}");
    }
    for raw in ["../../etc/passwd", "a/b", "..\u{0}", &format!("{stem}.pdf")] {
        let r = app
            .send_as(
                Method::DELETE,
                &u.token,
                "/api/upload",
                &json!({"key": raw}),
            )
            .await;
        assert_error(r, 404, "FILE_NOT_FOUND").await;
    }
    let r = app
        .send_as(Method::DELETE, &u.token, "/api/upload", &json!({}))
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    assert_eq!(
        download(&app, &u, &format!("/api/files/{key}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn only_the_uploader_deletes_and_the_row_and_bytes_go_together() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner").await;
    let other = app.signup("stranger").await;
    let file = upload(&app, &owner, "pic.png", &png(500, 400)).await;
    let key = file["key"].as_str().unwrap();
    // An unattached file is the uploader's alone.
    assert_eq!(
        download(&app, &other, file["fileUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
    let r = app
        .send_as(
            Method::DELETE,
            &other.token,
            "/api/upload",
            &json!({"key": key}),
        )
        .await;
    assert_error(r, 403, "NOT_FILE_OWNER").await;
    let r = app
        .send_as(
            Method::DELETE,
            &owner.token,
            "/api/upload",
            &json!({"key": key}),
        )
        .await;
    let (status, body) = json(r).await;
    assert_eq!(
        (status, body["data"]["key"].as_str()),
        (200, Some(key)),
        "{body}"
    );
    assert_eq!(
        download(&app, &owner, file["fileUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
    assert_eq!(
        download(&app, &owner, file["thumbnailUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
    let r = app
        .send_as(
            Method::DELETE,
            &owner.token,
            "/api/upload",
            &json!({"key": key}),
        )
        .await;
    assert_error(r, 404, "FILE_NOT_FOUND").await;
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn attachments_travel_with_the_message_and_follow_its_channel() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let eve = app.signup("eve").await;
    let room = app.create_channel(&alice, "shared", true).await;
    let r = app
        .send_as(
            Method::POST,
            &alice.token,
            &format!("/api/channels/{room}/members"),
            &json!({"userId": bob.id}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let pic = upload(&app, &alice, "pic.png", &png(600, 300)).await;
    let doc = upload(&app, &alice, "doc.pdf", b"%PDF-1.5\n%%EOF\n").await;
    let bobs = upload(&app, &bob, "bob.txt", b"bob's").await;

    let mut socket = app.socket(&bob).await;
    socket
        .call("join-channel", &json!({"channelId": room}))
        .await;
    let path = format!("/api/channels/{room}/messages");
    let send = async |body: Value| app.send_as(Method::POST, &alice.token, &path, &body).await;
    let r = send(json!({"content": "look", "attachments": [doc["key"], pic]})).await;
    let (status, body) = json(r).await;
    assert_eq!(status, 201, "{body}");
    let message = body["data"]["message"].clone();
    assert_eq!(
        message["attachments"],
        json!([doc, pic]),
        "file objects, in the order given"
    );
    let heard = socket
        .event("new-message", WAIT)
        .await
        .expect("new-message");
    assert_eq!(heard["attachments"], json!([doc, pic]));
    let history = json(
        app.get_as(&bob.token, &format!("/api/channels/{room}/messages"))
            .await,
    )
    .await
    .1;
    assert_eq!(
        history["data"]["messages"][0]["attachments"],
        json!([doc, pic])
    );
    let r = app
        .send_as(
            Method::PATCH,
            &alice.token,
            &format!("/api/messages/{}", message["id"].as_str().unwrap()),
            &json!({"content": "look again"}),
        )
        .await;
    assert_eq!(
        json(r).await.1["data"]["message"]["attachments"],
        json!([doc, pic])
    );
    let edited = socket
        .event("message-edited", WAIT)
        .await
        .expect("message-edited");
    assert_eq!(edited["attachments"], json!([doc, pic]));

    // Members read it; others learn nothing of it.
    let r = download(&app, &bob, pic["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        download(&app, &bob, pic["thumbnailUrl"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let r = download(&app, &eve, pic["fileUrl"].as_str().unwrap()).await;
    assert_error(r, 404, "FILE_NOT_FOUND").await;

    // Bad attachments name the field and send nothing.
    for (attachments, why) in [
        (json!([bobs["key"]]), "someone else's"),
        (json!([format!("{}.txt", uuid::Uuid::now_v7())]), "unknown"),
        (json!(["../../etc/passwd"]), "not minted"),
        (json!([pic["key"]]), "already attached"),
        (
            json!((0..11).map(|_| doc["key"].clone()).collect::<Vec<_>>()),
            "eleven",
        ),
    ] {
        let body = assert_error(
            send(json!({"content": "x", "attachments": attachments})).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(
            body["error"]["details"][0]["field"], "attachments",
            "{why}: {body}"
        );
    }
    // An attached file goes only with its message.
    let r = app
        .send_as(
            Method::DELETE,
            &alice.token,
            "/api/upload",
            &json!({"key": pic["key"]}),
        )
        .await;
    assert_error(r, 409, "FILE_ATTACHED").await;
    let r = app
        .delete_as(
            &alice,
            &format!("/api/messages/{}", message["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        download(&app, &alice, pic["fileUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
    assert_eq!(
        stored_keys(&app).await,
        vec![bobs["key"].as_str().unwrap().to_owned()]
    );
}

#[tokio::test]
async fn a_public_channel_shares_its_files_with_every_reader_and_a_deleted_channel_takes_them() {
    let app = TestApp::spawn().await;
    let alice = app.signup("poster").await;
    let reader = app.signup("reader").await;
    let room = app.create_channel(&alice, "open", false).await;
    let file = upload(&app, &alice, "notes.txt", b"for everyone").await;
    let r = app
        .send_as(
            Method::POST,
            &alice.token,
            &format!("/api/channels/{room}/messages"),
            &json!({"content": "notes", "attachments": [file["key"]]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = download(&app, &reader, file["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.unwrap(), "for everyone".as_bytes());
    assert_eq!(
        app.delete_as(&alice, &format!("/api/channels/{room}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        download(&app, &alice, file["fileUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn an_upload_whose_bytes_cannot_be_stored_answers_503_and_leaves_no_row() {
    let dir = std::sync::Arc::new(crate::helpers::TempDir::new());
    let uploads = dir.0.join("blocked");
    let mut vars = crate::helpers::test_vars(&dir);
    vars.insert("STORAGE_URL".into(), uploads.display().to_string());
    let app = TestApp::spawn_in(dir.clone(), vars).await;
    let u = app.signup("unlucky").await;
    // The storage directory turns into a file: every write below it fails.
    std::fs::remove_dir_all(&uploads).unwrap();
    std::fs::write(&uploads, b"in the way").unwrap();
    let r = upload_parts(&app, &u, "/api/upload", &[part("file", "a.txt", b"lost?")]).await;
    assert_error(r, 503, "SERVICE_UNAVAILABLE").await;
    let pending = app
        .state
        .store
        .delete_stale_files(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(pending.is_empty(), "no row left behind: {pending:?}");
    // And it heals by itself once the storage is back.
    std::fs::remove_file(&uploads).unwrap();
    std::fs::create_dir_all(&uploads).unwrap();
    upload(&app, &u, "a.txt", b"kept").await;
}

#[tokio::test]
async fn the_sweep_removes_uploads_a_crash_left_pending() {
    use chai_tapri::models::file::{FileKey, FileRow};
    use chai_tapri::models::file_type::FileType;
    let app = TestApp::spawn().await;
    let u = app.signup("crasher").await;
    let kept = upload(&app, &u, "kept.txt", b"kept").await;
    let key = FileKey::mint(FileType::Txt);
    let row = FileRow {
        id: key.id(),
        key: key.to_string(),
        thumbnail_key: None,
        uploader_id: u.id.parse().unwrap(),
        file_name: "half.txt".into(),
        file_type: "text/plain".into(),
        file_size: 4,
        state: FileRow::PENDING.into(),
        message_id: None,
        channel_id: None,
        created_at: chrono::Utc::now() - chrono::Duration::hours(2),
    };
    app.state.store.insert_file(&row).await.unwrap();
    app.state
        .storage
        .put(&row.key, bytes::Bytes::from_static(b"half"))
        .await
        .unwrap();
    assert_eq!(stored_keys(&app).await.len(), 2);
    assert_eq!(
        chai_tapri::services::files::sweep(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stored_keys(&app).await,
        vec![kept["key"].as_str().unwrap().to_owned()]
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by the second pass (scripts/test.sh)"]
async fn a_file_uploaded_through_one_node_is_served_by_another() {
    crate::helpers::require_database_url();
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_in(a.dir.clone(), a.vars.clone()).await;
    let u = a.signup("roamer").await;
    let image = png(700, 700);
    let file = upload(&a, &u, "far.png", &image).await;
    let r = download(&b, &u, file["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), image);
    assert_eq!(
        download(&b, &u, file["thumbnailUrl"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let r = b
        .send_as(
            Method::DELETE,
            &u.token,
            "/api/upload",
            &json!({"key": file["key"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        download(&a, &u, file["fileUrl"].as_str().unwrap())
            .await
            .status(),
        404
    );
}

/// A moto server of one test's own, killed when dropped.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    /// Starts moto (from the second pass's venv) on `port`, or on a free port for 0, and
    /// waits (at most 20 s) until it accepts connections.
    async fn start(port: u16) -> Self {
        let binary = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/s3/.venv/bin/moto_server"
        );
        let port = if port == 0 {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            port
        };
        let child = std::process::Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server from tests/s3/.venv (scripts/s3.sh installs it)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(tokio::time::Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, port }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs the S3-compatible test server's venv: run by the second pass (scripts/test.sh)"]
async fn with_s3_gone_uploads_and_downloads_answer_503_and_heal_when_it_is_back() {
    assert!(
        crate::helpers::test_s3_endpoint().is_some(),
        "TEST_S3_ENDPOINT must be set (the second pass sets it)"
    );
    let moto = Moto::start(0).await;
    crate::helpers::create_bucket(&moto.endpoint(), "outage");
    let dir = std::sync::Arc::new(crate::helpers::TempDir::new());
    let mut vars = crate::helpers::test_vars(&dir);
    vars.insert(
        "STORAGE_URL".into(),
        format!("s3://outage?endpoint={}&region=us-east-1", moto.endpoint()),
    );
    let app = TestApp::spawn_in(dir.clone(), vars).await;
    let u = app.signup("outage").await;
    let kept = upload(&app, &u, "before.txt", b"stored before").await;

    let port = moto.stop();
    let r = upload_parts(
        &app,
        &u,
        "/api/upload",
        &[part("file", "during.txt", b"lost?")],
    )
    .await;
    assert_error(r, 503, "SERVICE_UNAVAILABLE").await;
    let r = download(&app, &u, kept["fileUrl"].as_str().unwrap()).await;
    assert_error(r, 503, "SERVICE_UNAVAILABLE").await;
    let pending = app
        .state
        .store
        .delete_stale_files(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(pending.is_empty(), "no row left behind: {pending:?}");

    // Back (moto keeps nothing across a restart: the bucket is made again), and the same
    // server stores and serves again without a restart of its own.
    let moto = Moto::start(port).await;
    crate::helpers::create_bucket(&moto.endpoint(), "outage");
    let file = upload(&app, &u, "after.txt", b"stored after").await;
    let r = download(&app, &u, file["fileUrl"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.unwrap(), "stored after".as_bytes());
}
