//! `chai-tapri migrate-data --from sqlite://… --to postgres://…`: copies a team's data from
//! SQLite to an empty PostgreSQL database, in batches, resumable, verified.
//!
//! Tables go in an order that satisfies every foreign key, each in key order, one
//! transaction per batch that also records how far the table got (table
//! `data_migration_progress` in the target), so a run that was cut off continues where it
//! stopped. A target that holds data and no record of this source is refused. At the end
//! every table is compared — row counts and a checksum over every value, in key order, read
//! back from both databases — and the record is removed only when all match.

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::TryStreamExt;
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};
use uuid::Uuid;

use crate::config::DatabaseUrl;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    OptUuid,
    Text,
    OptText,
    Time,
    OptTime,
    Bool,
    Int,
}

/// One table: its columns (key columns first, in key order) and how many form the key.
struct Table {
    name: &'static str,
    key: usize,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Bool, Int, OptText, OptTime, OptUuid, Text, Time};

/// Every table holding a team's data, parents before children.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("username", Text),
            ("email", Text),
            ("password_hash", Text),
            ("display_name", Text),
            ("search_name", Text),
            ("avatar_url", OptText),
            ("status", OptText),
            ("last_seen", OptTime),
            ("created_at", Time),
            ("updated_at", Time),
        ],
    },
    Table {
        name: "channels",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("name", Text),
            ("description", OptText),
            ("is_private", Bool),
            ("created_by", OptUuid),
            ("last_message_id", OptUuid),
            ("created_at", Time),
            ("updated_at", Time),
            ("dm_key", OptText),
            ("last_root_seq", Int),
        ],
    },
    Table {
        name: "channel_members",
        key: 2,
        columns: &[
            ("channel_id", Kind::Uuid),
            ("user_id", Kind::Uuid),
            ("role", Text),
            ("joined_at", Time),
            ("last_read_id", OptUuid),
            ("last_read_seq", Int),
        ],
    },
    Table {
        name: "channel_stars",
        key: 2,
        columns: &[
            ("user_id", Kind::Uuid),
            ("channel_id", Kind::Uuid),
            ("created_at", Time),
        ],
    },
    Table {
        name: "messages",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("channel_id", Kind::Uuid),
            ("sender_id", Kind::Uuid),
            ("content", Text),
            ("attachments", Text),
            ("parent_id", OptUuid),
            ("nonce", OptText),
            ("edited_at", OptTime),
            ("created_at", Time),
            ("pinned_at", OptTime),
            ("pinned_by", OptUuid),
            ("deleted_at", OptTime),
            ("root_seq", Int),
        ],
    },
    Table {
        name: "deleted_roots",
        key: 1,
        columns: &[
            ("message_id", Kind::Uuid),
            ("channel_id", Kind::Uuid),
            ("seq", Int),
        ],
    },
    Table {
        name: "message_mentions",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("message_id", Kind::Uuid),
            ("n", Int),
            ("user_id", OptUuid),
            ("channel_id", Kind::Uuid),
        ],
    },
    Table {
        name: "message_versions",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("message_id", Kind::Uuid),
            ("content", Text),
            ("written_at", Time),
        ],
    },
    Table {
        name: "thread_follows",
        key: 2,
        columns: &[
            ("user_id", Kind::Uuid),
            ("root_id", Kind::Uuid),
            ("channel_id", Kind::Uuid),
            ("following", Bool),
            ("updated_at", Time),
        ],
    },
    Table {
        name: "thread_reads",
        key: 2,
        columns: &[
            ("user_id", Kind::Uuid),
            ("root_id", Kind::Uuid),
            ("channel_id", Kind::Uuid),
            ("last_read_id", Kind::Uuid),
        ],
    },
    Table {
        name: "reactions",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("message_id", Kind::Uuid),
            ("emoji", Text),
            ("user_id", Kind::Uuid),
            ("created_at", Time),
        ],
    },
    Table {
        name: "files",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("key", Text),
            ("thumbnail_key", OptText),
            ("uploader_id", Kind::Uuid),
            ("file_name", Text),
            ("file_type", Text),
            ("file_size", Int),
            ("state", Text),
            ("message_id", OptUuid),
            ("created_at", Time),
        ],
    },
    Table {
        name: "token_revocations",
        key: 1,
        columns: &[("jti", Kind::Uuid), ("expires_at", Int)],
    },
    Table {
        name: "audit_log",
        key: 1,
        columns: &[
            ("id", Kind::Uuid),
            ("action", Text),
            ("at", Time),
            ("actor_id", OptUuid),
            ("channel_id", OptUuid),
            ("target_user_id", OptUuid),
            ("message_id", OptUuid),
            ("ip", OptText),
            ("details", OptText),
        ],
    },
];

/// PostgreSQL takes at most 65,535 bound values per statement; 11 columns at most here.
pub const MAX_BATCH: usize = 5_000;

/// One value, as both databases can take it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Time(Option<DateTime<Utc>>),
    Bool(bool),
    Int(i64),
}

impl Value {
    /// Feeds the value to a checksum. Times count to the microsecond, PostgreSQL's
    /// precision (the API shows milliseconds).
    fn hash(&self, h: &mut DefaultHasher) {
        match self {
            Self::Uuid(v) => {
                h.write_u8(1);
                h.write(v.map(|u| *u.as_bytes()).unwrap_or_default().as_slice());
                h.write_u8(u8::from(v.is_some()));
            }
            Self::Text(v) => {
                h.write_u8(2);
                h.write(v.as_deref().unwrap_or_default().as_bytes());
                h.write_u8(u8::from(v.is_some()));
            }
            Self::Time(v) => {
                h.write_u8(3);
                h.write_i64(v.map_or(i64::MIN, |t| t.trunc_subsecs(6).timestamp_micros()));
            }
            Self::Bool(v) => h.write_u8(4 + u8::from(*v)),
            Self::Int(v) => {
                h.write_u8(6);
                h.write_i64(*v);
            }
        }
    }
}

/// A row of either database whose columns read as [`Value`]s.
trait ReadValue {
    /// Column `i`, read as `kind`.
    fn value(&self, i: usize, kind: Kind) -> sqlx::Result<Value>;
}

impl<R: Row> ReadValue for R
where
    usize: sqlx::ColumnIndex<R>,
    Uuid: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn value(&self, i: usize, kind: Kind) -> sqlx::Result<Value> {
        Ok(match kind {
            Kind::Uuid => Value::Uuid(Some(self.try_get(i)?)),
            OptUuid => Value::Uuid(self.try_get(i)?),
            Text => Value::Text(Some(self.try_get(i)?)),
            OptText => Value::Text(self.try_get(i)?),
            Time => Value::Time(Some(self.try_get(i)?)),
            OptTime => Value::Time(self.try_get(i)?),
            Bool => Value::Bool(self.try_get(i)?),
            Int => Value::Int(self.try_get(i)?),
        })
    }
}

/// The first `n` columns of a table, quoted and comma-separated.
fn column_list_of(table: &Table, n: usize) -> String {
    table.columns[..n]
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_list(table: &Table) -> String {
    column_list_of(table, table.columns.len())
}

fn key_list(table: &Table) -> String {
    column_list_of(table, table.key)
}

/// The next batch of `table` after `after` (a key), from SQLite, in key order.
async fn next_batch(
    source: &SqlitePool,
    table: &Table,
    after: Option<&[Uuid]>,
    limit: usize,
) -> sqlx::Result<Vec<Vec<Value>>> {
    let mut sql = format!("SELECT {} FROM {}", column_list(table), table.name);
    if let Some(after) = after {
        let marks = vec!["?"; after.len()].join(", ");
        let _ = write!(sql, " WHERE ({}) > ({marks})", key_list(table));
    }
    let _ = write!(sql, " ORDER BY {} LIMIT {limit}", key_list(table));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in after.unwrap_or_default() {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(source).await?;
    rows.iter()
        .map(|row| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| row.value(i, *kind))
                .collect()
        })
        .collect()
}

fn key_of(table: &Table, row: &[Value]) -> Vec<Uuid> {
    row[..table.key]
        .iter()
        .filter_map(|v| match v {
            Value::Uuid(Some(u)) => Some(*u),
            _ => None,
        })
        .collect()
}

/// Writes a batch and the table's progress in one transaction.
async fn write_batch(target: &PgPool, table: &Table, rows: &[Vec<Value>]) -> sqlx::Result<()> {
    let mut tx = target.begin().await?;
    let mut insert: QueryBuilder<sqlx::Postgres> = QueryBuilder::new(format!(
        "INSERT INTO {} ({}) ",
        table.name,
        column_list(table)
    ));
    insert.push_values(rows, |mut b, row| {
        for value in row {
            match value {
                Value::Uuid(v) => b.push_bind(*v),
                Value::Text(v) => b.push_bind(v.clone()),
                Value::Time(v) => b.push_bind(*v),
                Value::Bool(v) => b.push_bind(*v),
                Value::Int(v) => b.push_bind(*v),
            };
        }
    });
    // A batch that committed before a cut-off is never sent twice (its progress committed
    // with it), but a key already present is skipped rather than failing the run.
    insert.push(" ON CONFLICT DO NOTHING");
    insert.build().execute(&mut *tx).await?;
    let last = rows.last().map(|r| key_of(table, r)).unwrap_or_default();
    let last: Vec<String> = last.iter().map(Uuid::to_string).collect();
    sqlx::query(
        "UPDATE data_migration_progress SET last_key = $2, copied = copied + $3 WHERE table_name = $1",
    )
    .bind(table.name)
    .bind(last.join(","))
    .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The query that reads a whole table back in key order, for its fingerprint.
fn fingerprint_sql(table: &Table) -> String {
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        column_list(table),
        table.name,
        key_list(table)
    )
}

/// Row count and checksum of a table, from its rows in key order (either database).
async fn fingerprint<R: ReadValue>(
    mut rows: impl futures_util::Stream<Item = sqlx::Result<R>> + Unpin,
    table: &Table,
) -> anyhow::Result<(u64, u64)> {
    let mut h = DefaultHasher::new();
    let mut n = 0u64;
    while let Some(row) = rows.try_next().await? {
        for (i, (_, kind)) in table.columns.iter().enumerate() {
            row.value(i, *kind)?.hash(&mut h);
        }
        n += 1;
    }
    Ok((n, h.finish()))
}

/// What a finished run did, table by table.
#[derive(Debug)]
pub struct Report {
    /// `(table, rows, checksum)`, equal on both sides.
    pub tables: Vec<(&'static str, u64, u64)>,
    /// Messages copied by this run.
    pub messages: u64,
    /// Seconds this run spent copying (verification not counted).
    pub copy_seconds: f64,
    /// Whether an earlier, interrupted run was continued.
    pub resumed: bool,
}

/// Copies `from` (SQLite) into `to` (PostgreSQL); `progress` hears a line per batch.
///
/// # Errors
/// The source is not SQLite or does not exist, the target is not PostgreSQL or holds other
/// data, a database fails, or the copy does not match its source.
pub async fn run(
    from: &str,
    to: &str,
    batch: usize,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Report> {
    let batch = batch.clamp(1, MAX_BATCH);
    let DatabaseUrl::Sqlite(path) =
        DatabaseUrl::parse(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?
    else {
        bail!("--from must be a SQLite database (sqlite://path)");
    };
    let DatabaseUrl::Postgres(url) =
        DatabaseUrl::parse(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?
    else {
        bail!("--to must be a PostgreSQL database (postgres://…)");
    };
    if !Path::new(&path).is_file() {
        bail!("--from: no SQLite database at {}", path.display());
    }
    let source = SqliteStore::open(&path, 2)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let target = PgStore::connect(&url, 4)
        .await
        .context("cannot open the PostgreSQL database")?;
    let (src, dst) = (source.pool(), target.pool());

    let identity = std::fs::canonicalize(&path)
        .unwrap_or_else(|_| path.clone())
        .display()
        .to_string();
    let resumed = prepare(dst, &identity).await?;
    progress(&if resumed {
        format!("continuing an interrupted copy of {identity}")
    } else {
        format!("copying {identity}")
    });

    let started = Instant::now();
    let mut messages = 0u64;
    for table in TABLES {
        let (last_key, mut copied): (String, i64) = sqlx::query_as(
            "SELECT last_key, copied FROM data_migration_progress WHERE table_name = $1",
        )
        .bind(table.name)
        .fetch_one(dst)
        .await?;
        let mut after: Option<Vec<Uuid>> = if last_key.is_empty() {
            None
        } else {
            Some(
                last_key
                    .split(',')
                    .map(Uuid::parse_str)
                    .collect::<Result<_, _>>()
                    .context("data_migration_progress holds a bad key")?,
            )
        };
        loop {
            let rows = next_batch(src, table, after.as_deref(), batch).await?;
            if rows.is_empty() {
                break;
            }
            write_batch(dst, table, &rows).await?;
            copied += i64::try_from(rows.len()).unwrap_or(i64::MAX);
            if table.name == "messages" {
                messages += rows.len() as u64;
            }
            after = rows.last().map(|r| key_of(table, r));
            progress(&format!("{}: {copied} rows", table.name));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut tables = Vec::new();
    for table in TABLES {
        let (a, b) = (
            fingerprint(
                sqlx::query(sqlx::AssertSqlSafe(fingerprint_sql(table))).fetch(src),
                table,
            )
            .await?,
            fingerprint(
                sqlx::query(sqlx::AssertSqlSafe(fingerprint_sql(table))).fetch(dst),
                table,
            )
            .await?,
        );
        if a != b {
            bail!(
                "{}: the copy does not match its source ({} rows, checksum {:016x} in SQLite; {} rows, {:016x} in PostgreSQL); the progress record is kept",
                table.name,
                a.0,
                a.1,
                b.0,
                b.1
            );
        }
        progress(&format!(
            "{}: {} rows, checksum {:016x}, equal on both sides",
            table.name, a.0, a.1
        ));
        tables.push((table.name, a.0, a.1));
    }
    sqlx::query("DROP TABLE data_migration_progress")
        .execute(dst)
        .await?;
    // Statistics of the copied tables now, not when autovacuum comes by: without them the
    // planner reads a common search term through the trigram index and sorts every match
    // (docs/performance.md, "Search").
    for table in TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {}", table.name)))
            .execute(dst)
            .await?;
    }
    progress("statistics gathered (ANALYZE)");
    crate::store::Store::close(&source).await;
    crate::store::Store::close(&target).await;
    Ok(Report {
        tables,
        messages,
        copy_seconds: elapsed,
        resumed,
    })
}

/// Starts or continues the record of a copy in the target; `true` when continuing. Refuses
/// a target that holds data of its own, or the record of another source.
async fn prepare(target: &PgPool, identity: &str) -> anyhow::Result<bool> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'data_migration_progress' \
         AND schemaname = current_schema())",
    )
    .fetch_one(target)
    .await?;
    if exists {
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM data_migration_progress LIMIT 1")
                .fetch_optional(target)
                .await?;
        match source {
            Some(s) if s == identity => return Ok(true),
            Some(s) => bail!(
                "the target holds an unfinished copy of another database ({s}); finish that one or start from an empty database"
            ),
            None => {}
        }
    }
    for table in TABLES {
        let any: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {})",
            table.name
        )))
        .fetch_one(target)
        .await?;
        if any {
            bail!(
                "the target is not empty ({} has rows): migrate-data copies into an empty database only",
                table.name
            );
        }
    }
    let mut tx = target.begin().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS data_migration_progress (
            table_name TEXT PRIMARY KEY,
            source     TEXT NOT NULL,
            last_key   TEXT NOT NULL,
            copied     BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await?;
    for table in TABLES {
        sqlx::query(
            "INSERT INTO data_migration_progress (table_name, source, last_key, copied) \
             VALUES ($1, $2, '', 0) ON CONFLICT DO NOTHING",
        )
        .bind(table.name)
        .bind(identity)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_cover_the_schema_parents_first() {
        let names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at("users") < at("channels"));
        assert!(at("channels") < at("channel_members"));
        assert!(at("channels") < at("messages"));
        assert!(at("users") < at("files"));
        for table in TABLES {
            assert!(table.columns.len() * MAX_BATCH <= 65_535, "{}", table.name);
            assert!(
                table.columns[..table.key]
                    .iter()
                    .all(|(_, k)| *k == Kind::Uuid),
                "{}: keys are UUIDs",
                table.name
            );
        }
    }

    #[test]
    fn checksums_ignore_what_postgresql_cannot_hold_and_nothing_else() {
        let t = DateTime::parse_from_rfc3339("2026-12-03T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let sum = |v: &Value| {
            let mut h = DefaultHasher::new();
            v.hash(&mut h);
            h.finish()
        };
        assert_eq!(
            sum(&Value::Time(Some(t))),
            sum(&Value::Time(Some(t.trunc_subsecs(6))))
        );
        assert_ne!(
            sum(&Value::Time(Some(t))),
            sum(&Value::Time(Some(t.trunc_subsecs(3))))
        );
        assert_ne!(
            sum(&Value::Text(None)),
            sum(&Value::Text(Some(String::new())))
        );
    }
}
