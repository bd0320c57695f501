//! The console's pages (GET only: nothing here changes state). Each reads
//! through the same [`Service`] calls as the JSON API, so a page shows
//! exactly what the caller's roles let them see.

mod audit;
mod grant_card;
mod people;
mod review;

pub use audit::{admin, audit, grant_evidence, reviews};
pub use people::{approvals, home, my_requests, sign_in};
pub use review::{access_review, access_review_csv};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::{SignedIn, layout};
use crate::service::{Service, ServiceError};

/// Run a page's store reads (or an action's service call) on a blocking
/// thread: the store is synchronous.
pub(super) async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Unavailable(format!("page worker: {e}")))?
}

/// A page, or the service's refusal shown inside the frame.
fn answer(
    who: &SignedIn,
    title: &str,
    current: &str,
    body: Result<Markup, ServiceError>,
) -> Response {
    match body {
        Ok(m) => layout::page(title, &who.session, current, m).into_response(),
        Err(e) => {
            let status = match &e {
                ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::BadRequest { .. } | ServiceError::Invalid(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let m = maud::html! { p.flash.error role="alert" { (e.to_string()) } };
            (status, layout::page(title, &who.session, current, m)).into_response()
        }
    }
}

/// The service, cloned for a blocking read.
fn svc(s: &crate::api::AppState) -> std::sync::Arc<Service> {
    s.service.clone()
}
