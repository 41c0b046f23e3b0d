//! Logs: the console (pretty in development, JSON in production) and, always, JSON lines
//! in `LOG_DIR/combined.log` (everything at `LOG_LEVEL`) and `LOG_DIR/error.log` (errors).
//!
//! The live files keep fixed names; at midnight UTC each is renamed
//! `combined.YYYY-MM-DD.log` / `error.YYYY-MM-DD.log` and a new one is opened, and only the
//! newest `LOG_MAX_FILES` dated files are kept (`LOG_ROTATION=off` leaves renaming to
//! logrotate). SIGHUP makes both files reopen their live names. (tracing-appender's daily roller puts the
//! date in the live name, which operators' tooling of the original does not expect; its
//! non-blocking writer is used on top of ours so requests never wait on the disk.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{NaiveDate, Utc};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat};

/// A file with a fixed live name that is renamed with its date at midnight UTC.
#[derive(Debug)]
pub struct DailyFile {
    dir: PathBuf,
    stem: &'static str,
    max_files: usize,
    file: File,
    day: NaiveDate,
    /// Length of the file after the last whole line written.
    len: u64,
    /// Lines that could not be written since the last one that could.
    lost: u64,
    /// Renames at midnight UTC (else logrotate does).
    rotate_daily: bool,
    /// The [`reopen`] request last acted on.
    generation: u64,
}

/// Bumped by [`reopen`]; each file reopens its live name before its next line once it sees
/// a new value.
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Makes every log file reopen its live name before its next line (SIGHUP): after logrotate
/// renamed a file, lines go on into the renamed one until then, and into the new one after —
/// none is lost.
pub fn reopen() {
    REOPEN.fetch_add(1, Ordering::SeqCst);
}

impl DailyFile {
    /// Opens (appending) `dir/<stem>.log`, rotating first if it was last written on an
    /// earlier day.
    ///
    /// # Errors
    /// The folder or file cannot be created.
    pub fn open(
        dir: &Path,
        stem: &'static str,
        max_files: usize,
        rotate_daily: bool,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let live = dir.join(format!("{stem}.log"));
        let today = Utc::now().date_naive();
        let day = fs::metadata(&live)
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<Utc>::from(t).date_naive())
            .unwrap_or(today);
        let file = OpenOptions::new().create(true).append(true).open(&live)?;
        let len = file.metadata()?.len();
        let mut this = Self {
            dir: dir.to_owned(),
            stem,
            max_files,
            file,
            day,
            len,
            lost: 0,
            rotate_daily,
            generation: REOPEN.load(Ordering::SeqCst),
        };
        this.rotate_if_needed(today)?;
        Ok(this)
    }

    fn live_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.stem))
    }

    /// Reopens the live name when [`reopen`] was called since the last line; with daily
    /// rotation, renames the live file with its day and opens a fresh one when `today` is
    /// later.
    fn rotate_if_needed(&mut self, today: NaiveDate) -> io::Result<()> {
        let generation = REOPEN.load(Ordering::Relaxed);
        if generation != self.generation {
            self.file.flush()?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.live_path())?;
            self.len = self.file.metadata()?.len();
            self.generation = generation;
        }
        if !self.rotate_daily || today <= self.day {
            return Ok(());
        }
        self.file.flush()?;
        let dated = self
            .dir
            .join(format!("{}.{}.log", self.stem, self.day.format("%Y-%m-%d")));
        if fs::metadata(self.live_path()).is_ok_and(|m| m.len() > 0) {
            fs::rename(self.live_path(), &dated)?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.live_path())?;
        self.len = self.file.metadata()?.len();
        self.day = today;
        self.prune()
    }

    /// Deletes the oldest dated files beyond `max_files`.
    fn prune(&self) -> io::Result<()> {
        let prefix = format!("{}.", self.stem);
        let mut dated: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&prefix)
                        && n.ends_with(".log")
                        && n.len() == prefix.len() + "YYYY-MM-DD.log".len()
                })
            })
            .collect();
        dated.sort();
        let excess = dated.len().saturating_sub(self.max_files);
        for old in &dated[..excess] {
            fs::remove_file(old)?;
        }
        Ok(())
    }

    /// Test hook: behaves as if the clock had reached `today`.
    ///
    /// # Errors
    /// Renaming or pruning failed.
    pub fn rotate_for(&mut self, today: NaiveDate) -> io::Result<()> {
        self.rotate_if_needed(today)
    }
}

impl Write for DailyFile {
    /// Writes one whole line or nothing. A line the disk cannot take (full, read-only,
    /// failing) is cut back out, so the file never holds half a line run into the next;
    /// the console still has it. The first loss and the recovery are said on stderr.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self
            .rotate_if_needed(Utc::now().date_naive())
            .and_then(|()| self.file.write_all(buf));
        match written {
            Ok(()) => {
                self.len += u64::try_from(buf.len()).unwrap_or(u64::MAX);
                if self.lost > 0 {
                    eprintln!(
                        "chai-tapri: {} is writable again; {} log lines were lost from it",
                        self.live_path().display(),
                        self.lost
                    );
                    self.lost = 0;
                }
                Ok(buf.len())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                if self.lost == 0 {
                    eprintln!(
                        "chai-tapri: cannot write to {}: {e}; logging to the console only until \
                         it can",
                        self.live_path().display()
                    );
                }
                self.lost += 1;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Reopens the log files on every SIGHUP (what logrotate's `postrotate` sends), for the
/// life of the process. Without this, SIGHUP would end the process.
///
/// # Errors
/// The signal handler cannot be installed.
#[cfg(unix)]
pub fn reopen_on_sighup() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reopen();
            tracing::info!("SIGHUP: log files reopened");
        }
    });
    Ok(())
}

/// Keeps the background log writers alive; dropping it flushes them.
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// One JSON object per line: timestamp, level, message, fields, and the request span's
/// fields (request id, method, route, user id).
fn json_layer<W>(writer: W, ansi: bool) -> impl Layer<Registry> + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(ansi)
        .with_writer(writer)
}

/// Installs the global subscriber: console + `combined.log` + `error.log`.
///
/// # Errors
/// The log folder or files cannot be created.
pub fn init(config: &LogConfig) -> io::Result<LogGuard> {
    let level = LevelFilter::from_level(config.level);
    let combined = DailyFile::open(
        &config.dir,
        "combined",
        config.max_files,
        config.rotate_daily,
    )?;
    let errors = DailyFile::open(&config.dir, "error", config.max_files, config.rotate_daily)?;
    let (combined, g1) = tracing_appender::non_blocking(combined);
    let (errors, g2) = tracing_appender::non_blocking(errors);
    // Everything at LOG_LEVEL, except chatty dependencies, which stay at warn at most.
    let quiet = LevelFilter::WARN.min(level);
    let directives = format!("{level},sqlx={quiet},hyper={quiet},tower_http={quiet},h2={quiet}");
    let filter = || EnvFilter::builder().parse_lossy(&directives);
    let console = match config.format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(io::stdout)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => json_layer(io::stdout, false).with_filter(filter()).boxed(),
    };
    let layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![
        console,
        json_layer(combined, false).with_filter(filter()).boxed(),
        json_layer(errors, false)
            .with_filter(LevelFilter::ERROR)
            .boxed(),
    ];
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuard {
        _guards: vec![g1, g2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chai-log-{name}-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn midnight_renames_the_live_file_with_its_date_and_keeps_the_newest_files() {
        let dir = temp_dir("rotate");
        let mut file = DailyFile::open(&dir, "combined", 2, true).unwrap();
        let start = file.day;
        for offset in 1..=3 {
            writeln!(file, "{{\"day\":{offset}}}").unwrap();
            file.rotate_for(start + chrono::Days::new(offset)).unwrap();
        }
        writeln!(file, "{{\"day\":\"live\"}}").unwrap();
        file.flush().unwrap();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let day = |n: u64| {
            format!(
                "combined.{}.log",
                (start + chrono::Days::new(n)).format("%Y-%m-%d")
            )
        };
        assert_eq!(names, vec![day(1), day(2), "combined.log".to_owned()]);
        let live = fs::read_to_string(dir.join("combined.log")).unwrap();
        assert_eq!(live, "{\"day\":\"live\"}\n");
        let newest_dated = fs::read_to_string(dir.join(day(2))).unwrap();
        assert_eq!(newest_dated, "{\"day\":3}\n");
        fs::remove_dir_all(dir).unwrap();
    }
}
