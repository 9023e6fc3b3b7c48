//! The load generator: keep-alive HTTP/1.1 connections sending requests as fast as answers come.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// What one workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Requests (or objects, for `create`) per second.
    pub rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Which paths a workload requests.
pub enum Paths {
    /// Random paths from the list, until the duration is over.
    Random(Vec<String>),
    /// Each path once, in order, shared by the connections.
    Once(Vec<String>),
}

/// Runs a workload over `connections` keep-alive connections, spread round-robin over `addrs`
/// (the nodes of a cluster, or one server).
pub async fn run(
    addrs: &[SocketAddr],
    connections: usize,
    duration: Duration,
    paths: Paths,
) -> anyhow::Result<Measurement> {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    anyhow::ensure!(!addrs.is_empty(), "no server to load");
    for index in 0..connections {
        let addr = addrs[index % addrs.len()];
        let paths = paths.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move { connection(addr, &paths, &next, deadline).await }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut task_latencies, task_errors) = task.await.context("load task")??;
        latencies.append(&mut task_latencies);
        errors += task_errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() { 0 } else { latencies[((latencies.len() - 1) as f64 * p) as usize] }
    };
    let requests = latencies.len() as u64;
    Ok(Measurement {
        requests,
        errors,
        seconds,
        rate: requests as f64 / seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
    })
}

async fn connection(
    addr: SocketAddr,
    paths: &Paths,
    next: &AtomicUsize,
    deadline: Instant,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut sender = connect(addr).await?;
    loop {
        let path = match paths {
            Paths::Random(list) => {
                if Instant::now() >= deadline {
                    break;
                }
                &list[rand::random_range(0..list.len())]
            }
            Paths::Once(list) => match list.get(next.fetch_add(1, Ordering::Relaxed)) {
                Some(path) => path,
                None => break,
            },
        };
        let request = hyper::Request::get(path.as_str())
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .context("building a request")?;
        let sent = Instant::now();
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status.is_success()
            }
            Err(_) => false,
        };
        if ok {
            latencies.push(sent.elapsed().as_micros() as u64);
        } else {
            errors += 1;
            sender = connect(addr).await?;
        }
    }
    Ok((latencies, errors))
}

async fn connect(addr: SocketAddr) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One request, its latency.
pub async fn once(addr: SocketAddr, path: &str) -> anyhow::Result<Duration> {
    Ok(get(addr, path).await?.1)
}

/// One GET request: its body as text and its latency.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(String, Duration)> {
    let mut sender = connect(addr).await?;
    let request = hyper::Request::get(path).header("host", addr.to_string()).body(Empty::<Bytes>::new())?;
    let sent = Instant::now();
    let response = sender.send_request(request).await?;
    anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
    let body = response.into_body().collect().await?.to_bytes();
    let elapsed = sent.elapsed();
    Ok((String::from_utf8_lossy(&body).into_owned(), elapsed))
}
