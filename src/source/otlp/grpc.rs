//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`, gzip accepted. Written as a
//! small tonic service with its own codec so that a malformed request is INVALID_ARGUMENT (the
//! generated server would answer INTERNAL), as OTLP asks.

use super::{ExportError, OtlpSettings, RETRY_AFTER_SECS, export};
use crate::live::Live;
use crate::pipeline::intake::Intake;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use std::sync::Arc;
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
    type Decode = ExportLogsServiceRequest;
    type Encoder = ResponseEncoder;
    type Decoder = RequestDecoder;
    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }
    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder
    }
}

impl Decoder for RequestDecoder {
    type Item = ExportLogsServiceRequest;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportLogsServiceRequest::decode(buf)
            .map(Some)
            .map_err(|e| {
                Status::invalid_argument(format!("malformed ExportLogsServiceRequest: {e}"))
            })
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
}

impl LogsService {
    /// A service feeding `intake`.
    pub fn new(intake: Intake, settings: Arc<Live<OtlpSettings>>) -> Self {
        LogsService { intake, settings }
    }
}

impl NamedService for LogsService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct ExportCall(LogsService);

impl UnaryService<ExportLogsServiceRequest> for ExportCall {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<ExportLogsServiceRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            match export(request.get_ref(), &svc.intake, &svc.settings.get()).await {
                Ok(resp) => Ok(tonic::Response::new(resp)),
                Err(ExportError::Invalid(m)) => Err(Status::invalid_argument(m)),
                Err(e @ (ExportError::TooLarge(_) | ExportError::TooManyRecords(_))) => {
                    Err(Status::resource_exhausted(e.to_string()))
                }
                Err(e @ ExportError::Unavailable) => {
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
            if req.uri().path() != EXPORT_PATH {
                return Ok(
                    Status::unimplemented(format!("no method {}", req.uri().path())).into_http(),
                );
            }
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let max = svc.settings.get().max_message_bytes;
            let mut grpc = tonic::server::Grpc::new(OtlpCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(ExportCall(svc), req).await)
        })
    }
}

/// Serves gRPC on `listener` until `shutdown` completes, then closes every connection (GOAWAY) and
/// waits for requests in flight, so no connection task keeps the queue open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: LogsService,
    shutdown: impl Future<Output = ()> + Send,
) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    if let Err(e) = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
    {
        tracing::error!("OTLP gRPC server stopped: {e}");
    }
}
