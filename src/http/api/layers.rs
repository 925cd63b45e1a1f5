//! The layers around every endpoint: request metrics, CORS, the per-client
//! rate limit, compression, the request timeout and the concurrency limit
//! (tower / tower-http / tower_governor), and JSON bodies for the errors those
//! layers answer with themselves.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::middleware::NoOpMiddleware;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::option_layer;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::config::HttpConfig;
use crate::http::error::AppError;
use crate::telemetry::Telemetry;

/// Responses smaller than this are sent as they are: compressing a 60-byte
/// answer costs more time than the bytes it saves.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// The header governor adds to a 429 beside `Retry-After`.
const RATELIMIT_AFTER: header::HeaderName = header::HeaderName::from_static("x-ratelimit-after");

/// How long browsers may cache a CORS preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(3600);

/// The per-client limiter: keyed by peer IP, its state shared by every route.
type ClientLimiter = Arc<GovernorConfig<PeerIpKeyExtractor, NoOpMiddleware>>;

/// How often the rate limiter forgets clients whose budget has refilled.
const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// A limiter allowing `per_second` requests per second per client IP, with a
/// burst of as many.
fn client_limiter(per_second: std::num::NonZeroU32) -> ClientLimiter {
    let per_second = per_second.get();
    let period =
        Duration::from_nanos(1_000_000_000 / u64::from(per_second)).max(Duration::from_nanos(1));
    Arc::new(
        GovernorConfigBuilder::default()
            .period(period)
            .burst_size(per_second)
            .key_extractor(PeerIpKeyExtractor)
            .finish()
            .expect("a non-zero period and burst always make a valid config"),
    )
}

/// Wraps `routes` in the service's layers, outermost first: request metrics
/// (so that 429s, 503s and 404s are counted too), CORS, the rate limit,
/// compression, the timeout, the concurrency limit (queued requests count
/// against the timeout).
pub fn apply<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    config: &HttpConfig,
    telemetry: Arc<Telemetry>,
) -> Router<S> {
    let limiter = config.rate_limit.map(client_limiter);
    let forget = limiter.clone().map(|limiter| {
        let cleanup = Arc::new(IdleClientCleanup::new(limiter));
        middleware::from_fn(move |request: Request, next: Next| {
            cleanup.run_if_due();
            next.run(request)
        })
    });
    let rate_limit =
        limiter.map(|limiter| GovernorLayer::new(limiter).error_handler(too_many_requests));
    routes
        .layer(GlobalConcurrencyLimitLayer::new(
            config.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(middleware::map_response(json_error_body))
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE_BYTES))),
        )
        .layer(option_layer(rate_limit))
        .layer(option_layer(forget))
        .layer(option_layer(cors(&config.cors_origins)))
        .layer(middleware::from_fn_with_state(telemetry, record_request))
}

/// Drops the rate limiter's entries of clients quiet long enough to be back
/// at a full burst, at most once a [`LIMITER_CLEANUP_INTERVAL`], on whichever
/// request comes due: memory does not grow with every address ever seen, and
/// no background task has to be started and stopped.
struct IdleClientCleanup {
    limiter: ClientLimiter,
    started: std::time::Instant,
    /// Seconds after `started` when the next cleanup is due.
    next_due: std::sync::atomic::AtomicU64,
}

impl IdleClientCleanup {
    fn new(limiter: ClientLimiter) -> Self {
        IdleClientCleanup {
            limiter,
            started: std::time::Instant::now(),
            next_due: std::sync::atomic::AtomicU64::new(LIMITER_CLEANUP_INTERVAL.as_secs()),
        }
    }

    fn run_if_due(&self) {
        use std::sync::atomic::Ordering;
        let now = self.started.elapsed().as_secs();
        let due = self.next_due.load(Ordering::Relaxed);
        // One request wins the exchange and cleans; the others go on.
        if now >= due
            && self
                .next_due
                .compare_exchange(
                    due,
                    now + LIMITER_CLEANUP_INTERVAL.as_secs(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.limiter.limiter().retain_recent();
            self.limiter.limiter().shrink_to_fit();
        }
    }
}

/// CORS for read-only browser clients of the listed origins; `None` when none is listed.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::HEAD])
            .expose_headers([
                header::RETRY_AFTER,
                HeaderName::from_static("x-complete-until"),
            ])
            .max_age(CORS_MAX_AGE),
    )
}

/// 429 with `Retry-After` (whole seconds) and a JSON `detail`.
fn too_many_requests(error: tower_governor::GovernorError) -> Response {
    match error {
        tower_governor::GovernorError::TooManyRequests { wait_time, headers } => {
            // governor rounds a sub-second wait down to 0, which would tell the
            // client to retry at once: never promise less than a second.
            let seconds = wait_time.max(1);
            let mut response = AppError::TooManyRequests {
                retry_after_seconds: seconds,
            }
            .into_response();
            if let Some(headers) = headers {
                response.headers_mut().extend(headers);
            }
            // governor's own `x-ratelimit-after` carries the rounded-down
            // wait: both headers say the same whole seconds.
            let retry_after = HeaderValue::from(seconds);
            response
                .headers_mut()
                .insert(RATELIMIT_AFTER, retry_after.clone());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
            response
        }
        // The peer address is always known to a server started by `App`.
        _ => AppError::Internal("cannot tell which client sent the request").into_response(),
    }
}

/// Errors answered by a layer (the timeout's 503) carry no body; give them
/// the same `{"detail": ...}` as every other error.
async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let detail = match status {
            StatusCode::SERVICE_UNAVAILABLE => "the request took too long; try again".to_owned(),
            _ => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_lowercase(),
        };
        let mut answer = AppError::Layer { status, detail }.into_response();
        answer.headers_mut().extend(
            response
                .headers()
                .iter()
                .filter(|(name, _)| *name != header::CONTENT_LENGTH)
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        return answer;
    }
    response
}

/// The method as a metric label, from a closed set: any client can invent a
/// method, and each new label value would be a new series kept for ever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts the request by route (the route pattern, so the number of series
/// stays bounded), method and status, and observes its latency.
async fn record_request(
    State(telemetry): State<Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    telemetry.http_request(
        route.as_ref().map_or("(unmatched)", MatchedPath::as_str),
        method_label(&method),
        response.status(),
        started.elapsed(),
    );
    response
}
