//! [`LdapTarget`]: a grant is the user's DN in a group's `member` (or
//! `uniqueMember`, …) attribute, added and removed with LDAP Modify and
//! read back with Compare (OpenLDAP, Active Directory, any LDAPv3 server).
//!
//! One connection (and bind) per operation: rare next to decisions, and a
//! directory that restarted needs no reconnect logic.

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::targets::{Access, Op, Target, read_back};

/// LDAP result codes that make an add or delete a no-op (already done).
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const NO_SUCH_ATTRIBUTE: u32 = 16;
/// The group does not exist: it holds no membership to remove.
const NO_SUCH_OBJECT: u32 = 32;

/// How a subject becomes a DN.
#[derive(Debug, Clone)]
pub enum UserLookup {
    /// `user-dn`, `{subject}` replaced by the DN-escaped subject.
    Template(String),
    /// `user-search-base` + `user-filter`, `{subject}` replaced by the
    /// filter-escaped subject; exactly one entry must match.
    Search {
        /// Base DN.
        base: String,
        /// Filter.
        filter: String,
    },
}

/// Applies grants as LDAP group memberships.
pub struct LdapTarget {
    url: String,
    bind_dn: String,
    password: String,
    user: UserLookup,
    member_attribute: String,
    starttls: bool,
    /// The system's roots plus `ca-file`: ldap3's own default would
    /// ignore the operator's private CA.
    tls: Arc<rustls::ClientConfig>,
}

impl LdapTarget {
    /// A directory at `url` (`ldap://` or `ldaps://`), bound as `bind_dn`;
    /// its certificate (`ldaps://`, or `ldap://` with `starttls`) checked
    /// against the system's roots and those in `ca_file`. The error is
    /// (the config key at fault, why).
    pub fn new(
        url: &str,
        bind_dn: &str,
        password: &str,
        user: UserLookup,
        member_attribute: Option<&str>,
        starttls: bool,
        ca_file: Option<&Path>,
    ) -> Result<Self, (&'static str, String)> {
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(("url", "must be an ldap:// or ldaps:// URL".into()));
        }
        let tls =
            crate::outbound::tls_client_config(ca_file).map_err(|e| ("ca-file", e.to_string()))?;
        Ok(LdapTarget {
            tls: Arc::new(tls),
            url: url.to_string(),
            bind_dn: bind_dn.to_string(),
            password: password.to_string(),
            user,
            member_attribute: member_attribute.unwrap_or("member").to_string(),
            starttls,
        })
    }

    async fn connect(&self) -> Result<Ldap, String> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(5))
            .set_starttls(self.starttls && self.url.starts_with("ldap://"))
            .set_config(self.tls.clone());
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.url))?;
        ldap3::drive!(conn);
        ldap.simple_bind(&self.bind_dn, &self.password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| format!("binding as {}: {e}", self.bind_dn))?;
        Ok(ldap)
    }

    async fn user_dn(&self, ldap: &mut Ldap, subject: &str) -> Result<String, String> {
        self.user_dn_opt(ldap, subject)
            .await?
            .ok_or_else(|| format!("no directory user is `{subject}`"))
    }

    /// The user's DN; `None` when a search finds nobody (who then holds no
    /// membership to remove).
    async fn user_dn_opt(&self, ldap: &mut Ldap, subject: &str) -> Result<Option<String>, String> {
        match &self.user {
            UserLookup::Template(t) => Ok(Some(t.replace("{subject}", &ldap3::dn_escape(subject)))),
            UserLookup::Search { base, filter } => {
                let filter = user_filter(filter, subject);
                let (entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .await
                    .and_then(|r| r.success())
                    .map_err(|e| format!("searching {filter}: {e}"))?;
                match entries.len() {
                    1 => Ok(entries
                        .into_iter()
                        .map(SearchEntry::construct)
                        .map(|e| e.dn)
                        .next()),
                    0 => Ok(None),
                    n => Err(format!("{n} directory users match {filter}; need one")),
                }
            }
        }
    }

    /// Add or delete the membership over `ldap`; with `check`, read it
    /// back (Compare) on the same connection: one bind, and the same
    /// server behind a load balancer.
    async fn modify_on(
        &self,
        ldap: &mut Ldap,
        a: &Access,
        add: bool,
        check: bool,
    ) -> Result<(), String> {
        let dn = if add {
            self.user_dn(ldap, a.account()).await?
        } else {
            match self.user_dn_opt(ldap, a.account()).await? {
                Some(dn) => dn,
                None => return Ok(()),
            }
        };
        let values = HashSet::from([dn.as_str()]);
        let m = if add {
            Mod::Add(self.member_attribute.as_str(), values)
        } else {
            Mod::Delete(self.member_attribute.as_str(), values)
        };
        let r = ldap
            .modify(&a.target, vec![m])
            .await
            .map_err(|e| e.to_string())?;
        match r.rc {
            0 => {}
            ATTRIBUTE_OR_VALUE_EXISTS if add => {}
            NO_SUCH_ATTRIBUTE | NO_SUCH_OBJECT if !add => {}
            _ => return Err(format!("{} ({} {})", r.text, r.rc, a.target)),
        }
        if !check {
            return Ok(());
        }
        read_back(self.compare(ldap, &a.target, &dn).await?, add)
    }

    async fn modify(&self, a: &Access, add: bool, check: bool) -> Result<(), String> {
        let mut ldap = self.connect().await?;
        let r = self.modify_on(&mut ldap, a, add, check).await;
        let _ = ldap.unbind().await;
        r
    }

    /// Whether `group`'s member attribute holds `dn` (LDAP Compare).
    async fn compare(
        &self,
        ldap: &mut Ldap,
        group: &str,
        dn: &str,
    ) -> Result<Option<bool>, String> {
        let r = ldap
            .compare(group, &self.member_attribute, dn.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        match r.0.rc {
            6 => Ok(Some(true)),
            5 | NO_SUCH_ATTRIBUTE | NO_SUCH_OBJECT => Ok(Some(false)),
            rc => Err(format!("{} ({rc} comparing {group})", r.0.text)),
        }
    }
}

/// `user-filter` with `{subject}` replaced by the subject as an RFC 4515
/// filter value: it can add no clause and no wildcard.
fn user_filter(filter: &str, subject: &str) -> String {
    filter.replace("{subject}", &ldap3::ldap_escape(subject))
}

/// DNs compared as the directory would, near enough: case and the
/// spaces after separators do not matter.
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

impl Target for LdapTarget {
    fn apply<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(self.modify(a, true, false))
    }

    fn remove<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(self.modify(a, false, false))
    }

    fn apply_and_read_back<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(self.modify(a, true, true))
    }

    fn remove_and_read_back<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(self.modify(a, false, true))
    }

    fn present<'a>(&'a self, a: &'a Access) -> Op<'a, Option<bool>> {
        Box::pin(async move {
            let mut ldap = self.connect().await?;
            let r = match self.user_dn_opt(&mut ldap, a.account()).await {
                Ok(Some(dn)) => self.compare(&mut ldap, &a.target, &dn).await,
                Ok(None) => Ok(Some(false)),
                Err(e) => Err(e),
            };
            let _ = ldap.unbind().await;
            r
        })
    }

    fn account<'a>(&'a self, a: &'a Access) -> Op<'a, String> {
        Box::pin(async move {
            let mut ldap = self.connect().await?;
            let dn = self.user_dn(&mut ldap, a.account()).await?;
            let _ = ldap.unbind().await;
            Ok(normal_dn(&dn))
        })
    }

    fn members<'a>(&'a self, target: &'a str) -> Op<'a, Option<BTreeSet<String>>> {
        Box::pin(async move {
            let mut ldap = self.connect().await?;
            let (entries, _) = ldap
                .search(
                    target,
                    Scope::Base,
                    "(objectClass=*)",
                    vec![self.member_attribute.as_str()],
                )
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("reading {target}: {e}"))?;
            let _ = ldap.unbind().await;
            let attr = self.member_attribute.to_lowercase();
            // A groupOfNames needs one member, so directories keep a
            // placeholder (the group itself or the bind account): never a
            // stray.
            let keep = [normal_dn(target), normal_dn(&self.bind_dn)];
            Ok(Some(
                entries
                    .into_iter()
                    .map(SearchEntry::construct)
                    .flat_map(|e| {
                        e.attrs
                            .into_iter()
                            .filter(|(k, _)| k.to_lowercase() == attr)
                            .flat_map(|(_, v)| v)
                            .collect::<Vec<_>>()
                    })
                    .map(|dn| normal_dn(&dn))
                    .filter(|dn| !keep.contains(dn))
                    .collect(),
            ))
        })
    }

    fn remove_account<'a>(&'a self, target: &'a str, account: &'a str) -> Op<'a, ()> {
        Box::pin(async move {
            let mut ldap = self.connect().await?;
            let r = ldap
                .modify(
                    target,
                    vec![Mod::Delete(
                        self.member_attribute.as_str(),
                        HashSet::from([account]),
                    )],
                )
                .await
                .map_err(|e| e.to_string())?;
            let _ = ldap.unbind().await;
            match r.rc {
                0 | NO_SUCH_ATTRIBUTE => Ok(()),
                rc => Err(format!("{} ({rc})", r.text)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normal_dn("UID=Alice, ou=People,dc=Example, dc=org"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
    }

    #[test]
    fn a_subject_cannot_inject_into_the_user_filter() {
        let f = "(&(objectClass=person)(uid={subject}))";
        assert_eq!(
            user_filter(f, "*)(uid=*"),
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(
            user_filter(f, "a\\b\0"),
            "(&(objectClass=person)(uid=a\\5cb\\00))"
        );
        assert_eq!(
            user_filter(f, "alice"),
            "(&(objectClass=person)(uid=alice))"
        );
    }

    #[test]
    fn a_subject_cannot_inject_into_the_user_dn() {
        let t = UserLookup::Template("uid={subject},ou=people,dc=example,dc=org".into());
        let UserLookup::Template(t) = t else { return };
        let dn = t.replace("{subject}", &ldap3::dn_escape("x,ou=admins"));
        assert_eq!(dn, "uid=x\\2cou\\3dadmins,ou=people,dc=example,dc=org");
    }
}
