//! The command line. With no argument the binary serves; every setting of
//! [`crate::config`] is also a flag (`PORT` → `--port`), listed in `--help` with its variable,
//! its default and what it does — all read from `.env.example`, the one place they are written.
//! A flag wins over the environment, which wins over `.env`. An unknown argument is a usage
//! error (exit 2) and starts nothing. `chai-tapri migrate-data` copies a SQLite database into
//! PostgreSQL ([`crate::migrate_data`]).

use std::collections::HashMap;
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// `.env.example`: every setting, its default and a comment saying what it does.
const ENV_EXAMPLE: &str = include_str!("../.env.example");

/// One setting as `.env.example` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, e.g. `PORT`.
    pub var: &'static str,
    /// The value used when it is unset; `None` when unset means something of its own
    /// (written in `help`).
    pub default: Option<&'static str>,
    /// The comment above it in `.env.example`, joined into one paragraph.
    pub help: String,
}

impl Setting {
    /// `DATABASE_URL` → `database-url`.
    #[must_use]
    pub fn flag(&self) -> String {
        self.var.to_ascii_lowercase().replace('_', "-")
    }
}

fn variable_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every setting in `.env.example`, in its order. A `VAR=value` line gives a default; a
/// commented `# VAR=…` line a setting with none. Comment lines describe the variables that
/// follow them, up to the next comment or the end of the paragraph.
#[must_use]
pub fn settings() -> Vec<Setting> {
    let mut out = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    let mut after_variable = false;
    for line in ENV_EXAMPLE.lines().map(str::trim) {
        if line.is_empty() {
            comment.clear();
            after_variable = false;
            continue;
        }
        let (commented, body) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        match body.split_once('=') {
            Some((var, value)) if variable_name(var) => {
                after_variable = true;
                out.push(Setting {
                    var,
                    default: (!commented && !value.is_empty()).then_some(value),
                    help: comment.join(" "),
                });
            }
            _ if commented => {
                if std::mem::take(&mut after_variable) {
                    comment.clear();
                }
                comment.push(body);
            }
            _ => {}
        }
    }
    out
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Serve, with these settings given as flags (variable name → value).
    Serve(HashMap<String, String>),
    /// Copy a SQLite database into an empty PostgreSQL one.
    MigrateData {
        /// `sqlite://…`
        from: String,
        /// `postgres://…`
        to: String,
        /// Rows per transaction.
        batch: usize,
    },
}

fn command() -> Command {
    let mut cmd = Command::new("chai-tapri")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Team chat over REST and Socket.IO: one binary on SQLite, or many nodes on PostgreSQL + Redis")
        .long_about(
            "Team chat over REST and Socket.IO.\n\n\
             With no argument it serves, configured by the settings below: each is a flag or \
             its environment variable (also read from ./.env); a flag wins over the \
             environment, which wins over .env. Secrets (JWT_SECRET, passwords in URLs) \
             belong in the environment, not on a command line others can list.",
        )
        .subcommand(
            Command::new("migrate-data")
                .about("Copy a SQLite database into an empty PostgreSQL one (resumable, verified)")
                .long_about(
                    "Copies users, channels, members, stars, messages, file records and token \
                     revocations from a SQLite database into an empty PostgreSQL database, in \
                     batches; a run that was cut off continues where it stopped when started \
                     again with the same arguments. Every table is then compared (row counts \
                     and a checksum of every value). Stop the server that uses the SQLite \
                     database first. Uploaded files themselves stay where STORAGE_URL keeps \
                     them.",
                )
                .arg(
                    Arg::new("from")
                        .long("from")
                        .value_name("sqlite://PATH")
                        .required(true)
                        .help("The SQLite database to copy"),
                )
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("postgres://…")
                        .required(true)
                        .help("The empty PostgreSQL database to fill"),
                )
                .arg(
                    Arg::new("batch")
                        .long("batch")
                        .value_name("ROWS")
                        .default_value("1000")
                        .value_parser(clap::value_parser!(u16).range(1..=5000))
                        .help("Rows per transaction"),
                ),
        )
        .next_help_heading("Settings");
    for s in settings() {
        let mut help = s.help.clone();
        if let Some(d) = s.default {
            help = format!("{help} [default: {d}]");
        }
        cmd = cmd.arg(
            Arg::new(s.var)
                .long(s.flag())
                .value_name(s.var)
                .env(s.var)
                // The environment's values are never printed: some are secrets.
                .hide_env_values(true)
                .action(ArgAction::Set)
                .help(help),
        );
    }
    cmd
}

fn invocation(matches: &ArgMatches) -> Invocation {
    if let Some(m) = matches.subcommand_matches("migrate-data") {
        let text = |name: &str| m.get_one::<String>(name).cloned().unwrap_or_default();
        return Invocation::MigrateData {
            from: text("from"),
            to: text("to"),
            batch: usize::from(m.get_one::<u16>("batch").copied().unwrap_or(1000)),
        };
    }
    let mut flags = HashMap::new();
    for s in settings() {
        if matches.value_source(s.var) == Some(ValueSource::CommandLine)
            && let Some(v) = matches.get_one::<String>(s.var)
        {
            flags.insert(s.var.to_owned(), v.clone());
        }
    }
    Invocation::Serve(flags)
}

/// Parses the command line; `--help`, `--version` and usage errors come back as the error,
/// to be printed and exited with (`clap::Error::exit`: 0 for help and version, 2 otherwise).
///
/// # Errors
/// Help, version, or a usage error.
pub fn parse<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    command().try_get_matches_from(args).map(|m| invocation(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_the_example_is_read_with_its_default_and_comment() {
        let all = settings();
        let port = all.iter().find(|s| s.var == "PORT").unwrap();
        assert_eq!(port.default, Some("3000"));
        assert_eq!(port.help, "Where to listen.");
        assert_eq!(port.flag(), "port");
        let secret = all.iter().find(|s| s.var == "JWT_SECRET").unwrap();
        assert_eq!(secret.default, None);
        assert!(secret.help.starts_with("HS256 key."), "{}", secret.help);
        let pool = all
            .iter()
            .find(|s| s.var == "DATABASE_MAX_CONNECTIONS")
            .unwrap();
        assert!(
            pool.help
                .starts_with("Largest number of pooled database connections"),
            "a comment after a variable starts the next one's help, not the first's: {}",
            pool.help
        );
        let proxies = all.iter().find(|s| s.var == "TRUSTED_PROXIES").unwrap();
        assert_eq!(proxies.default, None);
        assert!(all.iter().all(|s| !s.help.is_empty()), "{all:#?}");
        let mut vars: Vec<_> = all.iter().map(|s| s.var).collect();
        vars.sort_unstable();
        let n = vars.len();
        vars.dedup();
        assert_eq!(vars.len(), n, "each setting once");
    }

    #[test]
    fn the_defaults_written_in_the_example_are_the_ones_the_server_uses() {
        let written: HashMap<String, String> = settings()
            .into_iter()
            .filter_map(|s| s.default.map(|d| (s.var.to_owned(), d.to_owned())))
            .collect();
        let with = crate::Config::from_map(&written).unwrap();
        let without = crate::Config::from_map(&HashMap::new()).unwrap();
        assert_eq!(format!("{with:?}"), format!("{without:?}"));
    }

    #[test]
    fn flags_win_and_anything_unknown_is_a_usage_error() {
        let Invocation::Serve(flags) =
            parse(["chai-tapri", "--port", "4000", "--log-level=debug"]).unwrap()
        else {
            panic!("no subcommand: serve");
        };
        assert_eq!(flags["PORT"], "4000");
        assert_eq!(flags["LOG_LEVEL"], "debug");
        assert_eq!(flags.len(), 2);
        for bad in [
            &["chai-tapri", "--bogus"][..],
            &["chai-tapri", "serve-please"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(
            parse([
                "chai-tapri",
                "migrate-data",
                "--from",
                "sqlite://a.db",
                "--to",
                "postgres://h/db"
            ])
            .unwrap(),
            Invocation::MigrateData {
                from: "sqlite://a.db".into(),
                to: "postgres://h/db".into(),
                batch: 1000
            }
        );
        for bad in [
            &["chai-tapri", "migrate-data", "--from", "sqlite://a.db"][..],
            &[
                "chai-tapri",
                "migrate-data",
                "--from",
                "x",
                "--to",
                "y",
                "--batch",
                "0",
            ],
            &[
                "chai-tapri",
                "migrate-data",
                "--from",
                "x",
                "--to",
                "y",
                "--batch",
                "99999",
            ],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(["chai-tapri", "--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(
            parse(["chai-tapri", "--version"]).unwrap_err().exit_code(),
            0
        );
    }
}
