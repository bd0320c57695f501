//! [`ScimTarget`]: a grant is the user's membership of a SCIM 2.0 Group
//! (RFC 7643/7644): the user and the group are found by filter
//! (`userName eq "…"`, `displayName eq "…"`), membership is changed with
//! `PATCH /Groups/{id}` `add` / `remove` of `members` (RFC 7644 §3.5.2) and
//! read back from the group's `members`. Errors are reported as the
//! server's RFC 7644 §3.12 error (`status`, `scimType`, `detail`).

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::MAX_TIMEOUT;
use super::targets::{Access, Op, Target};
use crate::outbound::Outbound;

const SCIM_JSON: &str = "application/scim+json";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long a group's id found by its displayName is reused. Bounded, so
/// a group renamed and another given its name is followed within a minute;
/// an id the server no longer knows is forgotten at its first error.
const GROUP_ID_TTL: Duration = Duration::from_secs(60);

/// Applies grants as SCIM group memberships.
pub struct ScimTarget {
    base: String,
    token: String,
    client: Outbound,
    timeout: Duration,
    /// displayName → (id, when found): one lookup fewer per operation.
    group_ids: Mutex<HashMap<String, (String, Instant)>>,
}

/// A SCIM filter string literal: `"`, with `\` and `"` escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl ScimTarget {
    /// A service at `base_url` (`…/scim/v2`), called with `token`.
    pub fn new(base_url: &str, token: &str) -> Result<Self, String> {
        let client = Outbound::new(None).map_err(|e| e.to_string())?;
        Self::with_client(base_url, token, client)
    }

    /// As [`ScimTarget::new`], calling through `client` (which may trust
    /// a private CA).
    pub fn with_client(base_url: &str, token: &str, client: Outbound) -> Result<Self, String> {
        let base = base_url.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base.parse().map_err(|e| format!("`{base}`: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("`{base}`: must be an http:// or https:// URL"));
        }
        Ok(ScimTarget {
            base,
            token: token.to_string(),
            client,
            timeout: MAX_TIMEOUT,
            group_ids: Mutex::new(HashMap::new()),
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", SCIM_JSON)
            .header("content-type", SCIM_JSON)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| e.to_string())?;
        let answer = self
            .client
            .send(req, self.timeout, MAX_BODY)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let body = answer.body.map_err(|e| format!("{method} {path}: {e}"))?;
        let v: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        if answer.status.is_success() {
            return Ok(v);
        }
        // RFC 7644 §3.12.
        let text = |k: &str| v[k].as_str().map(str::to_string);
        Err(format!(
            "{method} {path}: {}{}{}",
            answer.status,
            text("scimType")
                .map(|t| format!(" {t}"))
                .unwrap_or_default(),
            text("detail").map(|d| format!(": {d}")).unwrap_or_default()
        ))
    }

    /// The id of the one resource of `kind` whose `attr` equals `value`.
    async fn find(&self, kind: &str, attr: &str, value: &str) -> Result<String, String> {
        self.find_opt(kind, attr, value)
            .await?
            .ok_or_else(|| format!("no {kind} has {attr} eq {}", quoted(value)))
    }

    /// Like [`ScimTarget::find`], `None` when nothing matches: a user or
    /// group that does not exist holds no membership to remove.
    async fn find_opt(
        &self,
        kind: &str,
        attr: &str,
        value: &str,
    ) -> Result<Option<String>, String> {
        let filter = format!("{attr} eq {}", quoted(value));
        let v = self
            .call(
                "GET",
                &format!("/{kind}?filter={}&attributes=id", encode(&filter)),
                None,
            )
            .await?;
        let found: Vec<&str> = v["Resources"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect())
            .unwrap_or_default();
        match found.as_slice() {
            [one] => Ok(Some(one.to_string())),
            [] => Ok(None),
            _ => Err(format!("{} {kind} have {filter}; need one", found.len())),
        }
    }

    async fn group_members(&self, group_id: &str) -> Result<BTreeSet<String>, String> {
        let v = self
            .call(
                "GET",
                &format!("/Groups/{}?attributes=members", encode(group_id)),
                None,
            )
            .await?;
        Ok(v["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["value"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn patch(&self, group_id: &str, op: Value) -> Result<(), String> {
        self.call(
            "PATCH",
            &format!("/Groups/{}", encode(group_id)),
            Some(json!({"schemas": [PATCH_OP], "Operations": [op]})),
        )
        .await
        .map(|_| ())
    }

    /// The group's id, reused for [`GROUP_ID_TTL`]; `None` when no group
    /// has that displayName.
    async fn group_id(&self, name: &str) -> Result<Option<String>, String> {
        let cached = self.group_ids.lock().ok().and_then(|m| {
            m.get(name)
                .filter(|(_, at)| at.elapsed() < GROUP_ID_TTL)
                .map(|(id, _)| id.clone())
        });
        if cached.is_some() {
            return Ok(cached);
        }
        let id = self.find_opt("Groups", "displayName", name).await?;
        if let (Some(id), Ok(mut m)) = (&id, self.group_ids.lock()) {
            m.insert(name.to_string(), (id.clone(), Instant::now()));
        }
        Ok(id)
    }

    /// Run `op` on the group's id; an error forgets the id, so the next
    /// attempt looks the group up again (deleted and made anew, say).
    async fn on_group<T, F, Fut>(&self, name: &str, id: &str, op: F) -> Result<T, String>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let r = op(id.to_string()).await;
        if r.is_err()
            && let Ok(mut m) = self.group_ids.lock()
        {
            m.remove(name);
        }
        r
    }

    async fn group(&self, name: &str) -> Result<String, String> {
        self.group_id(name)
            .await?
            .ok_or_else(|| format!("no Groups has displayName eq {}", quoted(name)))
    }

    async fn ids(&self, a: &Access) -> Result<(String, String), String> {
        let user = self.find("Users", "userName", a.account()).await?;
        let group = self.group(&a.target).await?;
        Ok((user, group))
    }

    /// The ids, or `None` when the user or the group does not exist.
    async fn ids_opt(&self, a: &Access) -> Result<Option<(String, String)>, String> {
        let Some(user) = self.find_opt("Users", "userName", a.account()).await? else {
            return Ok(None);
        };
        let Some(group) = self.group_id(&a.target).await? else {
            return Ok(None);
        };
        Ok(Some((user, group)))
    }

    /// Remove `user` from the group: the PATCH first (one request when it
    /// is a member); a refused PATCH counts as done only if the group
    /// shows the user is not a member (RFC 7644 lets a server answer
    /// `noTarget` for a member already gone).
    async fn remove_id(&self, name: &str, group: &str, user: &str) -> Result<(), String> {
        self.on_group(name, group, |g| async move {
            let op = json!({"op": "remove", "path": format!("members[value eq {}]", quoted(user))});
            match self.patch(&g, op).await {
                Ok(()) => Ok(()),
                Err(e) if !self.group_members(&g).await?.contains(user) => {
                    tracing::debug!(error = %e, "SCIM remove of a member already gone");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
        .await
    }
}

impl Target for ScimTarget {
    fn apply<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            let (user, group) = self.ids(a).await?;
            self.on_group(&a.target, &group, |g| async move {
                if self.group_members(&g).await?.contains(&user) {
                    return Ok(());
                }
                self.patch(
                    &g,
                    json!({"op": "add", "path": "members", "value": [{"value": user}]}),
                )
                .await
            })
            .await
        })
    }

    fn remove<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            match self.ids_opt(a).await? {
                Some((user, group)) => self.remove_id(&a.target, &group, &user).await,
                None => Ok(()),
            }
        })
    }

    fn present<'a>(&'a self, a: &'a Access) -> Op<'a, Option<bool>> {
        Box::pin(async move {
            match self.ids_opt(a).await? {
                Some((user, group)) => {
                    let members = self
                        .on_group(&a.target, &group, |g| async move {
                            self.group_members(&g).await
                        })
                        .await?;
                    Ok(Some(members.contains(&user)))
                }
                None => Ok(Some(false)),
            }
        })
    }

    fn account<'a>(&'a self, a: &'a Access) -> Op<'a, String> {
        Box::pin(async move { self.find("Users", "userName", a.account()).await })
    }

    fn members<'a>(&'a self, target: &'a str) -> Op<'a, Option<BTreeSet<String>>> {
        Box::pin(async move {
            let group = self.group(target).await?;
            let members = self
                .on_group(
                    target,
                    &group,
                    |g| async move { self.group_members(&g).await },
                )
                .await?;
            Ok(Some(members))
        })
    }

    fn remove_account<'a>(&'a self, target: &'a str, account: &'a str) -> Op<'a, ()> {
        Box::pin(async move {
            let group = self.group(target).await?;
            self.remove_id(target, &group, account).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_cannot_break_out_of_the_filter_string() {
        assert_eq!(
            quoted(r#"a" or userName pr or "x"#),
            r#""a\" or userName pr or \"x""#
        );
        assert_eq!(quoted(r"a\"), r#""a\\""#);
    }

    #[test]
    fn scim_base_urls_must_be_http_or_https() {
        assert!(ScimTarget::new("ftp://x/scim", "t").is_err());
        assert!(ScimTarget::new("http://127.0.0.1:1/scim/v2/", "t").is_ok());
    }
}
