//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`, gzip accepted. Written as a
//! small tonic service with its own codec so that a malformed request is INVALID_ARGUMENT (the
//! generated server would answer INTERNAL), as OTLP asks.

use super::limits::{self, Connections, DecodeBudget};
use super::{Encoding, ExportError, OtlpSettings, RETRY_AFTER_SECS, export_body};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::{Status, server::NamedService, server::UnaryService};

/// The gRPC path of the Export call.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

#[derive(Default, Clone, Copy)]
struct OtlpCodec;
struct RequestDecoder;
struct ResponseEncoder;

impl Codec for OtlpCodec {
    type Encode = ExportLogsServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RequestDecoder;
    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }
    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder
    }
}

/// Hands the message over undecoded: [`export_body`] learns its decoded size first.
impl Decoder for RequestDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let n = buf.remaining();
        Ok(Some(buf.copy_to_bytes(n)))
    }
}

impl Encoder for ResponseEncoder {
    type Item = ExportLogsServiceResponse;
    type Error = Status;
    fn encode(&mut self, item: Self::Item, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// The LogsService, ready for `tonic::transport::Server::add_service`.
#[derive(Clone)]
pub struct LogsService {
    intake: Intake,
    settings: Arc<Live<OtlpSettings>>,
    budget: Arc<DecodeBudget>,
    /// Requests handled at once on this listener (bodies being received included).
    busy: Arc<Semaphore>,
}

impl LogsService {
    /// A service feeding `intake`, decoding within `budget`.
    pub fn new(
        intake: Intake,
        settings: Arc<Live<OtlpSettings>>,
        budget: Arc<DecodeBudget>,
    ) -> Self {
        let busy = Arc::new(Semaphore::new(
            settings.get().config.max_concurrent_requests,
        ));
        LogsService {
            intake,
            settings,
            budget,
            busy,
        }
    }
}

impl NamedService for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct ExportCall(LogsService);

impl UnaryService<Bytes> for ExportCall {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let settings = svc.settings.get();
            let body = request.into_inner();
            match export_body(
                &body,
                Encoding::Protobuf,
                &svc.intake,
                &settings,
                &svc.budget,
            )
            .await
            {
                Ok(resp) => Ok(tonic::Response::new(resp)),
                Err(ExportError::Invalid(m)) => Err(Status::invalid_argument(m)),
                Err(
                    e @ (ExportError::TooLarge(_)
                    | ExportError::TooManyRecords(_)
                    | ExportError::TooExpensive(_)),
                ) => Err(Status::resource_exhausted(e.to_string())),
                Err(e @ ExportError::Timeout) => Err(Status::deadline_exceeded(e.to_string())),
                Err(e @ (ExportError::Unavailable | ExportError::Busy)) => {
                    let mut s = Status::unavailable(e.to_string());
                    // Exporters honour RetryInfo-style hints only in details; the status code is what counts.
                    s.metadata_mut().insert(
                        "retry-after",
                        RETRY_AFTER_SECS.to_string().parse().expect("ascii"),
                    );
                    Err(s)
                }
            }
        })
    }
}

impl<B> Service<http::Request<B>> for LogsService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let svc = self.clone();
        Box::pin(async move {
            let settings = svc.settings.get();
            if !settings.authorized(req.headers().get("authorization").map(|v| v.as_bytes())) {
                crate::stats::Stats::inc(&svc.intake.stats().auth_refused);
                return Ok(Status::unauthenticated(super::UNAUTHENTICATED).into_http());
            }
            if req.uri().path() != EXPORT_PATH {
                return Ok(
                    Status::unimplemented(format!("no method {}", req.uri().path())).into_http(),
                );
            }
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let cfg = svc.settings.get().config.clone();
            let stats = svc.intake.stats_handle().clone();
            // A turn first: the bodies received at once are at most max_concurrent_requests.
            let Ok(Ok(_turn)) =
                tokio::time::timeout(cfg.body_timeout, svc.busy.clone().acquire_owned()).await
            else {
                stats.limit_hit("otlp_concurrency");
                let mut s = Status::unavailable("the collector is busy; retry later");
                s.metadata_mut().insert(
                    "retry-after",
                    RETRY_AFTER_SECS.to_string().parse().expect("ascii"),
                );
                return Ok(s.into_http());
            };
            let mut grpc = tonic::server::Grpc::new(OtlpCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(cfg.max_message_bytes), None);
            // The body must arrive within body_timeout; handling it may then wait queue_wait.
            let limit = cfg.body_timeout + cfg.queue_wait;
            match tokio::time::timeout(limit, grpc.unary(ExportCall(svc), req)).await {
                Ok(resp) => Ok(resp),
                Err(_) => {
                    stats.limit_hit("otlp_body_timeout");
                    Ok(Status::deadline_exceeded(
                        "the request did not arrive within the collector's body_timeout",
                    )
                    .into_http())
                }
            }
        })
    }
}

/// Serves gRPC on `listener` until `shutdown` completes, then closes every connection (GOAWAY) and
/// waits for requests in flight, so no connection task keeps the queue open. At most
/// `max_connections` are open, each with at most `max_concurrent_requests` streams, and a peer
/// that stops answering keepalive pings is disconnected. With `tls`, connections are served once
/// their TLS handshake (run beside the others, not in the accept loop) succeeded.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: LogsService,
    shutdown: impl Future<Output = ()> + Send,
    tls: Option<crate::tls::Handshaker>,
) {
    let cfg = service.settings.get().config.clone();
    let source = limits::Limited {
        listener,
        open: Arc::new(Connections::default()),
        settings: service.settings.clone(),
        stats: Arc::clone(service.intake.stats_handle()),
    };
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(cfg.max_concurrent_requests as u32))
        .http2_keepalive_interval(Some(cfg.keepalive))
        .http2_keepalive_timeout(Some(cfg.keepalive))
        .add_service(service);
    let served = match tls {
        None => {
            let incoming = futures_util::stream::unfold(source, |mut source| async move {
                let next = source.next().await;
                Some((next, source))
            });
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        Some(hs) => {
            let incoming = crate::tls::TlsIncoming::new(source, hs);
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!("OTLP gRPC server stopped: {e}");
    }
}
