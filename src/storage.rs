//! File bytes: a local directory (the default) or S3-compatible object storage, both behind
//! the `object_store` crate's one trait. Keys come from [`crate::models::file::FileKey`]
//! only, so a client's string is never joined to a path here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, GetResultPayload, ObjectStore,
    ObjectStoreExt, PutPayload, RetryConfig,
};
use tokio::io::AsyncWriteExt;

/// Part size of a streamed upload to S3, which takes no smaller part but the last.
const S3_PART_SIZE: usize = 5 * 1024 * 1024;
/// Part size of a streamed write to a local directory (no minimum there: a small buffer
/// keeps memory low while many uploads run).
const LOCAL_PART_SIZE: usize = 256 * 1024;

/// Why the storage could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `STORAGE_URL` names something this server cannot use.
    #[error("STORAGE_URL: {0}")]
    Config(String),
    /// The directory could not be created.
    #[error("cannot create the storage directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The object is not there.
    #[error("object not found")]
    NotFound,
    /// The storage refused or could not be reached.
    #[error("storage: {0}")]
    Unavailable(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<StorageError> for crate::error::AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::FileNotFound,
            other => Self::ServiceUnavailable(other.to_string()),
        }
    }
}

/// Where the bytes go.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    part_size: usize,
    /// The directory of a local storage: written objects are fsynced there (the crate
    /// renames them into place but does not sync them).
    local_root: Option<PathBuf>,
}

/// Part of an object, streamed.
pub struct Download {
    /// The bytes of the range asked for.
    pub body: BoxStream<'static, Result<Bytes, object_store::Error>>,
    /// The whole object's size.
    pub size: u64,
}

impl Storage {
    /// Opens the storage `STORAGE_URL` names: a path or `file:///…` (the directory is
    /// created), or `s3://bucket?endpoint=…&region=…` (credentials from the usual `AWS_*`
    /// variables).
    ///
    /// # Errors
    /// A URL this server cannot use, or a directory that cannot be created.
    pub fn open(url: &str) -> Result<Self, StorageError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            return Ok(Self {
                inner: Arc::new(s3(rest)?),
                part_size: S3_PART_SIZE,
                local_root: None,
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let local = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StorageError::Config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(local),
            part_size: LOCAL_PART_SIZE,
            local_root: Some(PathBuf::from(dir)),
        })
    }

    /// On a local directory, makes a written object durable: the file's data, then the
    /// directory entry the rename made. An acknowledged upload survives a power loss, as an
    /// acknowledged message does.
    async fn sync(&self, key: &str) -> Result<(), StorageError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let file = root.join(key);
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&file)?.sync_all()?;
            std::fs::File::open(&root)?.sync_all()
        })
        .await
        .map_err(|e| StorageError::Unavailable(e.to_string()))??;
        Ok(())
    }

    /// Stores `bytes` under `key` (replacing nothing: keys are fresh).
    ///
    /// # Errors
    /// The storage refused or could not be reached.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.inner
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        self.sync(key).await
    }

    /// Streams a local file to `key` in parts, holding at most one part in memory.
    ///
    /// # Errors
    /// The file cannot be read, or the storage refused or could not be reached.
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), StorageError> {
        let mut source = tokio::fs::File::open(file).await?;
        let mut writer =
            BufWriter::with_capacity(self.inner.clone(), Path::from(key), self.part_size);
        match tokio::io::copy(&mut source, &mut writer).await {
            Ok(_) => {
                writer.shutdown().await?;
                self.sync(key).await
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e.into())
            }
        }
    }

    /// The size of the object under `key`.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], or the storage could not be reached.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        Ok(self.inner.head(&Path::from(key)).await?.size)
    }

    /// Bytes `range` (all of them for `None`) of the object under `key`.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], or the storage could not be reached.
    pub async fn get(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Download, StorageError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.inner.get_opts(&Path::from(key), options).await?;
        let body = match result.payload {
            GetResultPayload::File(file, _) => file_chunks(file, result.range),
            GetResultPayload::Stream(stream) => stream,
        };
        Ok(Download {
            size: result.meta.size,
            body,
        })
    }

    /// Every key stored, in no particular order (for audits and tests; a bucket shared with
    /// other data lists that too).
    ///
    /// # Errors
    /// The storage could not be reached.
    pub async fn keys(&self) -> Result<Vec<String>, StorageError> {
        use futures_util::TryStreamExt;
        let listed: Vec<object_store::ObjectMeta> = self.inner.list(None).try_collect().await?;
        Ok(listed.into_iter().map(|m| m.location.to_string()).collect())
    }

    /// Removes the object under `key`; one already gone is not an error.
    ///
    /// # Errors
    /// The storage could not be reached.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes each key, logging (not failing on) the ones that could not be removed: their
    /// rows are gone already, so at worst bytes nobody can reach stay behind.
    pub async fn delete_all(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.delete(key).await {
                tracing::warn!(key, error = %e, "could not remove a file's bytes");
            }
        }
    }
}

/// Bytes `range` of a local file in chunks of [`READ_CHUNK`], one blocking read each (the
/// crate's own stream reads 8 KiB per blocking task: measured, the hand-offs between threads
/// cost more than the reads).
fn file_chunks(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    use futures_util::StreamExt;
    let state = (Some(file), range.start, range.end);
    futures_util::stream::try_unfold(state, |(file, at, end)| async move {
        let Some(file) = file.filter(|_| at < end) else {
            return Ok(None);
        };
        let want = (end - at).min(READ_CHUNK);
        let read = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0; usize::try_from(want).unwrap_or(0)];
            file.read_exact_at(&mut buf, at).map(|()| (file, buf))
        })
        .await;
        let (file, chunk) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => return Err(local_error(e)),
            Err(e) => return Err(local_error(e)),
        };
        Ok(Some((Bytes::from(chunk), (Some(file), at + want, end))))
    })
    .boxed()
}

/// Bytes read from a local file per blocking task.
const READ_CHUNK: u64 = 256 * 1024;

fn local_error(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    }
}

/// An S3-compatible bucket: `bucket?endpoint=…&region=…`. Path-style requests when an
/// endpoint is given (MinIO, moto, Ceph); plain HTTP only to an `http://` endpoint. Retries
/// are few and short, so a storage outage answers 503 within seconds, not minutes.
fn s3(rest: &str) -> Result<object_store::aws::AmazonS3, StorageError> {
    // reqwest is built without a default TLS provider: rustls on `ring` is installed here
    // (once; a second install is refused harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bucket = bucket.trim_end_matches('/');
    if bucket.is_empty() || bucket.contains('/') {
        return Err(StorageError::Config(
            "an S3 URL is s3://bucket?endpoint=…&region=…".into(),
        ));
    }
    // Client options first: setting them later would replace `allow_http`.
    let mut builder = AmazonS3Builder::from_env()
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60)),
        )
        .with_bucket_name(bucket);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "endpoint" => {
                builder = builder
                    .with_endpoint(value)
                    .with_allow_http(value.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            "region" => builder = builder.with_region(value),
            other => {
                return Err(StorageError::Config(format!(
                    "unknown S3 option {other:?} (endpoint and region are known)"
                )));
            }
        }
    }
    builder
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        })
        .build()
        .map_err(|e| StorageError::Config(e.to_string()))
}
