//! The `chai-tapri` server: read the command line and the configuration, set up logging, build the app and serve
//! until SIGTERM or SIGINT (exit code 2 for a configuration error).

use std::process::ExitCode;

use anyhow::Context;

use chai_tapri::cli::{self, Invocation};
use chai_tapri::{App, Config, Stopped, app::shutdown_signal, logging};

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match cli::parse(std::env::args_os()) {
        Ok(Invocation::Serve(flags)) => flags,
        Ok(Invocation::MigrateData { from, to, batch }) => {
            return migrate(&from, &to, batch).await;
        }
        // Help and version to stdout (exit 0); a usage error to stderr (exit 2).
        Err(e) => e.exit(),
    };
    let config = match Config::from_env_and_flags(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chai-tapri: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _logs = match logging::init(&config.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!(
                "chai-tapri: cannot open the log files in {}: {e}",
                config.log.dir.display()
            );
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(Stopped::Clean) => ExitCode::SUCCESS,
        Ok(Stopped::TimedOut) => ExitCode::from(1),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chai-tapri could not start");
            eprintln!("chai-tapri: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<Stopped> {
    logging::reopen_on_sighup().context("cannot listen for SIGHUP")?;
    if config.jwt_secret_generated {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens die with a restart"
        );
    }
    let app = App::build(config).await?;
    let addr = format!("http://{}", app.local_addr());
    tracing::info!(%addr, "chai-tapri listening");
    app.run_until_stopped(shutdown_signal()).await
}

/// `chai-tapri migrate-data`: progress on stderr, the verified tables on stdout.
async fn migrate(from: &str, to: &str, batch: usize) -> ExitCode {
    let mut progress = |line: &str| eprintln!("chai-tapri migrate-data: {line}");
    match chai_tapri::migrate_data::run(from, to, batch, &mut progress).await {
        Ok(report) => {
            for (table, rows, checksum) in &report.tables {
                println!("{table}\t{rows} rows\tchecksum {checksum:016x}");
            }
            let rate = if report.copy_seconds > 0.0 {
                format!(
                    ", {:.0} per second",
                    report.messages as f64 / report.copy_seconds
                )
            } else {
                String::new()
            };
            println!(
                "copied and verified{}; {} messages in {:.2} s of copying{rate}",
                if report.resumed { " (continued)" } else { "" },
                report.messages,
                report.copy_seconds,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chai-tapri migrate-data: {e:#}");
            ExitCode::FAILURE
        }
    }
}
