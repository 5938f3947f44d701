//! SQLite backend (the embedded default): WAL, `synchronous = NORMAL` (a commit
//! survives a process crash or `kill -9`; power loss may lose the last commits),
//! one writer connection and a small pool of readers.
//!
//! All writes go through the single writer connection, so write transactions
//! never race each other for SQLite's lock (a deferred transaction upgrading to a
//! writer fails at once with SQLITE_BUSY instead of waiting); and each takes the
//! lock up front (`BEGIN IMMEDIATE`), so writers in other processes on the same
//! file wait for it rather than fail.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

mod aliases;
mod batches;
mod bulk;
mod callbacks;
mod claim;
mod jobs;
mod keys;
mod kv;
mod leases;
mod list;
mod modules;
mod nodes;
mod queues;
mod schedules;
mod tenants;
mod usage;

use super::keys::*;
use super::records::*;
use super::tenants::*;
use super::usage::{UsageQuery, UsageRecord};
use super::{BackendError, Store, StoreError, StoreResult};
use crate::domain::{AliasName, Digest, KvStoreName, TenantId};

/// The SQLite store.
#[derive(Clone)]
pub(super) struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The database file and its identity when opened (`None` in memory).
    file: Option<(std::path::PathBuf, FileId)>,
}

/// Device and inode of a file: a file removed, or replaced by another at the
/// same path, no longer matches, though open connections still use the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    fn of(path: &std::path::Path) -> std::io::Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileId(m.dev(), m.ino()))
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://wasmq.db`)
    /// and applies pending migrations.
    pub(super) async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32000")
            // Read pages through a memory map instead of read(2) copies.
            .pragma("mmap_size", "268435456");
        // No ping before each use (sqlx's default): the connections are in
        // this process, and a ping is one more round trip to the connection's
        // thread on every store call, the idle dispatch's included.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(BackendError::new(e)))?;
        let file = options.get_filename().to_path_buf();
        let file = FileId::of(&file).ok().map(|id| (file, id));
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader, file })
    }

    /// A write transaction, holding SQLite's write lock from its first
    /// statement (`BEGIN IMMEDIATE`). In one process the single writer already
    /// runs them one at a time; another process (or a second store) on the
    /// same file then waits for the lock (`busy_timeout`) instead of failing:
    /// a deferred transaction that read first and writes second fails at once
    /// (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
    async fn tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

super::impl_store!(SqliteStore, {
    async fn job_list(&self, p: JobList) -> StoreResult<JobListPage> {
        list::job_list(&self.reader, p).await
    }
    async fn store_ping(&self) -> StoreResult<()> {
        if let Some((path, opened)) = &self.file {
            let now = FileId::of(path);
            if now.as_ref().ok() != Some(opened) {
                let why = match now {
                    Err(e) => e.to_string(),
                    Ok(_) => "another file is at its path".into(),
                };
                return Err(StoreError::Database(BackendError::new(format!(
                    "the database file {} is no longer the one opened at start ({why})",
                    path.display()
                ))));
            }
        }
        sqlx::query("SELECT COUNT(*) FROM sqlite_master").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }
});

#[cfg(test)]
mod tests {
    /// `scripts/sqlite-row-costs.py` measures the writer's ceiling with the
    /// statements every job costs; it must run the ones the server runs.
    #[test]
    fn the_row_cost_script_mirrors_the_insert_claim_and_completion() {
        let script = include_str!("../../../../scripts/sqlite-row-costs.py");
        let statement = |name: &str| {
            let start = script
                .find(&format!("{name} = \"\"\""))
                .or_else(|| script.find(&format!("{name} = f\"\"\"")))
                .unwrap_or_else(|| panic!("the script defines {name}"));
            let body = &script[start..];
            let body = &body[body.find("\"\"\"").unwrap() + 3..];
            let body = &body[..body.find("\"\"\"").unwrap()];
            normalize(&body.replace("{COLS}", crate::store::rows::JOB_COLUMNS))
        };
        assert_eq!(statement("INSERT"), normalize(super::jobs::INSERT));
        assert_eq!(statement("CLAIM"), normalize(&super::claim::CLAIM));
        assert_eq!(statement("COMPLETE"), normalize(&super::leases::COMPLETE));
        // The usage upsert is rendered from the counters in both.
        let listed = &script[script.find("COUNTERS = [").expect("the script lists COUNTERS")..];
        let listed = &listed[..listed.find(']').unwrap()];
        let names: Vec<&str> = listed.split('"').skip(1).step_by(2).collect();
        assert_eq!(names, crate::store::rows::USAGE_COUNTERS);
    }

    /// SQL with its layout removed: whitespace runs become one space, none
    /// inside parentheses' edges.
    fn normalize(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "(").replace(" )", ")")
    }
}
