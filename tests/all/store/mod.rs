//! The storage conformance suite: one set of semantics every backend must
//! meet, one file per area. Each case is an `async fn(Arc<dyn Store>)` written
//! once; `cases!` makes one test of it that runs it on a fresh store of every
//! backend in [`BACKENDS`], opened through `wasmq::store::connect` like the
//! server opens its own. A case that needs several stores on one database
//! (several nodes) takes the database's URL instead (`url_cases!`). A new
//! backend adds a line to `BACKENDS` (`backends.rs`), not cases.

mod alias_limits;
mod aliases;
mod backends;
mod bulk;
mod callbacks;
mod concurrency;
mod fairness;
mod fencing;
mod idempotency;
mod isolation;
mod keys;
mod kv;
mod lifecycle;
mod pages;
mod queues;
mod schedules;
mod sqlite;
mod support;
mod tenants;
mod unique;
mod usage;
mod waiting;

use std::future::Future;
use std::sync::Arc;
use wasmq::store::Store;

use backends::BACKENDS;

/// Runs `case` once per backend, each time with the URL of a fresh, empty
/// database (dropped when the case ends).
async fn on_every_database<F: Future<Output = ()>>(case: impl Fn(String) -> F) {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let db = match (backend.fresh)(dir.path()).await {
            Ok(db) => db,
            Err(why) => {
                backends::unavailable(backend, &why);
                continue;
            }
        };
        eprintln!("running on the {} backend ({})", backend.name, db.url);
        case(db.url.clone()).await;
    }
}

/// Runs `case` once per backend, each time on a fresh store.
async fn on_every_backend<F: Future<Output = ()>>(case: impl Fn(Arc<dyn Store>) -> F) {
    let case = &case;
    on_every_database(|url| async move {
        let store = wasmq::store::connect(&url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
        case(store).await;
    })
    .await;
}

/// One `#[tokio::test]` per case, run on every backend.
macro_rules! cases {
    ($($test:ident => $case:path,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                on_every_backend($case).await;
            }
        )*
    };
}

/// One multi-threaded `#[tokio::test]` per case that opens its own stores
/// (`async fn(String)`, given the database's URL), run on every backend.
macro_rules! url_cases {
    ($($test:ident => $case:path,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                on_every_database($case).await;
            }
        )*
    };
}

cases! {
    meets_the_store_contract => lifecycle::exercise,
    watches_jobs_and_lists_them_in_bounded_pages => pages::exercise_watch_and_pages,
    fences_stale_claims => fencing::fencing,
    stores_a_claim_made_in_the_insert => fencing::leased_in_the_insert,
    meets_the_idempotency_and_batch_total_contract => idempotency::exercise_idempotency_and_batch_totals,
    keeps_a_bounded_alias_history => aliases::exercise_alias_history,
    keeps_tenants_and_their_tokens => tenants::exercise_tenants,
    records_every_callback_state => callbacks::exercise_callback_states,
    reports_each_batch_done_once => callbacks::reports_each_batch_done_once,
    counts_usage_of_completions_cancels_modules_and_callbacks => usage::exercise_completions,
    counts_the_fuel_of_fenced_runs_once => usage::exercise_fenced_runs,
    sums_a_completion_batch_per_tenant_and_day => usage::exercise_two_tenants,
    counts_waiting_jobs_per_tenant => waiting::exercise_waiting_per_tenant,
    keeps_signing_keys_per_tenant => keys::exercise_keys,
    remembers_signed_requests_within_their_window => keys::exercise_seen_signatures,
    keeps_key_value_state_per_tenant_and_store => kv::exercise_kv,
    holds_key_value_writes_to_their_limits_and_counts_them => kv::exercise_kv_limits,
    keeps_write_only_secrets_per_alias => kv::exercise_secrets,
    claims_share_workers_across_tenants_by_weight => fairness::claims_share_by_weight,
    claims_apply_priorities_within_a_tenant => fairness::priorities_apply_within_a_tenant,
    claims_hold_max_running_even_when_alone => fairness::max_running_holds_even_alone,
    claims_give_no_share_to_delayed_work => fairness::delayed_work_takes_no_share,
    keeps_every_scoped_record_to_its_tenant => isolation::exercise_tenant_isolation,
    claims_only_the_queues_a_node_consumes => queues::chosen_queues,
    claims_hold_a_queue_limit_counted_across_nodes => queues::queue_limit_counts_every_node,
    claims_take_limited_jobs_only_for_idle_workers => queues::limited_jobs_only_for_idle_workers,
    keeps_the_node_registry => queues::node_registry,
    starts_nothing_of_a_paused_queue => queues::paused_queue_starts_nothing,
    spends_a_queue_rate_from_one_bucket => queues::rate_is_one_bucket_for_every_claimer,
    holds_a_queue_to_the_smaller_of_its_limits => queues::concurrency_and_rate_together,
    lists_queue_controls_and_depths => queues::queue_controls_and_depths,
    retries_cancels_and_deletes_what_a_filter_matches => bulk::bulk_actions_take_what_their_filter_matches,
    bounds_bulk_actions_by_creation_time => bulk::bulk_filters_by_creation_time,
    deletes_ended_jobs_and_finished_batches => bulk::deletes_ended_jobs_and_finished_batches,
    answers_the_matching_job_of_a_unique_insert => unique::matching_jobs_are_answered_instead_of_inserted,
    makes_one_job_per_unique_key_in_a_batch => unique::a_batch_makes_one_job_per_key,
    keeps_lists_and_fires_schedules => schedules::schedules_are_kept_listed_and_fired,
    holds_an_alias_limit_across_claimers => alias_limits::an_alias_limit_holds_across_claimers,
    bounds_an_alias_by_its_limits_and_its_queues => alias_limits::an_alias_and_its_queue_both_bound_it,
    spends_an_alias_rate_from_one_bucket => alias_limits::an_alias_rate_is_one_bucket,
}

url_cases! {
    concurrent_claims_through_two_stores_take_each_job_once => concurrency::claims_take_each_job_once,
    concurrent_claims_through_two_stores_hold_max_running => concurrency::claims_hold_max_running,
    racing_inserts_of_one_idempotency_key_make_one_job => concurrency::idempotency_key_races,
    racing_unique_inserts_through_two_stores_make_one_job => unique::racing_unique_inserts_make_one_job,
    racing_firings_through_two_stores_fire_each_due_time_once => schedules::racing_firings_fire_each_due_time_once,
    batches_sharing_keys_in_opposite_orders_both_succeed => concurrency::batches_sharing_keys_in_opposite_orders,
    a_tenant_deleted_while_its_job_is_inserted_leaves_no_job => concurrency::tenant_deleted_while_its_job_is_inserted,
    two_stores_deliver_each_callback_once => concurrency::callbacks_delivered_once,
    a_batch_ended_through_two_stores_at_once_is_due => concurrency::batch_ended_by_both,
    a_stale_completion_from_another_store_is_fenced => concurrency::stale_completion_fenced,
    concurrent_claims_through_two_stores_hold_a_queue_limit => queues::queue_limit_holds_under_concurrent_claims,
}
