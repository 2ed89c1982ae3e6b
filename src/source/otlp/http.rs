//! OTLP/HTTP: `POST /v1/logs` with `application/x-protobuf` or `application/json`, optionally gzip.
//! Answers in the request's content type: 200 with an ExportLogsServiceResponse (partial_success when
//! filters refused records), 400 malformed, 408 a body that took longer than `body_timeout`, 413 too
//! large, 415 other content types, 503 + Retry-After when the queue is full or the listener busy.

use super::limits::{self, Connections, Counted, DecodeBudget};
use super::{Encoding, ExportError, OtlpSettings, RETRY_AFTER_SECS, export_body, gunzip};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prost::Message;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct AppState {
    intake: Intake,
    settings: Arc<Live<OtlpSettings>>,
    budget: Arc<DecodeBudget>,
    /// Requests handled at once on this listener.
    busy: Arc<Semaphore>,
}

fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/v1/logs", post(logs))
        .with_state(state)
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then lets the requests in flight
/// finish. Each connection must send its headers within `header_timeout`; at most
/// `max_connections` are open and `max_concurrent_requests` handled at once. With `tls`, each
/// connection is served once its TLS handshake (in the connection's own task) succeeded.
pub async fn serve(
    listener: tokio::net::TcpListener,
    intake: Intake,
    settings: Arc<Live<OtlpSettings>>,
    budget: Arc<DecodeBudget>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<crate::tls::Handshaker>,
) {
    let cfg = settings.get().config.clone();
    let state = AppState {
        intake: intake.clone(),
        settings: settings.clone(),
        budget,
        busy: Arc::new(Semaphore::new(cfg.max_concurrent_requests)),
    };
    let app = TowerToHyperService::new(router(state));
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Connections::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let max = settings.get().config.max_connections;
        let (stream, slot) = tokio::select! {
            accepted = limits::accept(&listener, &open, max, intake.stats(), "otlp_connections") => match accepted {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = &mut shutdown => break,
        };
        match &tls {
            None => {
                let conn =
                    http.serve_connection(TokioIo::new(Counted::new(stream, slot)), app.clone());
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("OTLP HTTP connection ended: {e}");
                    }
                });
            }
            Some(hs) => {
                let (hs, http, app, watcher) =
                    (hs.clone(), http.clone(), app.clone(), graceful.watcher());
                let peer = stream
                    .peer_addr()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                tokio::spawn(async move {
                    // The slot is held from acceptance on, through the handshake.
                    let Some(tls) = hs.accept(Counted::new(stream, slot), peer).await else {
                        return;
                    };
                    let conn = http.serve_connection(TokioIo::new(tls), app);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("OTLP HTTP connection ended: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A google.rpc.Status body (code, message), in the request's encoding.
fn status_body(kind: Encoding, code: i32, message: &str) -> (HeaderValue, Vec<u8>) {
    match kind {
        Encoding::Json => (
            HeaderValue::from_static("application/json"),
            serde_json::json!({"code": code, "message": message})
                .to_string()
                .into_bytes(),
        ),
        Encoding::Protobuf => {
            #[derive(Clone, PartialEq, prost::Message)]
            struct RpcStatus {
                #[prost(int32, tag = "1")]
                code: i32,
                #[prost(string, tag = "2")]
                message: String,
            }
            let s = RpcStatus {
                code,
                message: message.to_string(),
            };
            (
                HeaderValue::from_static("application/x-protobuf"),
                s.encode_to_vec(),
            )
        }
    }
}

fn error_response(kind: Encoding, e: &ExportError) -> Response {
    let (status, grpc_code) = match e {
        ExportError::Invalid(_) => (StatusCode::BAD_REQUEST, 3),
        ExportError::TooLarge(_)
        | ExportError::TooManyRecords(_)
        | ExportError::TooExpensive(_) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
        ExportError::Unavailable | ExportError::Busy => (StatusCode::SERVICE_UNAVAILABLE, 14),
        ExportError::Timeout => (StatusCode::REQUEST_TIMEOUT, 4),
    };
    let (ct, body) = status_body(kind, grpc_code, &e.to_string());
    let mut r = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    r
}

/// 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
fn unauthorized(kind: Encoding) -> Response {
    let (ct, body) = status_body(kind, 16, super::UNAUTHENTICATED);
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, ct),
            (
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"otlp\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn logs(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !st.settings.get().authorized(authorization) {
        crate::stats::Stats::inc(&st.intake.stats().auth_refused);
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
        return unauthorized(if json {
            Encoding::Json
        } else {
            Encoding::Protobuf
        });
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let kind = match ct.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let msg = format!(
                "unsupported content type {other:?}: use application/x-protobuf or application/json"
            );
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(header::CONTENT_TYPE, "text/plain")],
                msg,
            )
                .into_response();
        }
    };
    match handle(&st, &headers, kind, body).await {
        Ok(resp) => {
            let body = match kind {
                Encoding::Protobuf => resp.encode_to_vec(),
                // An absent partial_success is omitted, as protobuf's JSON mapping does.
                Encoding::Json => match &resp.partial_success {
                    None => b"{}".to_vec(),
                    Some(_) => serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
                },
            };
            let ct = if kind == Encoding::Json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(e) => error_response(kind, &e),
    }
}

async fn handle(
    st: &AppState,
    headers: &HeaderMap,
    kind: Encoding,
    body: Body,
) -> Result<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse, ExportError>
{
    let settings = st.settings.get();
    let stats = st.intake.stats();
    // A turn first, so the bodies held at once are at most max_concurrent_requests of them.
    let deadline = tokio::time::Instant::now() + settings.config.body_timeout;
    let _turn = match tokio::time::timeout_at(deadline, st.busy.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            stats.limit_hit("otlp_concurrency");
            return Err(ExportError::Busy);
        }
    };
    let limit = settings.config.max_message_bytes;
    let raw = match tokio::time::timeout_at(deadline, to_bytes(body, limit)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(_)) => {
            stats.limit_hit("otlp_too_large");
            return Err(ExportError::TooLarge(limit));
        }
        Err(_) => {
            stats.limit_hit("otlp_body_timeout");
            return Err(ExportError::Timeout);
        }
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let plain = match encoding.as_str() {
        "gzip" => gunzip(&raw, limit).inspect_err(|e| {
            if matches!(e, ExportError::TooLarge(_)) {
                stats.limit_hit("otlp_too_large");
            }
        })?,
        "identity" | "" => raw.to_vec(),
        other => {
            return Err(ExportError::Invalid(format!(
                "unsupported content encoding {other:?} (use gzip)"
            )));
        }
    };
    drop(raw);
    export_body(&plain, kind, &st.intake, &settings, &st.budget).await
}
