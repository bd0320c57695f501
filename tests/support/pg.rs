//! A fresh PostgreSQL database per test, dropped afterwards.
//!
//! The server is the one on the machine (`.ci/run` starts it); its admin URL
//! is `$JITGATE_TEST_PG` or `postgres://postgres@127.0.0.1:5432/postgres`.
//! An unreachable server fails the test loudly: the PostgreSQL variants are
//! part of the suite, not optional extras.

use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The admin connection URL.
pub fn admin_url() -> String {
    std::env::var("JITGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Run `sql` on the admin database (autocommit), panicking with a clear
/// message if the server cannot be reached.
pub fn admin(sql: &str) {
    exec(&admin_url(), sql).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is required by this test and failed: {e} (start it: `.ci/run` does)",
            admin_url()
        )
    });
}

/// Connect to `url` on a runtime of its own, hand the client to `f`, and
/// wait for the connection to close once `f` is done with it.
fn with_client<T, F, Fut>(url: &str, f: F) -> Result<T, String>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let task = tokio::spawn(conn);
        // `f` owns the client: dropping it ends the connection task.
        let r = f(client).await;
        let _ = task.await;
        r
    })
}

/// Run `sql` against `url`.
pub fn exec(url: &str, sql: &str) -> Result<(), String> {
    with_client(url, |client| async move {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            })
    })
}

/// Query `sql` against `url`, returning each row's columns as text.
pub fn query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    with_client(url, |client| async move {
        let msgs = client.simple_query(sql).await.map_err(|e| e.to_string())?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
                }
                _ => None,
            })
            .collect())
    })
}

/// A database that exists for the life of this value.
pub struct TestDb {
    /// Its name (`jitgate_test_<pid>_<n>`).
    pub name: String,
    /// Its URL, for `store = "…"`.
    pub url: String,
}

impl TestDb {
    /// Create a fresh, empty database.
    pub fn create() -> TestDb {
        let name = format!(
            "jitgate_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        // Two calls: CREATE DATABASE refuses to run in a multi-statement batch.
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        admin(&format!("CREATE DATABASE {name}"));
        let base = admin_url();
        let url = match base.rfind('/') {
            Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
            _ => format!("{base}/{name}"),
        };
        TestDb { name, url }
    }

    /// Rows of `sql` in this database.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query(&self.url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Run `sql` in this database.
    pub fn exec(&self, sql: &str) -> Result<(), String> {
        exec(&self.url, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = exec(
            &admin_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
