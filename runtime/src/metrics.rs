//! What a node counts for `/metrics` (Prometheus / OpenMetrics text, encoded
//! by `prometheus-client`, the Prometheus project's own Rust client): the
//! jobs its workers finished by tenant, alias and status, their run time and
//! fuel as histograms per alias, module compile time, callback deliveries by
//! outcome, HTTP requests by route and status. What the database knows
//! (queue depth by status) and the workers' gauges are read at scrape time
//! ([`Metrics::gauge_queues`], [`Metrics::gauge_workers`]). One [`Metrics`]
//! per node (`App`), shared by its parts; counting is a few atomic
//! operations, never a lock held across I/O.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// A job's tenant, alias and how it ended this attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The tenant.
    pub tenant: String,
    /// The alias.
    pub alias: String,
    /// `succeeded`, `failed` (will retry), `dead` or `cancelled`.
    pub status: String,
}

/// A tenant's alias.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AliasLabels {
    /// The tenant.
    pub tenant: String,
    /// The alias.
    pub alias: String,
}

/// A callback delivery's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallbackLabels {
    /// `delivered`, `retry` (will be tried again) or `failed` (given up).
    pub outcome: String,
}

/// An HTTP request: its route (the path pattern, never the path: bounded
/// label values) and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `/v1/jobs/{id}`; `unmatched` for a path no route has.
    pub route: String,
    /// 200, 404, ...
    pub status: u16,
}

/// A queue's unfinished jobs in one status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue.
    pub queue: String,
    /// `queued`, `scheduled`, `running` or `failed` (waiting to retry).
    pub status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A node's metrics (see the module doc).
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    run_seconds: Histograms<AliasLabels>,
    instantiate_seconds: Histograms<AliasLabels>,
    fuel: Histograms<AliasLabels>,
    compile_seconds: Histogram,
    callbacks: Family<CallbackLabels, Counter>,
    http: Family<HttpLabels, Counter>,
    http_seconds: Histogram,
    workers_busy: Gauge,
    workers_max: Gauge,
    queue_depth: Family<QueueLabels, Gauge>,
}

fn seconds() -> Histogram {
    // 100 us .. ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

fn fuel() -> Histogram {
    // 1,000 .. ~10^12 units.
    Histogram::new(exponential_buckets(1_000.0, 10.0, 10))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wasmq");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register("job_attempts", "Job attempts this node finished, by how they ended", jobs.clone());
        let run_seconds: Histograms<AliasLabels> = Family::new_with_constructor(seconds);
        registry.register(
            "job_run_duration_seconds",
            "Wall time of job attempts (instantiation included), per alias",
            run_seconds.clone(),
        );
        let instantiate_seconds: Histograms<AliasLabels> = Family::new_with_constructor(seconds);
        registry.register(
            "job_instantiate_duration_seconds",
            "Time from a job attempt's start until its fresh instance was ready (of the run time), per alias",
            instantiate_seconds.clone(),
        );
        let fuel_used: Histograms<AliasLabels> = Family::new_with_constructor(fuel);
        registry.register("job_fuel_used", "Fuel used by job attempts, per alias", fuel_used.clone());
        let compile_seconds = seconds();
        registry.register(
            "module_compile_duration_seconds",
            "Time to validate and compile a module (uploads and first runs)",
            compile_seconds.clone(),
        );
        let callbacks = Family::<CallbackLabels, Counter>::default();
        registry.register("callback_deliveries", "Callback delivery attempts, by outcome", callbacks.clone());
        let http = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", http.clone());
        let http_seconds = seconds();
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            http_seconds.clone(),
        );
        let workers_busy = Gauge::default();
        registry.register("workers_busy", "Worker slots of this node running a job", workers_busy.clone());
        let workers_max = Gauge::default();
        registry.register("workers", "Worker slots of this node", workers_max.clone());
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Unfinished jobs per queue and status (every tenant's; read from the database at scrape)",
            queue_depth.clone(),
        );
        Self {
            registry,
            jobs,
            run_seconds,
            instantiate_seconds,
            fuel: fuel_used,
            compile_seconds,
            callbacks,
            http,
            http_seconds,
            workers_busy,
            workers_max,
            queue_depth,
        }
    }
}

impl Metrics {
    /// A finished job attempt: its outcome's status, run time, time to
    /// instantiate (zero: it never got that far, not counted) and fuel.
    pub fn job_attempt(&self, tenant: &str, alias: &str, status: &str, outcome: &crate::domain::Outcome) {
        let labels = AliasLabels { tenant: tenant.to_string(), alias: alias.to_string() };
        self.run_seconds.get_or_create(&labels).observe(outcome.duration.as_secs_f64());
        if !outcome.instantiate.is_zero() {
            self.instantiate_seconds.get_or_create(&labels).observe(outcome.instantiate.as_secs_f64());
        }
        let fuel_used = outcome.fuel_used;
        self.fuel.get_or_create(&labels).observe(fuel_used as f64);
        let AliasLabels { tenant, alias } = labels;
        self.jobs.get_or_create(&JobLabels { tenant, alias, status: status.to_string() }).inc();
    }

    /// A module compiled.
    pub fn compiled(&self, took: Duration) {
        self.compile_seconds.observe(took.as_secs_f64());
    }

    /// A callback delivery attempt.
    pub fn callback(&self, outcome: &str) {
        self.callbacks.get_or_create(&CallbackLabels { outcome: outcome.to_string() }).inc();
    }

    /// An answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = HttpLabels { method: method.to_string(), route: route.to_string(), status };
        self.http.get_or_create(&labels).inc();
        self.http_seconds.observe(took.as_secs_f64());
    }

    /// This node's worker slots, busy and in all, now.
    pub fn gauge_workers(&self, busy: usize, max: usize) {
        self.workers_busy.set(busy as i64);
        self.workers_max.set(max as i64);
    }

    /// The unfinished jobs per queue and status, now (replacing the last
    /// scrape's: a queue that emptied shows no stale count).
    pub fn gauge_queues(&self, depths: &[crate::store::QueueDepth]) {
        self.queue_depth.clear();
        for d in depths {
            let labels = QueueLabels { queue: d.queue.clone(), status: d.status.clone() };
            self.queue_depth.get_or_create(&labels).inc_by(d.count as i64);
        }
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_format_with_their_labels() {
        let m = Metrics::default();
        let ran = |ms, instantiate_us, fuel_used| crate::domain::Outcome {
            duration: Duration::from_millis(ms),
            instantiate: Duration::from_micros(instantiate_us),
            fuel_used,
            ..crate::domain::Outcome::rejected(crate::domain::RunError::Cancelled)
        };
        m.job_attempt("default", "echo", "succeeded", &ran(3, 40, 12_000));
        m.job_attempt("default", "echo", "succeeded", &ran(5, 0, 14_000));
        m.callback("delivered");
        m.http_request("POST", "/v1/jobs", 201, Duration::from_millis(1));
        m.gauge_workers(1, 4);
        let text = m.encode();
        assert!(
            text.contains(r#"wasmq_job_attempts_total{tenant="default",alias="echo",status="succeeded"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmq_job_run_duration_seconds_count{tenant="default",alias="echo"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wasmq_job_instantiate_duration_seconds_count{tenant="default",alias="echo"} 1"#),
            "only the attempt that got that far: {text}"
        );
        assert!(text.contains(r#"wasmq_callback_deliveries_total{outcome="delivered"} 1"#), "{text}");
        assert!(
            text.contains(r#"wasmq_http_requests_total{method="POST",route="/v1/jobs",status="201"} 1"#),
            "{text}"
        );
        assert!(text.contains("wasmq_workers_busy 1") && text.contains("wasmq_workers 4"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
