//! In-process microbenchmark: one `fetch` doing a KV get + put in the Wasm object, against the
//! same get + put done natively on an object database. Both commit per operation, without fsync
//! (`Durability::Relaxed`), so the comparison is about the cost of the guest, not of the disk.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use opendo_runtime::{Config, Durability, Request, Runtime};
use opendo_storage::{ObjectDb, Settings};
use serde::Serialize;

/// Microseconds per operation, median of several rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    /// Native get + put + commit.
    pub native_us: f64,
    /// One `Runtime::fetch` of `/incr`, awaited before the next: includes handing the event to
    /// the object's actor and its thread and the reply back.
    pub wasm_us: f64,
    /// The same fetches, timed on the thread that runs them: the event in Wasm (get + put) and
    /// its commit (the runtime's batch histogram, mean).
    pub wasm_event_us: f64,
}

const ROUNDS: usize = 7;

/// Runs both sides `iterations` times per round.
pub async fn run(module: &Path, dir: &Path, iterations: u32) -> anyhow::Result<Micro> {
    let native_path = dir.join("native.sqlite");
    let settings =
        Settings { durability: Durability::Relaxed, storage_cap: opendo_storage::DEFAULT_STORAGE_CAP };
    let mut db = ObjectDb::open(&native_path, settings).context("opening the native database")?;
    let mut native = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..iterations {
            native_incr(&mut db)?;
        }
        native.push(per_op(started.elapsed(), iterations));
    }

    let config = Config { data_dir: dir.join("wasm"), durability: Durability::Relaxed, ..Config::default() };
    let runtime = Runtime::new(config)?;
    runtime.load_namespace("bench", module)?;
    let request =
        Request { method: "GET".into(), path: "/incr".into(), headers: Vec::new(), body: Vec::new() };
    let mut wasm = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..iterations {
            let response = runtime.fetch("bench", "micro", request.clone()).await?;
            anyhow::ensure!(response.status == 200, "incr answered {}", response.status);
        }
        wasm.push(per_op(started.elapsed(), iterations));
    }
    let batches = runtime.stats().batch.counts().iter().sum::<u64>();
    let wasm_event_us = runtime.stats().batch.sum().as_secs_f64() * 1e6 / batches.max(1) as f64;
    runtime.shutdown(Duration::from_secs(10)).await;
    Ok(Micro { native_us: median(native), wasm_us: median(wasm), wasm_event_us })
}

/// What the benchmark object's `/incr` does, natively: read `n`, write `n + 1`, as JSON text.
fn native_incr(db: &mut ObjectDb) -> anyhow::Result<()> {
    db.begin_batch()?;
    let n: i64 = match db.get("n")? {
        Some(bytes) => serde_json::from_slice(&bytes)?,
        None => 0,
    };
    db.put("n", serde_json::to_string(&(n + 1))?.as_bytes())?;
    db.commit_batch()?;
    Ok(())
}

fn per_op(elapsed: Duration, iterations: u32) -> f64 {
    elapsed.as_secs_f64() * 1e6 / f64::from(iterations)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
