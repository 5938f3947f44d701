//! `nodes`: the node registry (see `Store::node_beat`).

use super::SqliteStore;
use crate::store::rows::{NODE_COLUMNS, NodeRow, node_queues};
use crate::store::{NodeBeat, NodeRecord, StoreResult};

pub(super) async fn beat(s: &SqliteStore, b: NodeBeat) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    sqlx::query(
        "INSERT INTO nodes (id, role, version, host, pid, addr, queues, slots, busy, started_at, heartbeat_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO UPDATE SET role = excluded.role, version = excluded.version, host = excluded.host,
            pid = excluded.pid, addr = excluded.addr, queues = excluded.queues, slots = excluded.slots,
            busy = excluded.busy, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
    )
    .bind(&b.id)
    .bind(&b.role)
    .bind(&b.version)
    .bind(&b.host)
    .bind(i64::from(b.pid))
    .bind(&b.addr)
    .bind(node_queues(&b))
    .bind(i64::from(b.slots))
    .bind(i64::from(b.busy))
    .bind(b.started_at)
    .bind(b.now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM nodes WHERE heartbeat_at < ?1").bind(b.forget_before).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn stop(s: &SqliteStore, id: &str, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE nodes SET stopped_at = ?1, busy = 0 WHERE id = ?2")
        .bind(now)
        .bind(id)
        .execute(&s.writer)
        .await?;
    Ok(())
}

pub(super) async fn list(s: &SqliteStore) -> StoreResult<Vec<NodeRecord>> {
    let rows: Vec<NodeRow> =
        sqlx::query_as(&format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY id")).fetch_all(&s.reader).await?;
    rows.into_iter().map(NodeRecord::try_from).collect()
}
