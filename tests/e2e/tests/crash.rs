//! `kill -9` mid-burst loses no acknowledged write and corrupts no file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opendo_e2e::{Server, check_object_files};
use opendo_test_support::EXAMPLE_COUNTER;

const CYCLES: usize = 3;
const CLIENTS: usize = 8;

/// Runs `CLIENTS` threads incrementing objects `{label}-0..objects` until the server is killed
/// (after `burst`); returns how many increments each object acknowledged with a 200.
fn burst_then_kill(server: Server, label: &str, objects: usize, burst: Duration) -> BTreeMap<String, u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client_index| {
            let client = server.client();
            let stop = stop.clone();
            let label = label.to_string();
            std::thread::spawn(move || {
                let mut acked = BTreeMap::new();
                let mut n = client_index;
                while !stop.load(Ordering::Relaxed) {
                    let object = format!("{label}-{}", n % objects);
                    n += CLIENTS;
                    let answer = client.try_send("POST", &format!("/counter/{object}/increment"), b"");
                    if answer.is_some_and(|a| a.status == 200) {
                        *acked.entry(object).or_insert(0) += 1;
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(burst);
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut total = BTreeMap::new();
    for thread in threads {
        for (object, count) in thread.join().unwrap() {
            *total.entry(object).or_insert(0) += count;
        }
    }
    total
}

#[test]
fn kill_9_mid_burst_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let module = Path::new(EXAMPLE_COUNTER);
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for _cycle in 0..CYCLES {
        for (label, objects) in [("hot", 1), ("spread", 100)] {
            let server = Server::start(module, &data, &["--durability", "full"]);
            for (object, count) in burst_then_kill(server, label, objects, Duration::from_millis(1500)) {
                *acked.entry(object).or_insert(0) += count;
            }
            check_object_files(&data.join("counter"));
        }
    }
    let server = Server::start(module, &data, &["--durability", "full"]);
    let mut lost = 0;
    let mut acknowledged = 0;
    for (object, count) in &acked {
        let stored: u64 = server.get(&format!("/counter/{object}")).body.parse().unwrap();
        acknowledged += count;
        if stored < *count {
            lost += count - stored;
        }
    }
    assert!(server.interrupt().success());
    let files = check_object_files(&data.join("counter"));
    println!(
        "crash test: {CYCLES} cycles x (1 and 100 objects), {acknowledged} acknowledged increments over {} objects, lost {lost}, {files} files pass integrity_check",
        acked.len()
    );
    assert!(acknowledged > 0, "the bursts reached the server");
    assert_eq!(lost, 0, "every acknowledged increment survived kill -9");
}
