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
