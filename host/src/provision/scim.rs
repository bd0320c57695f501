//! [`ScimTarget`]: a grant is the user's membership of a SCIM 2.0 Group
//! (RFC 7643/7644): the user and the group are found by filter
//! (`userName eq "…"`, `displayName eq "…"`), membership is changed with
//! `PATCH /Groups/{id}` `add` / `remove` of `members` (RFC 7644 §3.5.2) and
//! read back from the group's `members`. Errors are reported as the
//! server's RFC 7644 §3.12 error (`status`, `scimType`, `detail`).

use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

use super::MAX_TIMEOUT;
use super::targets::{Access, Op, Target};
use crate::outbound::Outbound;

const SCIM_JSON: &str = "application/scim+json";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Applies grants as SCIM group memberships.
pub struct ScimTarget {
    base: String,
    token: String,
    client: Outbound,
    timeout: Duration,
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
        let base = base_url.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base.parse().map_err(|e| format!("`{base}`: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("`{base}`: must be an http:// or https:// URL"));
        }
        Ok(ScimTarget {
            base,
            token: token.to_string(),
            client: Outbound::new(None).map_err(|e| e.to_string())?,
            timeout: MAX_TIMEOUT,
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

    async fn ids(&self, a: &Access) -> Result<(String, String), String> {
        let user = self.find("Users", "userName", a.account()).await?;
        let group = self.find("Groups", "displayName", &a.target).await?;
        Ok((user, group))
    }

    /// The ids, or `None` when the user or the group does not exist.
    async fn ids_opt(&self, a: &Access) -> Result<Option<(String, String)>, String> {
        let Some(user) = self.find_opt("Users", "userName", a.account()).await? else {
            return Ok(None);
        };
        let Some(group) = self.find_opt("Groups", "displayName", &a.target).await? else {
            return Ok(None);
        };
        Ok(Some((user, group)))
    }

    async fn remove_id(&self, group: &str, user: &str) -> Result<(), String> {
        if !self.group_members(group).await?.contains(user) {
            return Ok(());
        }
        self.patch(
            group,
            json!({"op": "remove", "path": format!("members[value eq {}]", quoted(user))}),
        )
        .await
    }
}

impl Target for ScimTarget {
    fn apply<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            let (user, group) = self.ids(a).await?;
            if self.group_members(&group).await?.contains(&user) {
                return Ok(());
            }
            self.patch(
                &group,
                json!({"op": "add", "path": "members", "value": [{"value": user}]}),
            )
            .await
        })
    }

    fn remove<'a>(&'a self, a: &'a Access) -> Op<'a, ()> {
        Box::pin(async move {
            match self.ids_opt(a).await? {
                Some((user, group)) => self.remove_id(&group, &user).await,
                None => Ok(()),
            }
        })
    }

    fn present<'a>(&'a self, a: &'a Access) -> Op<'a, Option<bool>> {
        Box::pin(async move {
            match self.ids_opt(a).await? {
                Some((user, group)) => Ok(Some(self.group_members(&group).await?.contains(&user))),
                None => Ok(Some(false)),
            }
        })
    }

    fn account<'a>(&'a self, a: &'a Access) -> Op<'a, String> {
        Box::pin(async move { self.find("Users", "userName", a.account()).await })
    }

    fn members<'a>(&'a self, target: &'a str) -> Op<'a, Option<BTreeSet<String>>> {
        Box::pin(async move {
            let group = self.find("Groups", "displayName", target).await?;
            Ok(Some(self.group_members(&group).await?))
        })
    }

    fn remove_account<'a>(&'a self, target: &'a str, account: &'a str) -> Op<'a, ()> {
        Box::pin(async move {
            let group = self.find("Groups", "displayName", target).await?;
            self.remove_id(&group, account).await
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
