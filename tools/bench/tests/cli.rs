//! The command line of `chai-tapri-bench`: what it refuses, and the scenario that needs no
//! server. (Every server scenario runs against a test server in the server's own suite.)
#![allow(clippy::unwrap_used)]

use serde_json::Value;

const TOOL: &str = env!("CARGO_BIN_EXE_chai-tapri-bench");

/// Runs the tool with arguments it must refuse; returns what it said on stderr.
fn refusal(args: &[&str]) -> String {
    let output = std::process::Command::new(TOOL)
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} must fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_mistyped_option_is_an_error_not_a_silent_default() {
    assert!(refusal(&["fanout", "--user", "10"]).contains("unknown option --user"));
}

#[test]
fn loopback_reads_back_every_frame_it_timed() {
    let output = std::process::Command::new(TOOL)
        .args(["loopback", "--sockets", "20", "--rounds", "3"])
        .args(["--bytes", "100", "--pause-ms", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["sends"], 60);
    assert_eq!(result["bytes_received"], 6000);
    assert!(
        result["wall_us_per_send"].as_f64().unwrap() > 0.0,
        "{result}"
    );

    assert!(refusal(&["loopback", "--sockets", "0"]).contains("at least 1"));
    assert!(refusal(&["loopback", "--url", "http://x"]).contains("unknown option --url"));
}
