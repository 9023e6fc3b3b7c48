//! `opendo-bench`: runs the same workloads against open-do and, when it is installed, Cloudflare's
//! workerd, one after the other on the same machine, and prints one table (and writes JSON).
//! When etcd is installed it also runs them through three open-do nodes on this machine, against
//! one node: the cost of forwarding (`cluster.rs`).
//!
//! Both servers answer only after a write is durable: open-do runs with `--durability full`
//! (fsync per commit) and workerd fsyncs every write before answering.

mod cluster;
mod load;
mod machine;
mod micro;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use crate::cluster::Cluster;
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
    #[arg(long, default_value = "20s")]
    idle_wait: humantime::Duration,
    /// Iterations per round of the in-process Wasm-versus-native microbenchmark (0 skips it).
    #[arg(long, default_value_t = 5_000)]
    micro_iterations: u32,
    /// Run only the microbenchmark (no servers).
    #[arg(long)]
    micro_only: bool,
    /// Stop after the create workload (for profiling object creation).
    #[arg(long)]
    create_only: bool,
    /// Nodes of the cluster measured after the single server (0 skips it). They run on this
    /// machine, with one etcd: this measures the cost of forwarding, not scale.
    #[arg(long, default_value_t = 3)]
    cluster_nodes: usize,
    /// The etcd binary for the cluster; the cluster is skipped if it cannot run.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench.json")]
    json: PathBuf,
}

/// Results of one server.
#[derive(Debug, Default, Serialize)]
struct Results {
    workloads: Vec<(String, Measurement)>,
    rss_after_touch_bytes: Option<u64>,
    /// Objects open-do held active at that moment: on a slow run, objects touched early may
    /// have hibernated already (idle for 10 s).
    active_after_touch: Option<u64>,
    pss_after_touch_bytes: Option<u64>,
    rss_after_idle_bytes: Option<u64>,
    /// Server-side wake time (open-do's own histogram), p50 and p99 in microseconds.
    wake_server_us: Option<(f64, f64)>,
    /// Share of the machine's CPU time its host took while this server was measured.
    cpu_stolen_percent: Option<f64>,
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
    let micro = if args.micro_iterations > 0 {
        let dir = data.path().join("micro");
        std::fs::create_dir_all(&dir)?;
        let (micro, stolen) = machine::stolen_during(|| {
            runtime.block_on(micro::run(&args.module, &dir, args.micro_iterations))
        });
        let micro = micro?;
        eprintln!(
            "  get + put: native {:.1} us (handed off {:.1} us), Wasm event {:.1} us, Wasm fetch {:.1} us; \
             wake {:.0} us; CPU time taken by the host {}",
            micro.native_us,
            micro.native_handed_off_us,
            micro.wasm_event_us,
            micro.wasm_us,
            micro.wake_us,
            stolen.map_or("unknown".into(), |stolen| format!("{stolen:.1}%"))
        );
        Some((micro, stolen))
    } else {
        None
    };
    let (micro, micro_stolen) = micro.unzip();
    if args.micro_only {
        return Ok(());
    }
    let opendo = Server::opendo(&args.opendo, &args.module, &data.path().join("opendo"), "10s", &[])?;
    let opendo_results = measure_stealing(&runtime, &opendo, &args)?;
    drop(opendo);
    let cluster_results = if args.cluster_nodes == 0 {
        None
    } else if etcd_runs(&args.etcd) {
        let dir = data.path().join("cluster");
        Some(runtime.block_on(measure_cluster(&args, &dir))?)
    } else {
        println!("etcd not found at {}: skipping the cluster\n", args.etcd.display());
        None
    };
    let workerd_results = if args.workerd.is_file() {
        let workerd = Server::workerd(&args.workerd, &args.workerd_config, &data.path().join("workerd"))?;
        Some(measure_stealing(&runtime, &workerd, &args)?)
    } else {
        println!("workerd not found at {}: measuring open-do only\n", args.workerd.display());
        None
    };
    print_table(&opendo_results, workerd_results.as_ref());
    if let Some(cluster) = &cluster_results {
        print_cluster_table(&opendo_results, cluster);
    }
    if let Some(micro) = &micro {
        println!(
            "\nget + put + commit, in process, no fsync: native {:.1} us in a loop, {:.1} us handed off \
             like an event; Wasm event {:.1} us ({:.2}x the loop, {:.2}x handed off); \
             Wasm fetch awaited one at a time {:.1} us ({:.2}x the loop)",
            micro.native_us,
            micro.native_handed_off_us,
            micro.wasm_event_us,
            micro.wasm_event_us / micro.native_us,
            micro.wasm_event_us / micro.native_handed_off_us,
            micro.wasm_us,
            micro.wasm_us / micro.native_us
        );
    }
    print_steal(&opendo_results, workerd_results.as_ref(), micro_stolen.flatten());
    let json = serde_json::json!({
        "open-do": opendo_results,
        "workerd": workerd_results,
        "cluster": cluster_results,
        "micro": micro,
        "micro_cpu_stolen_percent": micro_stolen.flatten(),
    });
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("\nJSON: {}", args.json.display());
    Ok(())
}

/// [`measure`], with the CPU time the host took from the machine meanwhile.
fn measure_stealing(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    args: &Args,
) -> anyhow::Result<Results> {
    let (results, stolen) = machine::stolen_during(|| runtime.block_on(measure(server, args)));
    Ok(Results { cpu_stolen_percent: stolen, ..results? })
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
        load::run(&[server.addr], args.connections, duration, Paths::Once(paths("incr", &names))).await?;
    record("create", create);
    if args.create_only {
        return Ok(results);
    }
    for op in ["hello", "incr", "sql"] {
        let measured =
            load::run(&[server.addr], args.connections, duration, Paths::Random(paths(op, &hot))).await?;
        record(&format!("{op} hot"), measured);
        let measured =
            load::run(&[server.addr], args.connections, duration, Paths::Random(paths(op, &names))).await?;
        record(&format!("{op} spread"), measured);
    }
    results.rss_after_touch_bytes = server.rss_bytes();
    results.active_after_touch = server.active_objects().await?;
    results.pss_after_touch_bytes = server.pss_bytes();
    tokio::time::sleep(args.idle_wait.into()).await;
    results.rss_after_idle_bytes = server.rss_bytes();
    let histogram_before = server.wake_histogram().await?;
    let started = Instant::now();
    let mut wakes = Vec::new();
    for name in names.iter().take(args.wakes) {
        wakes.push(load::once(server.addr, &format!("/bench/{name}/hello")).await?.as_micros() as u64);
    }
    let histogram_after = server.wake_histogram().await?;
    results.wake_server_us = server_side_wakes(&histogram_before, &histogram_after);
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

/// Results of the cluster.
#[derive(Debug, Serialize)]
struct ClusterResults {
    nodes: usize,
    workloads: Vec<(String, Measurement)>,
    /// Share of the requests a node forwarded to the owner of their object.
    forwarded_share: f64,
}

fn etcd_runs(etcd: &std::path::Path) -> bool {
    std::process::Command::new(etcd).arg("--version").output().is_ok_and(|out| out.status.success())
}

/// The workloads of one server that forwarding changes, through the nodes of a cluster: each
/// connection goes to one node, the connections spread over the nodes.
async fn measure_cluster(args: &Args, dir: &std::path::Path) -> anyhow::Result<ClusterResults> {
    let cluster = Cluster::start(&args.etcd, &args.opendo, &args.module, dir, args.cluster_nodes).await?;
    let addrs = cluster.addrs();
    let duration: Duration = args.duration.into();
    let names: Vec<String> = (0..args.objects).map(|i| format!("obj{i}")).collect();
    let paths =
        |op: &str, names: &[String]| names.iter().map(|n| format!("/bench/{n}/{op}")).collect::<Vec<_>>();
    let hot = vec!["hot".to_string()];
    let forwards_before = cluster.forwards().await?;
    let mut workloads = Vec::new();
    let mut record = |name: &str, measurement: Measurement| {
        eprintln!(
            "  {} nodes  {:<13} {:>9.0}/s  p50 {:>6} us  p99 {:>6} us  ({} errors)",
            args.cluster_nodes,
            name,
            measurement.rate,
            measurement.p50_us,
            measurement.p99_us,
            measurement.errors
        );
        workloads.push((name.to_string(), measurement));
    };
    let create = load::run(&addrs, args.connections, duration, Paths::Once(paths("incr", &names))).await?;
    record("create", create);
    for op in ["hello", "incr"] {
        let measured = load::run(&addrs, args.connections, duration, Paths::Random(paths(op, &hot))).await?;
        record(&format!("{op} hot"), measured);
        let measured =
            load::run(&addrs, args.connections, duration, Paths::Random(paths(op, &names))).await?;
        record(&format!("{op} spread"), measured);
    }
    let forwarded = cluster.forwards().await?.saturating_sub(forwards_before);
    let requests: u64 = workloads.iter().map(|(_, m)| m.requests + m.errors).sum();
    Ok(ClusterResults {
        nodes: args.cluster_nodes,
        workloads,
        forwarded_share: forwarded as f64 / requests.max(1) as f64,
    })
}

/// p50 and p99 (microseconds) of the wakes between two readings of the histogram, interpolated
/// linearly inside their buckets.
fn server_side_wakes(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<(f64, f64)> {
    if before.len() != after.len() || after.is_empty() {
        return None;
    }
    let counts: Vec<(f64, u64)> =
        after.iter().zip(before).map(|((bound, a), (_, b))| (*bound, a - b)).collect();
    let total = counts.last()?.1;
    if total == 0 {
        return None;
    }
    let quantile = |q: f64| {
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for (bound, cumulative) in &counts {
            if *cumulative as f64 >= rank {
                let upper = if bound.is_finite() { *bound } else { lower.0 * 2.0 };
                let in_bucket = (cumulative - lower.1).max(1) as f64;
                return (lower.0 + (upper - lower.0) * (rank - lower.1 as f64) / in_bucket) * 1e6;
            }
            lower = (*bound, *cumulative);
        }
        lower.0 * 1e6
    };
    Some((quantile(0.5), quantile(0.99)))
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
            opendo.active_after_touch,
        ),
        (
            "PSS after touching all objects (shared pages counted once)",
            opendo.pss_after_touch_bytes,
            workerd.and_then(|w| w.pss_after_touch_bytes),
            opendo.active_after_touch,
        ),
        (
            "RSS after they went idle",
            opendo.rss_after_idle_bytes,
            workerd.and_then(|w| w.rss_after_idle_bytes),
            None,
        ),
    ];
    for (label, ours, theirs, active) in rows {
        let active = active.map_or(String::new(), |active| format!(" ({active} active)"));
        println!("| {label} | {}{active} | {} | {} | | |", mib(ours), mib(theirs), ratio(ours, theirs));
    }
    if let Some((p50, p99)) = opendo.wake_server_us {
        println!("| wake, server-side (open-do only) | | | | {p50:.0} / {p99:.0} us | |");
    }
}

/// The cluster's workloads beside the single server's.
fn print_cluster_table(single: &Results, cluster: &ClusterResults) {
    println!(
        "\n{} nodes and one etcd on this machine, one shared data directory; connections spread over \
         the nodes, {:.0}% of the requests forwarded to their object's owner. All share this \
         machine's cores: this measures the cost of forwarding, not scale.",
        cluster.nodes,
        cluster.forwarded_share * 100.0
    );
    println!(
        "\n| workload | one node | {} nodes | ratio | {} nodes p50 / p99 |",
        cluster.nodes, cluster.nodes
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, theirs) in &cluster.workloads {
        let unit = if name == "create" { "objects/s" } else { "req/s" };
        let one = single.workloads.iter().find(|(n, _)| n == name).map(|(_, m)| m);
        let (one, ratio) = match one {
            Some(m) => (
                format!("{:.0} {unit}", m.rate),
                format!("{:.2}x", theirs.rate / m.rate.max(f64::MIN_POSITIVE)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {name} | {one} | {:.0} {unit} | {ratio} | {} / {} us |",
            theirs.rate, theirs.p50_us, theirs.p99_us
        );
    }
}

/// One line saying how much CPU time the host took from the machine during each part of the run.
fn print_steal(opendo: &Results, workerd: Option<&Results>, micro: Option<f64>) {
    let parts = [
        ("open-do", opendo.cpu_stolen_percent),
        ("workerd", workerd.and_then(|w| w.cpu_stolen_percent)),
        ("in process", micro),
    ];
    let measured: Vec<String> =
        parts.iter().filter_map(|(name, stolen)| Some(format!("{name} {:.1}%", (*stolen)?))).collect();
    if !measured.is_empty() {
        println!(
            "\nCPU time taken from this machine by its host (steal in /proc/stat, share of all CPU time): {}. \
             A high share means the host's own work (other guests, or its handling of this machine's \
             disk I/O) slowed the run.",
            measured.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_quantiles_interpolate_inside_their_bucket() {
        let before = [(0.001, 5), (0.002, 5), (f64::INFINITY, 5)];
        let after = [(0.001, 7), (0.002, 9), (f64::INFINITY, 9)];
        let (p50, p99) = server_side_wakes(&before, &after).expect("four wakes");
        assert!((p50 - 1000.0).abs() < 1e-6, "{p50}");
        assert!((p99 - 1980.0).abs() < 1e-6, "{p99}");
        assert_eq!(server_side_wakes(&before, &before), None);
    }
}
