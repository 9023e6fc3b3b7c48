//! `opendo --help` explains itself.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_opendo")).args(args).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn run_help_lists_every_flag_with_its_default() {
    let text = help(&["run", "--help"]);
    for expected in [
        "--listen",
        "127.0.0.1:8787",
        "--data-dir",
        ".opendo",
        "--idle-timeout",
        "10s",
        "--durability",
        "relaxed",
        "--namespace",
        "--max-active",
        "--memory-limit",
        "128MiB",
        "--cpu-limit",
        "30s",
        "--storage-cap",
        "10GiB",
        "--max-body-size",
        "--max-queued-events",
        "--max-response-size",
        "--max-stack-size",
        "--guest-log-rate",
        "--header-read-timeout",
        "--shutdown-grace",
        "--log-format",
        "--config",
    ] {
        assert!(text.contains(expected), "`{expected}` missing from run --help:\n{text}");
    }
}

#[test]
fn top_level_help_names_the_run_command() {
    let text = help(&["--help"]);
    assert!(text.contains("run"), "{text}");
    assert!(text.contains("Durable Object"), "{text}");
}
