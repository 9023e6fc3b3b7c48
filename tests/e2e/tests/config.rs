//! `opendo run --config FILE`: settings from a TOML file, overridden by flags.

use std::path::Path;

use opendo_e2e::{Server, run_expecting_refusal};
use opendo_test_support::EXAMPLE_COUNTER;

#[test]
fn a_config_file_sets_flags_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opendo.toml");
    std::fs::write(&config, "namespace = \"fromconfig\"\nmax-body-size = \"1KiB\"\nmax_queued_events = 10\n")
        .unwrap();
    let config = config.to_str().unwrap();

    let server = Server::start(Path::new(EXAMPLE_COUNTER), &dir.path().join("a"), &["--config", config]);
    assert_eq!(server.post("/fromconfig/x/increment").body, "1");
    assert_eq!(
        server.send("POST", "/fromconfig/x/increment", &[b'x'; 2048]).status,
        413,
        "sizes from the file"
    );
    assert_eq!(server.get("/counter/x").status, 404);
    drop(server);

    let server = Server::start(
        Path::new(EXAMPLE_COUNTER),
        &dir.path().join("b"),
        &["--config", config, "--namespace", "cli"],
    );
    assert_eq!(server.post("/cli/x/increment").body, "1");
    assert_eq!(server.get("/fromconfig/x").status, 404);
}

#[test]
fn a_bad_config_file_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (contents, expected) in [
        ("bogus = 1", "unknown setting `bogus`"),
        ("listen = [1, 2]", "`listen`: invalid type"),
        ("listen = ", "not valid TOML"),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, contents).unwrap();
        let (status, stderr) =
            run_expecting_refusal(Path::new(EXAMPLE_COUNTER), &data, &["--config", config.to_str().unwrap()]);
        assert!(!status.success());
        assert!(stderr.lines().filter(|l| l.starts_with("error: ")).count() == 1, "{stderr}");
        assert!(stderr.contains(expected), "{contents}: {stderr}");
    }
    let (status, stderr) =
        run_expecting_refusal(Path::new(EXAMPLE_COUNTER), &data, &["--config", "/nonexistent.toml"]);
    assert!(!status.success());
    assert!(stderr.contains("reading the config file"), "{stderr}");
}

#[test]
fn the_soft_open_file_limit_is_raised_so_more_objects_stay_active() {
    let dir = tempfile::tempdir().unwrap();
    // Under a soft limit of 300 files, the default `--max-active` would be 22 objects.
    let server = Server::start_with_soft_file_limit(
        Path::new(EXAMPLE_COUNTER),
        &dir.path().join("data"),
        300,
        &["--admin-listen", "127.0.0.1:0"],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .expect("an open-file line")
        .split_whitespace()
        .collect();
    let (soft, hard) = (open_files[0], open_files[1]);
    if hard == "unlimited" {
        // Not a valid soft limit for files: the server takes the kernel's ceiling instead.
        assert!(soft.parse::<u64>().unwrap() > 300, "soft limit raised: {limits}");
    } else {
        assert_eq!(soft, hard, "soft limit raised to the hard one: {limits}");
    }
    assert!(server.log().contains("raised the open-file limit from 300 to"), "{}", server.log());
    for i in 0..100 {
        assert_eq!(server.post(&format!("/counter/o{i}/increment")).body, "1");
    }
    assert_eq!(server.metric("opendo_active_objects"), 100);
    assert_eq!(server.metric("opendo_evictions_total"), 0);
}
