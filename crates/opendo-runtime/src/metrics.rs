//! The runtime's counters, and their exposition in the OpenMetrics text format (what
//! Prometheus scrapes), written by `prometheus-client`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Stats::encode`]'s text.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters about the objects of a runtime, read through its methods. Each is also a metric of
/// [`Stats::encode`]; its name there is given with the method.
#[derive(Debug)]
pub struct Stats {
    // What each one counts is said by its method below.
    pub(crate) active: Gauge,
    pub(crate) activations: Counter,
    pub(crate) hibernations: Counter,
    pub(crate) commits: Counter,
    pub(crate) evictions: Counter,
    pub(crate) traps: Counter,
    pub(crate) alarm_runs: Counter,
    pub(crate) alarm_retries: Counter,
    pub(crate) alarms_dropped: Counter,
    pub(crate) websockets: Gauge,
    pub(crate) auto_responses: Counter,
    pub(crate) wake: Histogram,
    pub(crate) batch: Histogram,
    rows_read: Family<NamespaceLabel, Counter>,
    rows_written: Family<NamespaceLabel, Counter>,
    events: Family<NamespaceLabel, Histogram>,
    calls: Family<NamespaceLabel, Counter>,
    call_errors: Family<NamespaceLabel, Counter>,
    pub(crate) front_requests: Counter,
    registry: Registry,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabel {
    namespace: String,
}

/// The metrics of one namespace, held by it so that recording one takes no lookup.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceStats {
    pub(crate) rows_read: Counter,
    pub(crate) rows_written: Counter,
    pub(crate) events: Histogram,
    /// Calls its objects (or the front) made to objects.
    pub(crate) calls: Counter,
    /// Of those, the ones that ended with an error the caller saw.
    pub(crate) call_errors: Counter,
}

impl Default for Stats {
    fn default() -> Self {
        let mut stats = Stats {
            active: Gauge::default(),
            activations: Counter::default(),
            hibernations: Counter::default(),
            commits: Counter::default(),
            evictions: Counter::default(),
            traps: Counter::default(),
            alarm_runs: Counter::default(),
            alarm_retries: Counter::default(),
            alarms_dropped: Counter::default(),
            websockets: Gauge::default(),
            auto_responses: Counter::default(),
            wake: Histogram::default(),
            batch: Histogram::default(),
            rows_read: Family::default(),
            rows_written: Family::default(),
            events: Family::default(),
            calls: Family::default(),
            call_errors: Family::default(),
            front_requests: Counter::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::with_prefix("opendo");
        // Help texts without their final period: the encoder adds it.
        // Counters get their `_total` suffix from the encoder.
        let counters = [
            ("activations", "Times an object was activated", &stats.activations),
            ("hibernations", "Times an object hibernated after its idle timeout", &stats.hibernations),
            (
                "evictions",
                "Objects hibernated early because the active-object cap was reached",
                &stats.evictions,
            ),
            ("commits", "Event batches committed", &stats.commits),
            ("front_requests", "Requests the front served (or trapped on)", &stats.front_requests),
            ("traps", "Events that trapped and were rolled back", &stats.traps),
            ("alarm_runs", "Alarm handler runs", &stats.alarm_runs),
            ("alarm_retries", "Failed alarm runs scheduled for a retry", &stats.alarm_retries),
            ("alarms_dropped", "Alarms dropped after their last retry", &stats.alarms_dropped),
            (
                "websocket_auto_responses",
                "Messages answered by an auto-response without waking the object",
                &stats.auto_responses,
            ),
        ];
        registry.register(
            "active_objects",
            "Objects with a live instance and open database",
            stats.active.clone(),
        );
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register("websockets", "WebSockets connected", stats.websockets.clone());
        registry.register_with_unit(
            "wake",
            "Time to wake a hibernated object: open, instantiate, run its first events, commit",
            Unit::Seconds,
            stats.wake.clone(),
        );
        registry.register_with_unit(
            "batch",
            "Time to run one batch of an object's events, commit it and make it durable",
            Unit::Seconds,
            stats.batch.clone(),
        );
        registry.register(
            "rows_read",
            "Rows the objects' storage calls read (KV keys looked up or listed, SQL rows returned or scanned), by namespace",
            stats.rows_read.clone(),
        );
        registry.register(
            "rows_written",
            "Rows the objects' storage calls wrote (KV entries stored or deleted, SQL rows changed), by namespace",
            stats.rows_written.clone(),
        );
        registry.register_with_unit(
            "event",
            "Time an event ran in its object (its guest code and storage calls; not its wait in the queue nor the commit), by namespace",
            Unit::Seconds,
            stats.events.clone(),
        );
        registry.register(
            "calls",
            "Calls to objects made by the objects of a namespace (or by the front, namespace `_front`)",
            stats.calls.clone(),
        );
        registry.register(
            "call_errors",
            "Calls to objects that ended with an error the caller saw (refused, callee failed, overloaded, timed out), by calling namespace",
            stats.call_errors.clone(),
        );
        stats.registry = registry;
        stats
    }
}

impl Stats {
    /// Objects with a live instance and an open database right now (`opendo_active_objects`).
    pub fn active(&self) -> usize {
        usize::try_from(self.active.get()).unwrap_or(0)
    }

    /// Times an object was activated (its database opened) since start
    /// (`opendo_activations_total`).
    pub fn activations(&self) -> u64 {
        self.activations.get()
    }

    /// Times an object hibernated after its idle timeout since start
    /// (`opendo_hibernations_total`).
    pub fn hibernations(&self) -> u64 {
        self.hibernations.get()
    }

    /// Batch transactions committed; several queued events share one (group commit)
    /// (`opendo_commits_total`).
    pub fn commits(&self) -> u64 {
        self.commits.get()
    }

    /// Objects hibernated early because `max_active` was reached (`opendo_evictions_total`).
    pub fn evictions(&self) -> u64 {
        self.evictions.get()
    }

    /// Events that trapped (`opendo_traps_total`).
    pub fn traps(&self) -> u64 {
        self.traps.get()
    }

    /// Alarm handler runs, successful or not (`opendo_alarm_runs_total`).
    pub fn alarm_runs(&self) -> u64 {
        self.alarm_runs.get()
    }

    /// Failed alarm runs scheduled for a retry (`opendo_alarm_retries_total`).
    pub fn alarm_retries(&self) -> u64 {
        self.alarm_retries.get()
    }

    /// Alarms dropped after their last retry failed (`opendo_alarms_dropped_total`).
    pub fn alarms_dropped(&self) -> u64 {
        self.alarms_dropped.get()
    }

    /// WebSockets connected right now (`opendo_websockets`).
    pub fn websockets(&self) -> usize {
        usize::try_from(self.websockets.get()).unwrap_or(0)
    }

    /// Messages answered by an object's auto-response, without an event
    /// (`opendo_websocket_auto_responses_total`).
    pub fn auto_responses(&self) -> u64 {
        self.auto_responses.get()
    }

    /// How long waking a hibernated object took: from its first event's arrival to the release of
    /// that batch's outputs (opening the database, instantiating, running, committing)
    /// (`opendo_wake_seconds`).
    pub fn wake(&self) -> &Histogram {
        &self.wake
    }

    /// How long each batch of events ran on its thread: opening the object if needed, running
    /// the events, committing, making the commit durable (`opendo_batch_seconds`).
    pub fn batch(&self) -> &Histogram {
        &self.batch
    }

    /// The metrics of namespace `name` (`opendo_rows_read_total`, `opendo_rows_written_total`
    /// and `opendo_event_seconds`, each with the label `namespace`).
    pub(crate) fn for_namespace(&self, name: &str) -> NamespaceStats {
        let label = NamespaceLabel { namespace: name.to_string() };
        NamespaceStats {
            rows_read: self.rows_read.get_or_create(&label).clone(),
            rows_written: self.rows_written.get_or_create(&label).clone(),
            events: self.events.get_or_create(&label).clone(),
            calls: self.calls.get_or_create(&label).clone(),
            call_errors: self.call_errors.get_or_create(&label).clone(),
        }
    }

    /// Every metric in the OpenMetrics text format ([`METRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String fails only if a metric's own encoding fails, which ours do not.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!("encoding the metrics: {err}");
        }
        text
    }
}

/// Upper bounds of the [`Histogram`] buckets, in seconds.
pub const HISTOGRAM_BOUNDS: [f64; 13] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A latency histogram with fixed buckets ([`HISTOGRAM_BOUNDS`]). Recording is a few relaxed
/// atomic additions, with no lock: every batch of every object records one. Clones share
/// their counts.
#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug, Default)]
struct Buckets {
    counts: [AtomicU64; HISTOGRAM_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket =
            HISTOGRAM_BOUNDS.iter().position(|bound| seconds <= *bound).unwrap_or(HISTOGRAM_BOUNDS.len());
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations per bucket (not cumulative): one more than [`HISTOGRAM_BOUNDS`], the last
    /// for larger values.
    pub fn counts(&self) -> Vec<u64> {
        self.0.counts.iter().map(|count| count.load(Ordering::Relaxed)).collect()
    }

    /// The sum of every observation.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.0.sum_nanos.load(Ordering::Relaxed))
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.counts();
        let bounds = HISTOGRAM_BOUNDS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        let count = counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum().as_secs_f64(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `name`: (labels, value).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let rest = series.strip_prefix(name)?;
                (rest.is_empty() || rest.starts_with('{')).then_some((rest, value))
            })
            .collect()
    }

    #[test]
    fn the_metrics_keep_their_names_and_values() {
        let stats = Stats::default();
        stats.activations.inc_by(3);
        stats.active.set(2);
        stats.wake.record(Duration::from_micros(70));
        stats.wake.record(Duration::from_secs(2));
        let text = stats.encode();
        assert_eq!(samples(&text, "opendo_activations_total"), [("", "3")], "{text}");
        assert_eq!(samples(&text, "opendo_active_objects"), [("", "2")], "{text}");
        assert_eq!(samples(&text, "opendo_hibernations_total"), [("", "0")], "{text}");
        assert!(text.contains("# TYPE opendo_wake_seconds histogram"), "{text}");
        let buckets = samples(&text, "opendo_wake_seconds_bucket");
        assert_eq!(buckets.len(), HISTOGRAM_BOUNDS.len() + 1, "{text}");
        // Cumulative: 70 µs is in the 100 µs bucket, 2 s only in +Inf.
        assert_eq!(buckets[0].1, "0");
        assert_eq!(buckets[1].1, "1");
        assert_eq!(buckets[12].1, "1");
        assert_eq!(buckets[13], ("{le=\"+Inf\"}", "2"));
        assert_eq!(samples(&text, "opendo_wake_seconds_count"), [("", "2")], "{text}");
        let sum: f64 = samples(&text, "opendo_wake_seconds_sum")[0].1.parse().unwrap();
        assert!((sum - 2.00007).abs() < 1e-9, "{sum}");
        for name in [
            "opendo_evictions_total",
            "opendo_commits_total",
            "opendo_traps_total",
            "opendo_alarm_runs_total",
            "opendo_alarm_retries_total",
            "opendo_alarms_dropped_total",
            "opendo_websockets",
            "opendo_websocket_auto_responses_total",
            "opendo_batch_seconds_count",
        ] {
            assert_eq!(samples(&text, name).len(), 1, "{name} in {text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains(".."), "help texts end with one period: {text}");
    }

    #[test]
    fn namespaces_have_their_own_rows_and_event_times() {
        let stats = Stats::default();
        let (a, b) = (stats.for_namespace("a"), stats.for_namespace("b"));
        a.rows_read.inc_by(5);
        b.rows_written.inc_by(2);
        a.events.record(Duration::from_micros(70));
        stats.for_namespace("a").rows_read.inc();
        let text = stats.encode();
        let read = samples(&text, "opendo_rows_read_total");
        assert!(
            read.contains(&("{namespace=\"a\"}", "6")) && read.contains(&("{namespace=\"b\"}", "0")),
            "{text}"
        );
        assert!(samples(&text, "opendo_rows_written_total").contains(&("{namespace=\"b\"}", "2")), "{text}");
        assert!(text.contains("# TYPE opendo_event_seconds histogram"), "{text}");
        assert!(samples(&text, "opendo_event_seconds_count").contains(&("{namespace=\"a\"}", "1")), "{text}");
        assert!(
            samples(&text, "opendo_event_seconds_bucket").contains(&("{le=\"0.0001\",namespace=\"a\"}", "1")),
            "{text}"
        );
    }

    #[test]
    fn bucket_bounds_parse_back_to_the_bounds() {
        let stats = Stats::default();
        let text = stats.encode();
        let bounds: Vec<f64> = samples(&text, "opendo_batch_seconds_bucket")
            .iter()
            .filter_map(|(labels, _)| labels.strip_prefix("{le=\"")?.strip_suffix("\"}")?.parse().ok())
            .collect();
        assert_eq!(bounds[..HISTOGRAM_BOUNDS.len()], HISTOGRAM_BOUNDS, "{text}");
    }
}
