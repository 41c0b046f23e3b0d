//! SQLite statements that run where their rows are built: history reads, and the group
//! commit's batches of messages.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every row back to
//! the runtime through a channel: a page of 50 messages was 50 wake-ups, and each row's
//! values were copied on one thread and freed on another. Here a few reader threads, each
//! with a read connection of its own, take reads from one queue: a read runs its statement
//! and builds its rows on one thread and hands back the finished result. A reader that
//! finds more reads queued takes the next without sleeping, so under load a read costs no
//! thread wake-up at all (the runtime's blocking pool woke a thread for every task); WAL
//! mode lets these readers see every committed write at once.
//!
//! For the same reason a batch of messages is written on one writer thread of its own with
//! a read-write connection: through sqlx each statement of the batch was a round trip
//! between two threads (two context switches on one core), and at a small in-flight window
//! those switches cost more than SQLite's work. Other writes keep sqlx's pool; SQLite takes
//! one writer at a time whichever connection it is.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::StoreError;
use super::sqlite::{BUSY_TIMEOUT, CACHE_SIZE, MMAP_SIZE};

/// One thread's state: the file, whether it writes, and its connection once opened.
struct Worker {
    path: PathBuf,
    writes: bool,
    conn: Option<Connection>,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// Threads with a connection each to one database file, taking statements from one queue.
/// They stop when this is dropped.
#[derive(Debug)]
pub(super) struct Threads {
    jobs: flume::Sender<Job>,
}

impl Threads {
    /// `threads` readers of the file at `path` (connections are opened on first use).
    ///
    /// # Errors
    /// A thread cannot be started.
    pub(super) fn start(path: &Path, threads: u32) -> std::io::Result<Self> {
        Self::spawn(path, threads, false)
    }

    /// One writer thread of the file at `path`, whose connection may write.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(super) fn start_writer(path: &Path) -> std::io::Result<Self> {
        Self::spawn(path, 1, true)
    }

    fn spawn(path: &Path, threads: u32, writes: bool) -> std::io::Result<Self> {
        let (jobs, queue) = flume::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let mut worker = Worker {
                path: path.to_owned(),
                writes,
                conn: None,
            };
            let name = if writes {
                "sqlite-write".to_owned()
            } else {
                format!("sqlite-read-{i}")
            };
            std::thread::Builder::new().name(name).spawn(move || {
                while let Ok(job) = queue.recv() {
                    // A statement that panicked loses its connection, not the thread.
                    if catch_unwind(AssertUnwindSafe(|| job(&mut worker))).is_err() {
                        worker.conn = None;
                    }
                }
            })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `read` on one of the threads' connections. A connection whose statement failed is
    /// closed, not kept: the next read on that thread opens a fresh one (so once a fault
    /// clears, reads heal by themselves).
    ///
    /// # Errors
    /// The read's own error; the file cannot be opened; a panic in `read`.
    pub(super) async fn run<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |worker: &mut Worker| {
            let _ = answer.send(worker.read(read));
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::ReadTask("the SQLite threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::ReadTask("the read panicked".into()))?
            .map_err(StoreError::from)
    }
}

impl Worker {
    fn read<T>(
        &mut self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => open(&self.path, self.writes)?,
        };
        let result = read(&conn);
        if result.is_ok() {
            self.conn = Some(conn);
        }
        result
    }
}

/// A connection with the settings of the write pool's connections (busy timeout, foreign
/// keys, full sync, page cache, memory-mapped reads); one that does not write may only
/// read, and reads without a memory map.
fn open(path: &Path, writes: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if writes {
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    } else {
        conn.pragma_update(None, "query_only", true)?;
    }
    // A bound value never changes these statements' plans (primary keys and the
    // `(channel_id, id)` index); without the stability guarantee SQLite compiled a page's
    // statement again on every run, a fifth of a page's CPU.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "cache_size", CACHE_SIZE)?;
    // A reader's first read after another connection's write drops its whole map (a
    // `munmap`, then an `mmap` again, with a TLB flush on every core), which cost a
    // reaction's two reads a tenth of its CPU; without it, read-only history pages cost the
    // same (docs/performance.md, "A reaction's cost").
    if writes {
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use axum::http::StatusCode;

    fn one(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("SELECT 1", [], |row| row.get(0))
    }

    fn status(e: StoreError) -> StatusCode {
        AppError::from(e).status_and_code().0
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_503_and_the_next_read_heals() {
        let dir = std::env::temp_dir().join(format!("chai-read-{}", uuid::Uuid::now_v7()));
        let readers = Threads::start(&dir.join("r.db"), 1).unwrap();
        let e = readers.run(one).await.unwrap_err();
        assert_eq!(status(e), StatusCode::SERVICE_UNAVAILABLE);

        std::fs::create_dir_all(&dir).unwrap();
        Connection::open(dir.join("r.db")).unwrap();
        assert_eq!(readers.run(one).await.unwrap(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A new database file and one reader thread of it.
    fn one_reader() -> (PathBuf, Threads) {
        let dir = std::env::temp_dir().join(format!("chai-read-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Connection::open(dir.join("r.db")).unwrap();
        let readers = Threads::start(&dir.join("r.db"), 1).unwrap();
        (dir, readers)
    }

    #[tokio::test]
    async fn a_read_that_panics_is_a_500_and_its_thread_reads_on() {
        let (dir, readers) = one_reader();
        let e = readers
            .run(|_| -> rusqlite::Result<i64> { panic!("a bug in a read") })
            .await
            .unwrap_err();
        assert_eq!(status(e), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            readers.run(one).await.unwrap(),
            1,
            "the one thread still reads"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_read_connection_refuses_to_write() {
        let (dir, readers) = one_reader();
        let e = readers
            .run(|conn| conn.execute("CREATE TABLE t (x INTEGER)", []))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Read(_)), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
