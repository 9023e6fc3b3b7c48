//! In-process microbenchmark: one `fetch` doing a KV get + put in the Wasm object, against the
//! same get + put done natively on an object database. Both commit per operation, without fsync
//! (`Durability::Relaxed`), so the comparison is about the cost of the guest, not of the disk.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use opendo_runtime::{Config, Durability, Request, Runtime};
use opendo_storage::{ObjectDb, Settings};
use serde::Serialize;

/// Microseconds per operation, the median of several rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    /// Native get + put + commit, in a loop on one thread.
    pub native_us: f64,
    /// The same native get + put + commit, each handed to tokio's blocking pool and timed on the
    /// thread that runs it, as the runtime runs an event (see `wasm_event_us`): the thread has
    /// just been woken, often on the other core, with colder caches than a loop's.
    pub native_handed_off_us: f64,
    /// One `Runtime::fetch` of `/incr`, awaited before the next by a task on the runtime's
    /// workers: includes handing the event to the object's actor and its thread and the reply
    /// back.
    pub wasm_us: f64,
    /// The same fetches, timed on the thread that runs them: the event in Wasm (get + put) and
    /// its commit (the runtime's batch histogram: the mean of each round).
    pub wasm_event_us: f64,
    /// Waking a hibernated object for one `/hello`, server-side (the runtime's wake histogram,
    /// mean over [`WAKES`] objects).
    pub wake_us: f64,
}

/// Objects woken by the wake measurement.
const WAKES: usize = 300;

const ROUNDS: usize = 7;

/// Runs both sides `iterations` times per round. Rounds alternate between the sides, so a slow
/// spell of the machine weighs on both.
pub async fn run(module: &Path, dir: &Path, iterations: u32) -> anyhow::Result<Micro> {
    let native_path = dir.join("native.sqlite");
    let settings = Settings {
        durability: opendo_storage::Durability::Relaxed,
        storage_cap: opendo_storage::DEFAULT_STORAGE_CAP,
        file_locks: false,
    };
    let mut db = ObjectDb::open(&native_path, settings).context("opening the native database")?;
    let config = Config { data_dir: dir.join("wasm"), durability: Durability::Relaxed, ..Config::default() };
    let runtime = Runtime::new(config)?;
    runtime.load_namespace("bench", module)?;
    let request =
        Request { method: "GET".into(), path: "/incr".into(), headers: Vec::new(), body: Vec::new() };
    // Awaited from a task on the runtime's workers, as the server's connections do.
    let caller = runtime.clone();
    let rounds = tokio::spawn(async move {
        let (mut native, mut handed_off, mut wasm, mut wasm_event) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..iterations {
                native_incr(&mut db)?;
            }
            native.push(per_op(started.elapsed(), iterations));

            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                // The database goes to the blocking thread and comes back with the timing.
                let (returned, elapsed) = tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    let outcome = native_incr(&mut db);
                    (db, outcome.map(|()| started.elapsed()))
                })
                .await?;
                db = returned;
                spent += elapsed?;
            }
            handed_off.push(per_op(spent, iterations));

            let batch = caller.stats().batch();
            let (count_before, sum_before) = (batch.counts().iter().sum::<u64>(), batch.sum());
            let started = Instant::now();
            for _ in 0..iterations {
                let response = caller.fetch("bench", "micro", request.clone()).await?;
                anyhow::ensure!(response.status == 200, "incr answered {}", response.status);
            }
            wasm.push(per_op(started.elapsed(), iterations));
            let batches = batch.counts().iter().sum::<u64>() - count_before;
            wasm_event.push((batch.sum() - sum_before).as_secs_f64() * 1e6 / batches.max(1) as f64);
        }
        anyhow::Ok((native, handed_off, wasm, wasm_event))
    });
    let (native, handed_off, wasm, wasm_event) = rounds.await??;
    runtime.shutdown(Duration::from_secs(10)).await;
    // The same data directory, whose lock the first runtime releases when dropped: the wake
    // runtime finds the compiled component in its cache instead of compiling it again.
    drop(runtime);
    let wake_us = wakes(module, &dir.join("wasm")).await?;
    Ok(Micro {
        native_us: median(native),
        native_handed_off_us: median(handed_off),
        wasm_us: median(wasm),
        wasm_event_us: median(wasm_event),
        wake_us,
    })
}

/// Mean server-side wake time of objects that hibernated after one request each.
async fn wakes(module: &Path, dir: &Path) -> anyhow::Result<f64> {
    let idle_timeout = Duration::from_millis(200);
    let config = Config {
        data_dir: dir.to_path_buf(),
        durability: Durability::Relaxed,
        idle_timeout,
        ..Config::default()
    };
    let runtime = Runtime::new(config)?;
    runtime.load_namespace("bench", module)?;
    let hello =
        Request { method: "GET".into(), path: "/hello".into(), headers: Vec::new(), body: Vec::new() };
    let touch_all = || async {
        for n in 0..WAKES {
            runtime.fetch("bench", &format!("w{n}"), hello.clone()).await?;
        }
        anyhow::Ok(())
    };
    // The first round creates the objects; once they hibernated, the second one wakes them.
    touch_all().await?;
    while runtime.active_objects() > 0 {
        tokio::time::sleep(idle_timeout).await;
    }
    let wake = runtime.stats().wake();
    let (count_before, sum_before) = (wake.counts().iter().sum::<u64>(), wake.sum());
    touch_all().await?;
    let woken = wake.counts().iter().sum::<u64>() - count_before;
    anyhow::ensure!(woken > 0, "no object was woken");
    let mean = (wake.sum() - sum_before).as_secs_f64() * 1e6 / woken as f64;
    runtime.shutdown(Duration::from_secs(10)).await;
    Ok(mean)
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
