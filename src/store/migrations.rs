//! Embedded, forward-only migrations: `migrations/sqlite` and `migrations/postgres` hold
//! the same numbers, each file applied once, in order, at start-up.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, SQL)` of one embedded migration file.
pub(crate) type Embedded = (i64, &'static str, &'static str);

/// A migrator over the embedded files.
pub(crate) fn migrator(files: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::Embedded;

    fn on_disk(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn embedded(files: &[Embedded]) -> Vec<String> {
        files
            .iter()
            .map(|(v, d, _)| format!("{v:04}_{d}.sql"))
            .collect()
    }

    /// A database with messages from before `0012_read_state`: the migration numbers its
    /// roots, records its tombstones, and leaves every member and follower with nothing
    /// unread.
    #[tokio::test]
    async fn read_state_starts_a_team_with_data_read_up_to_now() {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let path = std::env::temp_dir().join(format!("chai-upgrade-{}.db", uuid::Uuid::now_v7()));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let all = crate::store::sqlite::MIGRATIONS;
        let before = all.iter().position(|m| m.0 == 12).unwrap();
        super::migrator(&all[..before]).run(&pool).await.unwrap();
        let id = |n: u128| uuid::Uuid::from_u128((0x0192_0000_0000_7000_8000_0000_0000_0000) + n);
        let (alice, bob, channel) = (id(1), id(2), id(3));
        let now = "2026-01-01T00:00:00Z";
        for (user, name) in [(alice, "alice"), (bob, "bob")] {
            sqlx::query(
                "INSERT INTO users (id, username, email, password_hash, display_name, \
                 search_name, created_at, updated_at) VALUES ($1, $2, $3, 'x', $2, $2, $4, $4)",
            )
            .bind(user)
            .bind(name)
            .bind(format!("{name}@example.com"))
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO channels (id, name, is_private, created_by, last_message_id, \
             created_at, updated_at) VALUES ($1, 'general', FALSE, $2, $3, $4, $4)",
        )
        .bind(channel)
        .bind(alice)
        .bind(id(14))
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();
        for user in [alice, bob] {
            sqlx::query(
                "INSERT INTO channel_members (channel_id, user_id, role, joined_at) \
                 VALUES ($1, $2, 'member', $3)",
            )
            .bind(channel)
            .bind(user)
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        }
        // Roots 10, 11 (a tombstone with a reply), 12, 14; reply 13 by bob, who follows.
        for (n, parent, deleted) in [
            (10, None, false),
            (11, None, true),
            (12, None, false),
            (13, Some(id(11)), false),
            (14, None, false),
        ] {
            sqlx::query(
                "INSERT INTO messages (id, channel_id, sender_id, content, parent_id, \
                 created_at, deleted_at) VALUES ($1, $2, $3, 'x', $4, $5, $6)",
            )
            .bind(id(n))
            .bind(channel)
            .bind(if n == 13 { bob } else { alice })
            .bind(parent)
            .bind(now)
            .bind(deleted.then_some(now))
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO thread_follows (user_id, root_id, channel_id, following, updated_at) \
             VALUES ($1, $2, $3, TRUE, $4)",
        )
        .bind(bob)
        .bind(id(11))
        .bind(channel)
        .bind(now)
        .execute(&pool)
        .await
        .unwrap();

        super::migrator(all).run(&pool).await.unwrap();
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT root_seq FROM messages ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(
            seqs,
            [1, 2, 3, 3, 4],
            "roots numbered in order, a reply the newest root's"
        );
        let deleted: Vec<i64> = sqlx::query_scalar("SELECT seq FROM deleted_roots")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(deleted, [2]);
        let members: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT last_read_id, last_read_seq FROM channel_members ORDER BY user_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(members, [(id(14), 4), (id(14), 4)]);
        let marker: uuid::Uuid = sqlx::query_scalar(
            "SELECT last_read_id FROM thread_reads WHERE user_id = $1 AND root_id = $2",
        )
        .bind(bob)
        .bind(id(11))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(marker, id(13));
        pool.close().await;
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn every_migration_file_is_embedded_with_the_same_numbering_for_both_databases() {
        assert_eq!(
            embedded(crate::store::sqlite::MIGRATIONS),
            on_disk("sqlite")
        );
        assert_eq!(
            embedded(crate::store::postgres::MIGRATIONS),
            on_disk("postgres")
        );
        assert_eq!(on_disk("sqlite"), on_disk("postgres"));
    }
}
