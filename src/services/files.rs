//! Files (docs/api.md, Files): uploads judged by their bytes, stored row-then-bytes and
//! answered only when both are in; downloads for the uploader and for readers of a channel
//! whose message attaches the file; deletes row-then-bytes.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::AppError;
use crate::models::file::{FileKey, FileName, FileRow, FileView, KeyKind};
use crate::models::file_type::{self, FileType};
use crate::models::{metadata, thumbnail};
use crate::services::Services;
use crate::services::auth::AuthUser;
use crate::services::channels;

/// How old a `pending` row must be before the sweep takes it for a crashed upload.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);
/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Turns to judge an upload (read, strip, thumbnail): one per core.
static JUDGES: OnceLock<Semaphore> = OnceLock::new();

/// A part's bytes spooled to a temporary file as they arrived; the file is removed when
/// this is dropped, whatever happened to the request.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    size: u64,
}

impl Spool {
    /// A fresh, empty spool file under the system's temporary folder.
    ///
    /// # Errors
    /// The file cannot be created (answered 503).
    pub async fn create() -> Result<(Self, tokio::fs::File), AppError> {
        let dir = std::env::temp_dir().join("chai-tapri-uploads");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(spool_failed)?;
        let path = dir.join(Uuid::now_v7().to_string());
        let file = tokio::fs::File::create(&path).await.map_err(spool_failed)?;
        Ok((Self { path, size: 0 }, file))
    }

    /// Records that `n` more bytes were written.
    pub fn grew(&mut self, n: u64) {
        self.size += n;
    }

    /// Bytes spooled.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The answer when the spool folder cannot be written (a full disk): 503.
pub fn spool_failed(e: impl std::fmt::Display) -> AppError {
    AppError::ServiceUnavailable(format!("upload spool: {e}"))
}

/// One file of an upload request, received whole.
#[derive(Debug)]
pub struct Incoming {
    /// The field to name in an error (`file`, or `files[i]`).
    pub field: String,
    /// The part's file name, checked (`None`: the part had none).
    pub name: Option<FileName>,
    /// Its bytes.
    pub spool: Spool,
}

/// An upload judged and ready to store: its bytes (less their metadata) in its spool.
struct Prepared {
    file_type: FileType,
    name: FileName,
    spool: Spool,
    thumbnail: Option<thumbnail::Thumbnail>,
}

/// Judges a file by its bytes: its type (415 otherwise); for an image, its thumbnail, and
/// its EXIF/XMP cut out of the spool, on a blocking thread. Only the thumbnail stays in
/// memory after.
async fn prepare(incoming: Incoming) -> Result<Prepared, AppError> {
    let Incoming {
        field,
        name,
        mut spool,
    } = incoming;
    if spool.size == 0 {
        return Err(AppError::field(&field, "must not be empty"));
    }
    let path = spool.path.clone();
    // One image in memory per core at most: decoding more at once would not finish sooner,
    // only hold more (a 10 MB image is about 35 MB while it is judged).
    let _turn = JUDGES
        .get_or_init(|| {
            Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        })
        .acquire()
        .await
        .map_err(AppError::internal)?;
    let judged = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut file = std::fs::File::open(&path)?;
        let Some(ty) = file_type::detect(&mut file)? else {
            return Ok(None);
        };
        if !ty.is_image() {
            return Ok(Some((ty, None, None)));
        }
        let bytes = std::fs::read(&path)?;
        let (image, cut_size) = match metadata::strip(ty, &bytes) {
            Cow::Owned(cut) => {
                std::fs::write(&path, &cut)?;
                let size = cut.len() as u64;
                (cut, Some(size))
            }
            Cow::Borrowed(_) => (bytes, None),
        };
        Ok(Some((ty, thumbnail::make(ty, &image), cut_size)))
    })
    .await
    .map_err(AppError::internal)?
    .map_err(spool_failed)?;
    let Some((file_type, thumbnail, cut_size)) = judged else {
        return Err(AppError::UnsupportedFileType);
    };
    if let Some(size) = cut_size {
        spool.size = size;
    }
    Ok(Prepared {
        file_type,
        name: name.unwrap_or_else(|| FileName::fallback(file_type)),
        spool,
        thumbnail,
    })
}

/// Stores one prepared file: row `pending`, bytes, row `ready`. Anything failing on the
/// way removes what was written, so neither an orphan row nor an orphan object remains.
async fn commit(
    services: &Services,
    auth: &AuthUser,
    prepared: Prepared,
) -> Result<FileRow, AppError> {
    let key = FileKey::mint(prepared.file_type);
    let thumbnail = prepared
        .thumbnail
        .map(|t| (key.thumbnail(t.file_type).to_string(), Bytes::from(t.bytes)));
    let mut row = FileRow {
        id: key.id(),
        key: key.to_string(),
        thumbnail_key: thumbnail.as_ref().map(|(k, _)| k.clone()),
        uploader_id: auth.user.id,
        file_name: prepared.name.as_str().to_owned(),
        file_type: prepared.file_type.mime().to_owned(),
        file_size: i64::try_from(prepared.spool.size).unwrap_or(i64::MAX),
        state: FileRow::PENDING.to_owned(),
        message_id: None,
        channel_id: None,
        created_at: Utc::now(),
    };
    services.store.insert_file(&row).await?;
    let stored = async {
        services
            .storage
            .put_file(&row.key, &prepared.spool.path)
            .await?;
        if let Some((key, bytes)) = &thumbnail {
            services.storage.put(key, bytes.clone()).await?;
        }
        if !services.store.mark_file_ready(row.id).await? {
            // The sweep took the row meanwhile (an upload slower than an hour).
            return Err(AppError::ServiceUnavailable(
                "the upload's row was swept before it completed".into(),
            ));
        }
        Ok::<(), AppError>(())
    }
    .await;
    if let Err(e) = stored {
        undo(services, &row).await;
        return Err(e);
    }
    row.state = FileRow::READY.to_owned();
    Ok(row)
}

/// Removes a failed upload's bytes, then its `pending` row (in this order a crash between
/// the two leaves the row for the sweep, which removes whatever bytes remain).
async fn undo(services: &Services, row: &FileRow) {
    services.storage.delete_all(&row.storage_keys()).await;
    if let Err(e) = services.store.delete_unattached_file(row.id).await {
        tracing::warn!(key = row.key, error = %e, "could not remove a failed upload's row; the sweep will");
    }
}

/// Stores every file of one request, in order; all or nothing. Each file is judged before
/// any is stored, so the first failing one decides the answer and nothing is left behind.
///
/// # Errors
/// `VALIDATION_ERROR` (empty file), `UNSUPPORTED_FILE_TYPE`, 503 when the database or the
/// storage fails.
pub async fn upload(
    services: &Services,
    auth: &AuthUser,
    files: Vec<Incoming>,
) -> Result<Vec<FileView>, AppError> {
    let mut prepared = Vec::with_capacity(files.len());
    for incoming in files {
        prepared.push(prepare(incoming).await?);
    }
    let mut stored: Vec<FileRow> = Vec::with_capacity(prepared.len());
    for file in prepared {
        match commit(services, auth, file).await {
            Ok(row) => stored.push(row),
            Err(e) => {
                for row in &stored {
                    remove(services, row).await;
                }
                return Err(e);
            }
        }
    }
    Ok(stored.iter().map(FileView::from).collect())
}

/// Removes a stored file: row first, then its bytes.
async fn remove(services: &Services, row: &FileRow) {
    match services.store.delete_unattached_file(row.id).await {
        Ok(_) => services.storage.delete_all(&row.storage_keys()).await,
        Err(e) => tracing::warn!(key = row.key, error = %e, "could not remove a stored file"),
    }
}

/// The row a client's key names; `FILE_NOT_FOUND` for a key the server did not mint, a row
/// not (yet) ready, or a key that is not this row's (another extension).
async fn load(services: &Services, raw: &str) -> Result<(FileKey, FileRow), AppError> {
    let key = FileKey::parse(raw).ok_or(AppError::FileNotFound)?;
    let row = services
        .store
        .fetch_file(key.id())
        .await?
        .filter(FileRow::is_ready)
        .ok_or(AppError::FileNotFound)?;
    let text = key.to_string();
    let matches = match key.kind() {
        KeyKind::Original(_) => row.key == text,
        KeyKind::Thumbnail(_) => row.thumbnail_key.as_deref() == Some(text.as_str()),
    };
    if !matches {
        return Err(AppError::FileNotFound);
    }
    Ok((key, row))
}

/// Deletes a file its caller uploaded and no message attaches; answers its key.
///
/// # Errors
/// `FILE_NOT_FOUND`, `NOT_FILE_OWNER`, `FILE_ATTACHED`.
pub async fn delete(services: &Services, auth: &AuthUser, raw: &str) -> Result<String, AppError> {
    let (key, row) = load(services, raw).await?;
    if !matches!(key.kind(), KeyKind::Original(_)) {
        // A thumbnail goes with its image.
        return Err(AppError::FileNotFound);
    }
    if row.uploader_id != auth.user.id {
        return Err(AppError::NotFileOwner);
    }
    if row.message_id.is_some() {
        return Err(AppError::FileAttached);
    }
    if !services.store.delete_unattached_file(row.id).await? {
        // Attached (or deleted) between the read and the delete.
        return match services.store.fetch_file(row.id).await? {
            Some(now) if now.message_id.is_some() => Err(AppError::FileAttached),
            _ => Err(AppError::FileNotFound),
        };
    }
    services.storage.delete_all(&row.storage_keys()).await;
    Ok(row.key)
}

/// A file the caller may read: the storage key to serve, its type and size, its name.
#[derive(Debug)]
pub struct Readable {
    /// The storage key (the original's or its thumbnail's).
    pub key: String,
    /// The type of those bytes.
    pub file_type: FileType,
    /// Their size.
    pub size: u64,
    /// The name to give a download.
    pub name: FileName,
}

/// Opens a file for its uploader, or for anyone who may read a channel with a message
/// attaching it; everyone else gets `FILE_NOT_FOUND`, as for a key that does not exist.
///
/// # Errors
/// `FILE_NOT_FOUND`; 503 when the database or the storage fails.
pub async fn open(services: &Services, auth: &AuthUser, raw: &str) -> Result<Readable, AppError> {
    let (key, row) = load(services, raw).await?;
    if row.uploader_id != auth.user.id {
        let Some(channel) = row.channel_id else {
            return Err(AppError::FileNotFound);
        };
        match channels::load(services, channel, auth.user.id).await {
            Ok(channel) if channel.check_visible().is_ok() => {}
            Ok(_) | Err(AppError::ChannelNotFound) => return Err(AppError::FileNotFound),
            Err(e) => return Err(e),
        }
    }
    let name =
        FileName::parse(&row.file_name).unwrap_or_else(|_| FileName::fallback(key.file_type()));
    Ok(match key.kind() {
        KeyKind::Original(ty) => Readable {
            size: u64::try_from(row.file_size).unwrap_or(0),
            key: row.key,
            file_type: ty,
            name,
        },
        KeyKind::Thumbnail(ty) => {
            let thumb = key.to_string();
            Readable {
                size: services.storage.size(&thumb).await?,
                key: thumb,
                file_type: ty,
                name,
            }
        }
    })
}

/// The attachments of a send: each key the sender's own, ready, unattached file, listed
/// once. Answers the file objects (in the order given) as the message stores them, and
/// their ids for the write to link.
///
/// # Errors
/// `VALIDATION_ERROR` on `attachments` naming the keys at fault.
pub async fn attachments(
    services: &Services,
    auth: &AuthUser,
    keys: &[String],
) -> Result<(String, Vec<Uuid>), AppError> {
    if keys.is_empty() {
        return Ok(("[]".to_owned(), Vec::new()));
    }
    let mut ids = Vec::with_capacity(keys.len());
    let mut bad = Vec::new();
    for raw in keys {
        match FileKey::parse(raw).filter(|k| matches!(k.kind(), KeyKind::Original(_))) {
            Some(key) if ids.contains(&key.id()) => {
                return Err(AppError::field(
                    "attachments",
                    format!("lists {raw} more than once"),
                ));
            }
            Some(key) => ids.push(key.id()),
            None => bad.push(raw.as_str()),
        }
    }
    let rows = services.store.list_files_by_ids(&ids).await?;
    let mut views = Vec::with_capacity(ids.len());
    for raw in keys {
        let Some(row) = rows.iter().find(|r| &r.key == raw) else {
            if !bad.contains(&raw.as_str()) {
                bad.push(raw);
            }
            continue;
        };
        if !row.is_ready() || row.uploader_id != auth.user.id {
            bad.push(raw);
        } else if row.message_id.is_some() {
            return Err(AppError::field(
                "attachments",
                format!("{raw} is already attached to another message"),
            ));
        } else {
            views.push(FileView::from(row));
        }
    }
    if !bad.is_empty() {
        return Err(AppError::field(
            "attachments",
            format!("unknown file keys: {}", bad.join(", ")),
        ));
    }
    let json = serde_json::to_string(&views).map_err(AppError::internal)?;
    Ok((json, ids))
}

/// Removes the rows of uploads a crash left `pending` for over [`STALE_AFTER`], then their
/// bytes; returns how many.
///
/// # Errors
/// The database could not be reached.
pub async fn sweep(services: &Services) -> Result<usize, AppError> {
    let before = Utc::now()
        - chrono::Duration::from_std(STALE_AFTER).unwrap_or_else(|_| chrono::Duration::hours(1));
    let stale = services.store.delete_stale_files(before).await?;
    for row in &stale {
        services.storage.delete_all(&row.storage_keys()).await;
    }
    Ok(stale.len())
}

/// Runs [`sweep`] every [`SWEEP_EVERY`] for as long as the services live.
pub fn spawn_sweeper(services: &Services) {
    services.every(SWEEP_EVERY, |services| async move {
        match sweep(&services).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "swept uploads left pending by a crash"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed; will retry"),
        }
    });
}
