//! [`PostgresTarget`]: a grant is `GRANT role TO login`, read back in
//! `pg_auth_members`; with `dynamic = true` the login is a role made for
//! the grant (`LOGIN`, `VALID UNTIL` its expiry, the password given as a
//! SCRAM verifier) and dropped at its end, Vault's model.
//!
//! One connection per operation: provisioning is rare next to decisions,
//! and a fresh connection after a database restart needs no pool repair.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::targets::{Access, Op, Target};

/// Applies grants as PostgreSQL role memberships.
pub struct PostgresTarget {
    url: String,
    dynamic: bool,
}

impl PostgresTarget {
    /// A target administered through `url` (a role allowed to `GRANT` the
    /// mapped roles and, for `dynamic`, `CREATEROLE`).
    pub fn new(url: &str, dynamic: bool) -> Result<Self, String> {
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        Ok(PostgresTarget {
            url: url.to_string(),
            dynamic,
        })
    }

    async fn client(&self) -> Result<Client, String> {
        let mut cfg: tokio_postgres::Config = self.url.parse().map_err(|e| format!("{e}"))?;
        cfg.connect_timeout(Duration::from_secs(5));
        let (client, conn) = cfg.connect(NoTls).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

/// `name` as a quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `s` as a quoted SQL string literal (standard_conforming_strings).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `ms` (Unix) as an ISO timestamp PostgreSQL reads, UTC.
fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn role_exists(c: &Client, role: &str) -> Result<bool, String> {
    let row = c
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.is_some())
}

async fn is_member(c: &Client, role: &str, member: &str) -> Result<bool, String> {
    let row = c
        .query_opt(
            "SELECT 1 FROM pg_auth_members m
               JOIN pg_roles r ON r.oid = m.roleid
               JOIN pg_roles u ON u.oid = m.member
              WHERE r.rolname = $1 AND u.rolname = $2",
            &[&role, &member],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.is_some())
}

impl Target for PostgresTarget {
    fn apply<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            let c = self.client().await?;
            let login = a.account();
            if self.dynamic {
                let (Some(verifier), Some(_)) = (&a.verifier, &a.login) else {
                    return Err("a dynamic grant without its login".into());
                };
                // Idempotent: made once; a repeat finds it (and re-sets the
                // same verifier and expiry).
                let verb = if role_exists(&c, login).await? {
                    "ALTER"
                } else {
                    "CREATE"
                };
                let until = a
                    .expires_at
                    .map(|e| format!(" VALID UNTIL {}", literal(&timestamp(e))))
                    .unwrap_or_default();
                let sql = format!(
                    "{verb} ROLE {} LOGIN PASSWORD {}{until}",
                    ident(login),
                    literal(verifier)
                );
                if let Err(e) = c.batch_execute(&sql).await {
                    // Another replica made it between our check and ours.
                    if !role_exists(&c, login).await? {
                        return Err(e.to_string());
                    }
                }
            } else if !role_exists(&c, login).await? {
                return Err(format!("the login role `{login}` does not exist"));
            }
            if !is_member(&c, &a.target, login).await? {
                c.batch_execute(&format!("GRANT {} TO {}", ident(&a.target), ident(login)))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn remove<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            let c = self.client().await?;
            let login = a.account();
            if !role_exists(&c, login).await? {
                return Ok(());
            }
            if self.dynamic && a.login.is_some() {
                // Ending the sessions too: a dropped role's open session
                // would keep its privileges until it disconnects.
                c.batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(login)))
                    .await
                    .map_err(|e| e.to_string())?;
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    &[&login],
                )
                .await
                .map_err(|e| e.to_string())?;
                c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(login)))
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            if is_member(&c, &a.target, login).await? {
                c.batch_execute(&format!(
                    "REVOKE {} FROM {}",
                    ident(&a.target),
                    ident(login)
                ))
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn present<'a>(&'a self, a: &'a Access) -> Op<'a, Option<bool>> {
        Box::pin(async move {
            let c = self.client().await?;
            Ok(Some(is_member(&c, &a.target, a.account()).await?))
        })
    }

    fn members<'a>(&'a self, target: &'a str) -> Op<'a, Option<BTreeSet<String>>> {
        Box::pin(async move {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT u.rolname FROM pg_auth_members m
                       JOIN pg_roles r ON r.oid = m.roleid
                       JOIN pg_roles u ON u.oid = m.member
                      WHERE r.rolname = $1",
                    &[&target],
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(Some(rows.iter().map(|r| r.get::<_, String>(0)).collect()))
        })
    }

    fn remove_account<'a>(&'a self, target: &'a str, account: &'a str) -> Op<'a, ()> {
        Box::pin(async move {
            let c = self.client().await?;
            c.batch_execute(&format!("REVOKE {} FROM {}", ident(target), ident(account)))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted_against_injection() {
        assert_eq!(
            ident(r#"app"; DROP ROLE x; --"#),
            r#""app""; DROP ROLE x; --""#
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00+00");
    }
}
