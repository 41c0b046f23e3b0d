//! The `chai-tapri-bench` command: see [`chai_tapri_bench::USAGE`] and `docs/performance.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.is_empty()
        || raw
            .iter()
            .any(|a| a == "--help" || a == "-h" || a == "help")
    {
        println!("{}", chai_tapri_bench::USAGE);
        return ExitCode::SUCCESS;
    }
    match chai_tapri_bench::run(raw) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
