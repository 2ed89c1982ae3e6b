//! OTLP/HTTP: `POST /v1/logs` with `application/x-protobuf` or `application/json`, optionally gzip.
//! Answers in the request's content type: 200 with an ExportLogsServiceResponse (partial_success when
//! filters refused records), 400 malformed, 413 too large, 415 other content types, 503 + Retry-After
//! when the queue is full.

use super::{ExportError, OtlpSettings, RETRY_AFTER_SECS, decode_json, export, gunzip};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    intake: Intake,
    settings: Arc<Live<OtlpSettings>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Protobuf,
    Json,
}

/// The HTTP router (exposed for tests and embedding).
pub fn router(intake: Intake, settings: Arc<Live<OtlpSettings>>) -> axum::Router {
    axum::Router::new()
        .route("/v1/logs", post(logs))
        .with_state(AppState { intake, settings })
}

/// Serves HTTP on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    intake: Intake,
    settings: Arc<Live<OtlpSettings>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(intake, settings))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("OTLP HTTP server stopped: {e}");
    }
}

/// A google.rpc.Status body (code, message), in the request's encoding.
fn status_body(kind: Kind, code: i32, message: &str) -> (HeaderValue, Vec<u8>) {
    match kind {
        Kind::Json => (
            HeaderValue::from_static("application/json"),
            serde_json::json!({"code": code, "message": message})
                .to_string()
                .into_bytes(),
        ),
        Kind::Protobuf => {
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

fn error_response(kind: Kind, e: &ExportError) -> Response {
    let (status, grpc_code) = match e {
        ExportError::Invalid(_) => (StatusCode::BAD_REQUEST, 3),
        ExportError::TooLarge(_) | ExportError::TooManyRecords(_) => {
            (StatusCode::PAYLOAD_TOO_LARGE, 8)
        }
        ExportError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, 14),
    };
    let (ct, body) = status_body(kind, grpc_code, &e.to_string());
    let mut r = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    r
}

async fn logs(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
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
        "application/x-protobuf" | "application/protobuf" => Kind::Protobuf,
        "application/json" => Kind::Json,
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
                Kind::Protobuf => resp.encode_to_vec(),
                // An absent partial_success is omitted, as protobuf's JSON mapping does.
                Kind::Json => match &resp.partial_success {
                    None => b"{}".to_vec(),
                    Some(_) => serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
                },
            };
            let ct = if kind == Kind::Json {
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
    kind: Kind,
    body: Body,
) -> Result<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse, ExportError>
{
    let settings = st.settings.get();
    let limit = settings.max_message_bytes;
    let raw = to_bytes(body, limit)
        .await
        .map_err(|_| ExportError::TooLarge(limit))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let plain = match encoding.as_str() {
        "gzip" => gunzip(&raw, limit)?,
        "identity" | "" => raw.to_vec(),
        other => {
            return Err(ExportError::Invalid(format!(
                "unsupported content encoding {other:?} (use gzip)"
            )));
        }
    };
    let req = match kind {
        Kind::Protobuf => ExportLogsServiceRequest::decode(plain.as_slice()).map_err(|e| {
            ExportError::Invalid(format!("malformed ExportLogsServiceRequest: {e}"))
        })?,
        Kind::Json => decode_json(&plain)?,
    };
    export(&req, &st.intake, &settings).await
}
