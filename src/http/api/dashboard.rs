//! `GET /`: a one-page dashboard (plain HTML, CSS and JavaScript compiled into
//! the binary; no front-end build, no outside assets) that reads the `/v1` API.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

/// The page. It refreshes its numbers and charts every 30 seconds.
const PAGE: &str = include_str!("dashboard.html");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// The dashboard: event counts for a chosen window, the bar and timeline
/// charts, trending repositories (most stars) and the most PR events, one
/// repository's view (its events, PR gaps, activity chart and running
/// totals), and a switch that leaves the bots' events out of every panel.
///
/// Query parameters preset the page: `offset_minutes` or `from`/`to` (the
/// window), `exclude_bots=true`, and `repo` (the repository shown).
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String))
)]
async fn dashboard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
