//! The HTTP API: one file per group of endpoints, each with its own `router()`
//! of handlers annotated for OpenAPI, so the routes and `/openapi.json` come
//! from the same list and cannot drift.

mod cache;
mod coverage;
mod dashboard;
mod health;
pub mod layers;
mod metrics;
mod params;
mod prometheus;
mod spool;
mod state;

pub use cache::AnswerCache;
pub use params::MAX_OFFSET_MINUTES;
pub use state::{AppState, Shared};

use std::sync::OnceLock;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::header;
use axum::response::IntoResponse;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::HttpConfig;

use crate::http::error::AppError;

/// The version prefix every endpoint is also served under.
pub const VERSION_PREFIX: &str = "/v1";

/// Where the interactive API docs (Swagger UI, compiled into the binary) live.
pub const DOCS_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ghmetrics",
        description = "Metrics about GitHub's public events (WatchEvent, PullRequestEvent, IssuesEvent), \
streamed from GitHub's REST API (or imported from GH Archive files) into SQLite or ClickHouse.

Every API endpoint is served at its plain path and under `/v1/`, by the same handler \
(the dashboard `/` and this document are not versioned).

Errors are JSON `{\"detail\": \"...\"}`: 422 for a missing or invalid query parameter (the detail \
names it), 404 for an unknown path, 429 with `Retry-After` over the per-client rate limit \
(when the service runs with `--rate-limit`), 503 when a request is not answered within the \
request timeout or when the store does not answer within the store timeout, 500 for an internal failure (the cause is in the service log). Answers over \
1 KiB are gzip-compressed for clients that send `Accept-Encoding: gzip`."
    ),
    tags(
        (name = "metrics", description = "The metrics, each answered from the store's rollups and indexes"),
        (name = "charts", description = "Charts of the event counts, PNG or SVG"),
        (name = "operations", description = "Health, Prometheus metrics, this document and the dashboard"),
    )
)]
struct ApiDoc;

/// The API's endpoints at their plain paths.
fn endpoints() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(metrics::router())
        .merge(coverage::router())
        .merge(health::router())
        .merge(prometheus::router())
}

/// Pages for people rather than programs: not versioned.
fn pages() -> OpenApiRouter<AppState> {
    dashboard::router().routes(routes!(openapi_json))
}

/// The endpoints at their plain paths and under `/v1`, the pages, and their
/// OpenAPI document. Operation ids must be unique in a document, so the `/v1`
/// copies get a `_v1` suffix.
fn documented_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(VERSION_PREFIX, endpoints())
        .merge(endpoints())
        .merge(pages())
        .split_for_parts();
    spec.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let undefined = params::document(&mut spec);
    debug_assert!(
        undefined.is_empty(),
        "parameters without a definition: {undefined:?}"
    );
    let layer_errors = layer_error_responses();
    for (path, item) in spec.paths.paths.iter_mut() {
        for operation in [&mut item.get, &mut item.head].into_iter().flatten() {
            if path.starts_with(VERSION_PREFIX)
                && let Some(id) = &mut operation.operation_id
            {
                id.push_str("_v1");
            }
            for (status, response) in &layer_errors {
                operation
                    .responses
                    .responses
                    .entry(status.clone())
                    .or_insert_with(|| response.clone());
            }
            declare_binary_bodies(operation);
            if path.contains("/metrics/")
                && let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200")
            {
                ok.headers.insert(
                    "X-Complete-Until".to_owned(),
                    complete_until_header().into(),
                );
            }
        }
    }
    (router, spec)
}

/// Image answers as OpenAPI 3.1 declares binary bodies: a string whose
/// `contentMediaType` is the image's type (utoipa describes `[u8]` as an
/// array of integers, which no client generator reads as an image).
fn declare_binary_bodies(operation: &mut utoipa::openapi::path::Operation) {
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        for (media_type, content) in response.content.iter_mut() {
            if let RefOr::T(content) = content
                && media_type.starts_with("image/")
            {
                content.schema = Some(
                    Object::builder()
                        .schema_type(Type::String)
                        .content_media_type(media_type.clone())
                        .into(),
                );
            }
        }
    }
}

/// `X-Complete-Until` on every metric answer.
fn complete_until_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::DateTime,
                )))
                .build(),
        ))
        .description(Some(
            "How final the answer is: the end (UTC) of the run of complete GH Archive hours \
             that starts at the window's first hour (without a window, at the oldest stored \
             event's hour). Before it the answer rests on every event GH Archive has; after it, \
             on what the live feed sampled. Absent when that first hour is not complete.",
        ))
        .build()
}

/// The errors any endpoint can answer from the layers around it rather than
/// from its handler, so that generated clients expect them too.
fn layer_error_responses() -> Vec<(String, RefOr<Response>)> {
    let error_body = || Content::new(Some(Ref::from_schema_name("ErrorBody")));
    let too_many = ResponseBuilder::new()
        .description("Over the per-client rate limit (only with `--rate-limit`)")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::Integer)))
                .description(Some("Seconds to wait before the next request"))
                .build(),
        )
        .content("application/json", error_body())
        .build();
    let timed_out = ResponseBuilder::new()
        .description("Not answered within the request timeout")
        .content("application/json", error_body())
        .build();
    vec![
        ("429".to_owned(), too_many.into()),
        ("503".to_owned(), timed_out.into()),
    ]
}

/// The OpenAPI document of every endpoint.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_router().1
}

/// The HTTP application: every endpoint inside the service's layers (see
/// [`layers`]), with a request span naming the matched route.
pub fn router(state: AppState, http: &HttpConfig) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &axum::extract::Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("(unmatched)", MatchedPath::as_str);
            tracing::info_span!("request", method = %request.method(), route)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    let telemetry = state.telemetry.clone();
    layers::apply(routes(), http, telemetry)
        .layer(trace)
        .with_state(state)
}

/// Every endpoint, at its seed path and under `/v1/`, the docs page, and a
/// JSON 404 for unknown paths.
fn routes() -> Router<AppState> {
    let (router, _) = documented_router();
    let docs = SwaggerUi::new(DOCS_PATH).config(utoipa_swagger_ui::Config::from("/openapi.json"));
    router.merge(docs).fallback(|| async { AppError::NotFound })
}

/// This document, as JSON (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> impl IntoResponse {
    static SPEC: OnceLock<String> = OnceLock::new();
    let json = SPEC.get_or_init(|| {
        openapi()
            .to_pretty_json()
            .unwrap_or_else(|error| format!(r#"{{"error": "{error}"}}"#))
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The paths axum routes, read from the router's `Debug` output (axum
    /// has no public list of routes; if that output changes, this fails
    /// loudly rather than passing with nothing compared).
    fn routed_paths(router: &Router<AppState>) -> BTreeSet<String> {
        let debug = format!("{router:?}");
        debug
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|text| text.starts_with('/'))
            // axum's own catch-all for the fallback handler.
            .filter(|text| !text.contains("__private__axum"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_back() {
        let routed = routed_paths(&routes());
        assert!(
            routed.contains("/metrics/event-counts") && routed.contains("/v1/health"),
            "routes not found in the router's Debug output: {routed:?}"
        );
        let documented: BTreeSet<String> = openapi().paths.paths.keys().cloned().collect();
        // The Swagger UI page and its assets are the only undocumented routes.
        let undocumented: BTreeSet<&String> = routed
            .iter()
            .filter(|path| !path.starts_with(DOCS_PATH))
            .filter(|path| !documented.contains(*path))
            .collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the spec: {undocumented:?}"
        );
        let unrouted: Vec<&String> = documented.difference(&routed).collect();
        assert!(
            unrouted.is_empty(),
            "documented but not routed: {unrouted:?}"
        );
        let pages = ["/", "/openapi.json"];
        for path in documented
            .iter()
            .filter(|path| !pages.contains(&path.as_str()))
        {
            let plain = path.strip_prefix(VERSION_PREFIX).unwrap_or(path);
            assert!(documented.contains(plain), "{path} has no unversioned twin");
            assert!(
                documented.contains(&format!("{VERSION_PREFIX}{plain}")),
                "{path} has no /v1 twin"
            );
        }
    }

    #[test]
    fn the_document_describes_parameters_and_errors() {
        let spec = serde_json::to_value(openapi()).unwrap();
        let counts = &spec["paths"]["/v1/metrics/event-counts"]["get"];
        assert_eq!(counts["operationId"], "event_counts_v1");
        assert_eq!(
            spec["paths"]["/metrics/event-counts"]["get"]["operationId"],
            "event_counts"
        );
        let parameter = &counts["parameters"][0];
        assert_eq!(parameter["name"], "offset_minutes");
        assert_eq!(parameter["in"], "query");
        // offset_minutes or from: neither is required alone.
        assert_eq!(parameter["required"], false);
        for path in [
            "event-counts",
            "pr-counts",
            "average-pr-time",
            "visualization",
            "visualization/timeline",
        ] {
            let parameters = spec["paths"][format!("/metrics/{path}")]["get"]["parameters"]
                .as_array()
                .unwrap();
            for name in ["from", "to"] {
                let parameter = parameters.iter().find(|p| p["name"] == name).unwrap();
                assert_eq!(parameter["schema"]["format"], "date-time", "{path} {name}");
            }
        }
        let error = &counts["responses"]["422"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(error, "#/components/schemas/ErrorBody");
        assert!(counts["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert_eq!(
            counts["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        // Every metric answer says how final it is.
        for (path, item) in spec["paths"].as_object().unwrap() {
            if path.contains("/metrics/") {
                let header = &item["get"]["responses"]["200"]["headers"]["X-Complete-Until"];
                assert_eq!(header["schema"]["format"], "date-time", "{path}");
            }
        }
        let schemas = &spec["components"]["schemas"];
        assert!(schemas["ErrorBody"]["properties"]["detail"].is_object());
        assert!(schemas["EventCounts"]["properties"]["PullRequestEvent"].is_object());
        // Schemas are named by their type's name: two types of one name would
        // silently leave one of them described as the other.
        assert!(schemas["Coverage"]["properties"]["window_seconds"].is_object());
        assert!(schemas["ArchiveCoverage"]["properties"]["hours"].is_object());
        let chart = &spec["paths"]["/metrics/visualization"]["get"]["responses"]["200"]["content"];
        assert!(chart["image/png"].is_object() && chart["image/svg+xml"].is_object());
        let ids: Vec<&str> = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|item| item["get"]["operationId"].as_str())
            .collect();
        let unique: BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "operation ids are unique");
    }
}
