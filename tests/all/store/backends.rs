//! The backends the conformance suite runs on, and how each gets a fresh,
//! empty database for one case.
//!
//! PostgreSQL: every case gets its own database, `wasmq_t_<random>`, created
//! through the maintenance URL (`WASMQ_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped `WITH (FORCE)`
//! when the case ends, passed or failed. A server that cannot be reached fails
//! the case under `CI=true`, and is skipped loudly otherwise (the other
//! backends still run).

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;

use sqlx::{Connection, PgConnection};

use crate::support::postgres_admin_url;

/// A fresh database being made: its URL, or why it cannot be.
pub type Making = Pin<Box<dyn Future<Output = Result<Fresh, String>> + Send>>;

/// A backend the suite runs against.
pub struct Backend {
    /// Named in the output of a failing case.
    pub name: &'static str,
    /// A fresh, empty database, given a temp directory the case owns (removed
    /// when it ends); `Err` says why this backend cannot run here.
    pub fresh: fn(&Path) -> Making,
}

/// Every backend there is.
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: "sqlite",
        fresh: |dir| {
            let url = format!("sqlite://{}", dir.join("store.db").display());
            Box::pin(async move { Ok(Fresh { url, dropped: None }) })
        },
    },
    Backend { name: "postgres", fresh: |_| Box::pin(fresh_postgres()) },
];

/// One case's database: its URL; whatever must go when the case ends goes
/// when this is dropped.
pub struct Fresh {
    /// Opened with `wasmq::store::connect`, as often as the case likes.
    pub url: String,
    /// A PostgreSQL database to drop: (maintenance URL, name).
    dropped: Option<(String, String)>,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let Some((admin, name)) = self.dropped.take() else { return };
        // Dropped on a thread of its own (with a runtime of its own), so a
        // case that panicked inside a runtime still drops its database.
        let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::query(&drop_sql).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop the test database {name}: {done:?}");
        }
    }
}

async fn fresh_postgres() -> Result<Fresh, String> {
    let admin = postgres_admin_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .map_err(|e| format!("PostgreSQL at {admin} (WASMQ_TEST_POSTGRES) cannot be reached: {e}"))?;
    let name = format!("wasmq_t_{:016x}", fastrand::u64(..));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("creating the test database {name} at {admin}: {e}"))?;
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).map_err(|e| format!("WASMQ_TEST_POSTGRES {admin:?}: {e}"))?;
    url.set_path(&name);
    Ok(Fresh { url: url.into(), dropped: Some((admin, name)) })
}

/// What a case does when `backend` cannot run here (`why`): under `CI=true`
/// it fails, naming the reason; elsewhere it says loudly that it skipped, on
/// the real stderr (a passing test's `eprintln!` would be captured, unseen).
pub fn unavailable(backend: &Backend, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the {} backend is required under CI=true: {why}", backend.name);
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {}: {why}", backend.name);
}
