//! The counter example over the real binary.

use std::path::Path;
use std::sync::Arc;

use opendo_e2e::{Server, run_expecting_refusal};
use opendo_test_support::EXAMPLE_COUNTER;

/// The counter's HTTP contract, which the Rust and the JavaScript counter both keep.
fn counter_persists_across_a_restart(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(module, &data, &["--namespace", "counter"]);
    assert_eq!(server.post("/counter/alice/increment").body, "1");
    assert_eq!(server.post("/counter/alice/increment").body, "2");
    assert_eq!(server.get("/counter/bob").body, "0");
    assert_eq!(server.get("/counter/alice").body, "2");
    assert_eq!(server.get("/counter/alice/nope").status, 404);
    let status = server.interrupt();
    assert!(status.success(), "SIGINT exits 0, got {status}");

    let server = Server::start(module, &data, &["--namespace", "counter"]);
    assert_eq!(server.post("/counter/alice/increment").body, "3");
    assert_eq!(server.send("DELETE", "/counter/alice", b"").body, "0");
    assert_eq!(server.get("/counter/alice").body, "0");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

#[test]
fn the_rust_counter_persists_across_a_restart() {
    counter_persists_across_a_restart(Path::new(EXAMPLE_COUNTER));
}

#[test]
fn the_javascript_counter_persists_across_a_restart() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/js/counter/counter.js");
    counter_persists_across_a_restart(&js);
}

#[test]
fn concurrent_increments_to_one_object_are_all_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(Path::new(EXAMPLE_COUNTER), &dir.path().join("data"), &[]));
    let clients = 20;
    let per_client = 10;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                (0..per_client)
                    .map(|_| {
                        let answer = server.post("/counter/hot/increment");
                        assert_eq!(answer.status, 200, "{answer:?}");
                        answer.body.parse::<u64>().unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seen: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    seen.sort_unstable();
    let expected: Vec<u64> = (1..=(clients * per_client) as u64).collect();
    assert_eq!(seen, expected, "every increment answered a distinct value, none lost");
    assert_eq!(server.get("/counter/hot").body, "200");
}

#[test]
fn a_crate_folder_is_built_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/counter");
    let server = Server::start(&crate_dir, &dir.path().join("data"), &[]);
    assert_eq!(server.post("/counter/built/increment").body, "1");
}

#[test]
fn shutdown_lets_in_flight_events_finish_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let probe = Path::new(opendo_test_support::PROBE);
    let server = Server::start(probe, &data, &[]);
    assert_eq!(server.get("/probe/slow/hits").status, 200);
    let client = server.client();
    let in_flight = std::thread::spawn(move || client.post("/probe/slow/spin?ms=1500"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = server.terminate();
    assert!(status.success(), "exit 0 after a graceful shutdown, got {status}");
    let answer = in_flight.join().unwrap();
    assert_eq!(answer.status, 200, "the in-flight event was answered: {answer:?}");
    assert_eq!(answer.body, "done");
}

#[test]
fn two_servers_cannot_share_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(Path::new(EXAMPLE_COUNTER), &data, &[]);
    assert_eq!(first.post("/counter/x/increment").body, "1");
    let (status, stderr) = run_expecting_refusal(Path::new(EXAMPLE_COUNTER), &data, &[]);
    assert!(!status.success());
    assert!(stderr.contains("is in use by another opendo (process "), "{stderr}");
    assert_eq!(first.post("/counter/x/increment").body, "2", "the first server is unaffected");
    // The lock goes with the process, however it ends.
    first.kill();
    let second = Server::start(Path::new(EXAMPLE_COUNTER), &data, &[]);
    assert_eq!(second.post("/counter/x/increment").body, "3");
}
