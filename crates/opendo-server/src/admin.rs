//! The admin listener: health and Prometheus metrics, on its own address (never the data port).

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opendo_runtime::{HISTOGRAM_BOUNDS, Runtime, Stats};
use tokio::net::TcpListener;

use crate::serve::{HttpResponse, plain};

/// Serves `GET /healthz` and `GET /metrics` for `runtime` until the task is dropped.
pub async fn serve_admin(listener: TcpListener, runtime: Runtime) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let runtime = runtime.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let response = answer(&runtime, &request);
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(runtime: &Runtime, request: &Request<Incoming>) -> HttpResponse {
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here");
    }
    match request.uri().path() {
        "/healthz" => plain(StatusCode::OK, "ok"),
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(metrics(runtime.stats()))));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found: try /healthz or /metrics"),
    }
}

/// The runtime's counters in Prometheus' text format.
fn metrics(stats: &Stats) -> String {
    let rows: [(&str, &str, &str, u64); 11] = [
        (
            "opendo_active_objects",
            "gauge",
            "Objects with a live instance and open database.",
            stats.active.load(Ordering::Relaxed) as u64,
        ),
        (
            "opendo_activations_total",
            "counter",
            "Times an object was activated.",
            stats.activations.load(Ordering::Relaxed),
        ),
        (
            "opendo_hibernations_total",
            "counter",
            "Times an object hibernated after its idle timeout.",
            stats.hibernations.load(Ordering::Relaxed),
        ),
        (
            "opendo_evictions_total",
            "counter",
            "Objects hibernated early because the active-object cap was reached.",
            stats.evictions.load(Ordering::Relaxed),
        ),
        (
            "opendo_commits_total",
            "counter",
            "Event batches committed.",
            stats.commits.load(Ordering::Relaxed),
        ),
        (
            "opendo_traps_total",
            "counter",
            "Events that trapped and were rolled back.",
            stats.traps.load(Ordering::Relaxed),
        ),
        (
            "opendo_alarm_runs_total",
            "counter",
            "Alarm handler runs.",
            stats.alarm_runs.load(Ordering::Relaxed),
        ),
        (
            "opendo_alarm_retries_total",
            "counter",
            "Failed alarm runs scheduled for a retry.",
            stats.alarm_retries.load(Ordering::Relaxed),
        ),
        (
            "opendo_alarms_dropped_total",
            "counter",
            "Alarms dropped after their last retry.",
            stats.alarms_dropped.load(Ordering::Relaxed),
        ),
        (
            "opendo_websockets",
            "gauge",
            "WebSockets connected.",
            stats.websockets.load(Ordering::Relaxed) as u64,
        ),
        (
            "opendo_websocket_auto_responses_total",
            "counter",
            "Messages answered by an auto-response without waking the object.",
            stats.auto_responses.load(Ordering::Relaxed),
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in rows {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
    let histograms = [
        (
            "opendo_wake_seconds",
            "Time to wake a hibernated object: open, instantiate, run its first events, commit.",
            &stats.wake,
        ),
        (
            "opendo_batch_seconds",
            "Time to run one batch of an object's events, commit it and make it durable.",
            &stats.batch,
        ),
    ];
    for (name, help, histogram) in histograms {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} histogram\n");
        let bounds = HISTOGRAM_BOUNDS.iter().map(|b| b.to_string()).chain(["+Inf".into()]);
        let mut cumulative = 0;
        for (count, bound) in histogram.counts().iter().zip(bounds) {
            cumulative += count;
            let _ = writeln!(text, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = write!(text, "{name}_sum {}\n{name}_count {cumulative}\n", histogram.sum().as_secs_f64());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_in_prometheus_text_format() {
        let stats = Stats::default();
        stats.activations.store(3, Ordering::Relaxed);
        let text = metrics(&stats);
        assert!(
            text.contains("# TYPE opendo_activations_total counter\nopendo_activations_total 3\n"),
            "{text}"
        );
        assert!(text.lines().all(|line| line.starts_with('#') || line.split(' ').count() == 2), "{text}");
        assert!(text.contains("opendo_wake_seconds_bucket{le=\"+Inf\"} 0\n"), "{text}");
    }
}
