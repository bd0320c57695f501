//! Extractors: who is calling ([`Principal`]) and what it sent (JSON bodies
//! and queries), each failing with the API's error shape. Handlers take
//! these as arguments and do nothing but translate.
//!
//! The caller is extracted from the request's parts before any body is
//! read, so an unauthenticated client never gets its body parsed.

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::Digest as _;
use std::sync::Arc;

use super::{ApiError, AppState, bearer, body_bytes, principal_of, refuse, refuse_because, server};
use crate::identity::{IdentityProviders, VerifiedTokens};
use crate::service::Principal;

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = principal_of(state, &parts.headers) {
            return Ok(p.clone());
        }
        // The route pattern, not the raw path: the tally is per endpoint,
        // and the raw path carries caller-chosen ids.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "?".into());
        let peer = server::peer().map(|a| a.ip());
        let token = bearer(&parts.headers);
        match token {
            Some(t) if !state.identities.is_empty() && IdentityProviders::looks_like_jwt(t) => {
                identity_principal(state, t.to_string())
                    .await
                    .map_err(|message| {
                        refuse_because(state, peer, "identity token refused", message, &route)
                    })
            }
            _ => Err(refuse(state, peer, token.is_some(), &route)),
        }
    }
}

/// The principal a token names (a configured API token, or an identity
/// provider's JWT), or why not. The console's sign-in goes through here:
/// a failure is counted, audited and rate-limited per address exactly like
/// a refused bearer token, so the form is no way around the API's limits.
pub(crate) async fn principal_for_token(
    state: &Arc<AppState>,
    token: &str,
) -> Result<Principal, String> {
    const ROUTE: &str = "/console/sign-in";
    let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    if let Some(p) = state.principals.get(&digest) {
        return Ok(p.clone());
    }
    let peer = server::peer().map(|a| a.ip());
    let refusal = |why: &'static str, message: String| {
        refuse_because(state, peer, why, message, ROUTE).message
    };
    if token.is_empty() {
        return Err(refusal("no bearer token", "no token given".into()));
    }
    if !state.identities.is_empty() && IdentityProviders::looks_like_jwt(token) {
        return identity_principal(state, token.to_string())
            .await
            .map_err(|m| refusal("identity token refused", m));
    }
    Err(refusal("unknown token", "unknown token".into()))
}

/// The principal an identity-provider JWT proves, or the 401 message. A
/// token verified before is answered from the cache on this thread (a few
/// µs); a new one is verified on a blocking thread, because verification
/// may fetch the provider's JWKS (at most once per refresh interval) and a
/// signature check alone costs up to a millisecond.
async fn identity_principal(state: &Arc<AppState>, token: String) -> Result<Principal, String> {
    let now = jsonwebtoken::get_current_timestamp();
    if let Some(id) = state
        .identities
        .cache()
        .get(&VerifiedTokens::key(&token), now)
    {
        return Ok(id.principal());
    }
    let identities = state.identities.clone();
    tokio::task::spawn_blocking(move || identities.verify(&token))
        .await
        .map_err(|e| format!("verifying the token failed: {e}"))?
        .map(|id| id.principal())
        .map_err(|e| e.to_string())
}

/// A JSON body parsed into `T`; an error names the field path
/// (`subject.colour`), or `body` for the whole.
pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty body reads as `{}` (actions whose body
/// is optional, such as approve and revoke).
pub struct OptionalJsonBody<T>(pub T);

/// A JSON body as a value tree, parsed strictly: duplicate keys refused
/// (two parsers could otherwise read one body two ways).
pub struct JsonValue(pub Value);

fn parse_typed<T: DeserializeOwned>(text: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            e.inner().to_string(),
        )
        .field(if field == "." { "body".into() } else { field })
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req.into_body()).await?;
        parse_typed(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req.into_body()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            parse_typed(b"{}").map(OptionalJsonBody)
        } else {
            parse_typed(&bytes).map(OptionalJsonBody)
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req.into_body()).await?;
        crate::request::parse_json_strict(&bytes)
            .map(JsonValue)
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad-json", e.message).field(e.field)
            })
    }
}

/// A query string parsed into `T` (unknown keys refused by `T`), or 400
/// `bad-query`.
pub struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| QueryOf(v))
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad-query", e.body_text()).field("query")
            })
    }
}
