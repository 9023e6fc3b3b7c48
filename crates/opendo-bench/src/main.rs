//! `opendo-bench`: runs the same workloads against open-do and, when it is installed, Cloudflare's
//! workerd, one after the other on the same machine, and prints one table (and writes JSON).
//!
//! Both servers answer only after a write is durable: open-do runs with `--durability full`
//! (fsync per commit) and workerd fsyncs every write before answering.

mod load;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use crate::load::{Measurement, Paths};
use crate::server::Server;

/// Benchmark open-do against workerd on the same workloads.
#[derive(Debug, Parser)]
struct Args {
    /// The `opendo` binary (build it with `cargo build --release -p opendo-cli`).
    #[arg(long, default_value = "target/release/opendo")]
    opendo: PathBuf,
    /// The benchmark object component (bench/object built for wasm32-wasip2).
    #[arg(long, default_value = "bench/object/target/wasm32-wasip2/release/bench.wasm")]
    module: PathBuf,
    /// The workerd binary; skipped if missing.
    #[arg(long, default_value = "bench/workerd/node_modules/.bin/workerd")]
    workerd: PathBuf,
    /// The folder with workerd's config.capnp and worker.js.
    #[arg(long, default_value = "bench/workerd")]
    workerd_config: PathBuf,
    /// Objects touched by the spread and create workloads.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// How long each timed workload runs.
    #[arg(long, default_value = "5s")]
    duration: humantime::Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Hibernated objects requested once each by the wake workload.
    #[arg(long, default_value_t = 200)]
    wakes: usize,
    /// How long to wait for objects to go idle before measuring memory and wakes (both servers
    /// let an object go after 10 s without events).
    #[arg(long, default_value = "12s")]
    idle_wait: humantime::Duration,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench.json")]
    json: PathBuf,
}

/// Results of one server.
#[derive(Debug, Default, Serialize)]
struct Results {
    workloads: Vec<(String, Measurement)>,
    rss_after_touch_bytes: Option<u64>,
    rss_after_idle_bytes: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let data = tempfile::tempdir()?;
    println!(
        "durability: both servers answer only after the write is on disk \
         (open-do --durability full, workerd fsync per write)"
    );
    println!(
        "load: {} keep-alive connections, {} per timed workload, {} objects for create/spread\n",
        args.connections, args.duration, args.objects
    );
    // The default idle timeout (10 s), like workerd's eviction of idle objects.
    let opendo = Server::opendo(&args.opendo, &args.module, &data.path().join("opendo"), "10s")?;
    let opendo_results = runtime.block_on(measure(&opendo, &args))?;
    drop(opendo);
    let workerd_results = if args.workerd.is_file() {
        let workerd = Server::workerd(&args.workerd, &args.workerd_config, &data.path().join("workerd"))?;
        Some(runtime.block_on(measure(&workerd, &args))?)
    } else {
        println!("workerd not found at {}: measuring open-do only\n", args.workerd.display());
        None
    };
    print_table(&opendo_results, workerd_results.as_ref());
    let json = serde_json::json!({ "open-do": opendo_results, "workerd": workerd_results });
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("\nJSON: {}", args.json.display());
    Ok(())
}

async fn measure(server: &Server, args: &Args) -> anyhow::Result<Results> {
    let duration: Duration = args.duration.into();
    let names: Vec<String> = (0..args.objects).map(|i| format!("obj{i}")).collect();
    let paths =
        |op: &str, names: &[String]| names.iter().map(|n| format!("/bench/{n}/{op}")).collect::<Vec<_>>();
    let hot = vec!["hot".to_string()];
    let mut results = Results::default();
    let mut record = |name: &str, measurement: Measurement| {
        eprintln!(
            "  {:<8} {:<13} {:>9.0}/s  p50 {:>6} us  p99 {:>6} us  ({} errors)",
            server.name, name, measurement.rate, measurement.p50_us, measurement.p99_us, measurement.errors
        );
        results.workloads.push((name.to_string(), measurement));
    };
    // First touch of every object: creates its storage.
    let create =
        load::run(server.addr, args.connections, duration, Paths::Once(paths("incr", &names))).await?;
    record("create", create);
    for op in ["hello", "incr", "sql"] {
        let measured =
            load::run(server.addr, args.connections, duration, Paths::Random(paths(op, &hot))).await?;
        record(&format!("{op} hot"), measured);
        let measured =
            load::run(server.addr, args.connections, duration, Paths::Random(paths(op, &names))).await?;
        record(&format!("{op} spread"), measured);
    }
    results.rss_after_touch_bytes = server.rss_bytes();
    tokio::time::sleep(args.idle_wait.into()).await;
    results.rss_after_idle_bytes = server.rss_bytes();
    let started = Instant::now();
    let mut wakes = Vec::new();
    for name in names.iter().take(args.wakes) {
        wakes.push(load::once(server.addr, &format!("/bench/{name}/hello")).await?.as_micros() as u64);
    }
    wakes.sort_unstable();
    let percentile = |q: f64| wakes.get(((wakes.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    record(
        "wake",
        Measurement {
            requests: wakes.len() as u64,
            errors: 0,
            seconds,
            rate: wakes.len() as f64 / seconds,
            p50_us: percentile(0.5),
            p99_us: percentile(0.99),
        },
    );
    Ok(results)
}

fn print_table(opendo: &Results, workerd: Option<&Results>) {
    println!("\n| workload | open-do | workerd | ratio | open-do p50 / p99 | workerd p50 / p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, ours) in &opendo.workloads {
        let theirs = workerd.and_then(|w| w.workloads.iter().find(|(n, _)| n == name).map(|(_, m)| m));
        let unit = if name == "create" { "objects/s" } else { "req/s" };
        let (peer, ratio, peer_latency) = match theirs {
            Some(m) => (
                format!("{:.0} {unit}", m.rate),
                if name == "wake" {
                    format!("{:.1}x", m.p50_us as f64 / ours.p50_us.max(1) as f64)
                } else {
                    format!("{:.1}x", ours.rate / m.rate.max(f64::MIN_POSITIVE))
                },
                format!("{} / {} us", m.p50_us, m.p99_us),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {name} | {:.0} {unit} | {peer} | {ratio} | {} / {} us | {peer_latency} |",
            ours.rate, ours.p50_us, ours.p99_us
        );
    }
    let mib = |bytes: Option<u64>| bytes.map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1_048_576.0));
    let ratio = |ours: Option<u64>, theirs: Option<u64>| match (ours, theirs) {
        (Some(o), Some(t)) if o > 0 => format!("{:.1}x less", t as f64 / o as f64),
        _ => "-".into(),
    };
    let rows = [
        (
            "RSS after touching all objects",
            opendo.rss_after_touch_bytes,
            workerd.and_then(|w| w.rss_after_touch_bytes),
        ),
        (
            "RSS after they went idle",
            opendo.rss_after_idle_bytes,
            workerd.and_then(|w| w.rss_after_idle_bytes),
        ),
    ];
    for (label, ours, theirs) in rows {
        println!("| {label} | {} | {} | {} | | |", mib(ours), mib(theirs), ratio(ours, theirs));
    }
}
