//! `queues`: the controls set on queues (see `Store::queue_update`).

use super::SqliteStore;
use crate::domain::TenantId;
use crate::store::rows::{LimitValues, QUEUE_COLUMNS, QUEUE_LIST, QueueRow, depth_sql, depths as depth_rows};
use crate::store::{QueueChange, QueueDepth, QueueRecord, QueueUpdate, StoreResult};

pub(super) async fn list(s: &SqliteStore) -> StoreResult<Vec<QueueRecord>> {
    let rows: Vec<QueueRow> = sqlx::query_as(&QUEUE_LIST).fetch_all(&s.reader).await?;
    rows.into_iter().map(QueueRecord::try_from).collect()
}

pub(super) async fn update(s: &SqliteStore, p: QueueUpdate) -> StoreResult<QueueRecord> {
    let row: QueueRow = match &p.change {
        QueueChange::Paused(paused) => {
            sqlx::query_as(&format!(
                "INSERT INTO queues (name, paused, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
                 RETURNING {QUEUE_COLUMNS}"
            ))
            .bind(&p.name)
            .bind(paused)
            .bind(p.now)
            .fetch_one(&s.writer)
            .await?
        }
        QueueChange::Limits(limits) => {
            let v = LimitValues::of(limits, p.now);
            // The same rate again keeps its bucket: re-applying a file of
            // limits must not hand out a fresh burst.
            sqlx::query_as(&format!(
                "INSERT INTO queues (name, concurrency, rate_max, rate_per_ms, rate_burst, tokens, refilled_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
                    tokens = CASE WHEN queues.rate_max IS excluded.rate_max AND queues.rate_per_ms IS excluded.rate_per_ms
                        AND queues.rate_burst IS excluded.rate_burst
                        THEN queues.tokens ELSE excluded.tokens END,
                    refilled_at = CASE WHEN queues.rate_max IS excluded.rate_max AND queues.rate_per_ms IS excluded.rate_per_ms
                        AND queues.rate_burst IS excluded.rate_burst
                        THEN queues.refilled_at ELSE excluded.refilled_at END,
                    rate_max = excluded.rate_max, rate_per_ms = excluded.rate_per_ms, rate_burst = excluded.rate_burst,
                    updated_at = excluded.updated_at
                 RETURNING {QUEUE_COLUMNS}"
            ))
            .bind(&p.name)
            .bind(v.concurrency)
            .bind(v.rate_max)
            .bind(v.rate_per_ms)
            .bind(v.rate_burst)
            .bind(v.tokens)
            .bind(v.refilled_at)
            .bind(p.now)
            .fetch_one(&s.writer)
            .await?
        }
    };
    QueueRecord::try_from(row)
}

pub(super) async fn depths(s: &SqliteStore, tenant: Option<&TenantId>) -> StoreResult<Vec<QueueDepth>> {
    let rows: Vec<(String, String, i64)> = match tenant {
        Some(t) => sqlx::query_as(&depth_sql("tenant = ?1")).bind(t.as_str()).fetch_all(&s.reader).await?,
        None => sqlx::query_as(&depth_sql("TRUE")).fetch_all(&s.reader).await?,
    };
    Ok(depth_rows(rows))
}
