//! The gRPC face of the command API: the `switchboard.ingest.v1.Ingest` service.

use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::CommandHandler;
use super::auth::{Authenticator, bearer};
use super::convert::{AgentRequest, ConversationRequest};
use super::error::ApiError;
use super::proto::ingest_server::{Ingest, IngestServer};
use super::proto::{self};
use super::server::Api;

/// The response metadata key that carries an error's stable code.
pub const CODE_METADATA: &str = "switchboard-code";

/// The `Ingest` service over an [`Api`].
#[derive(Debug)]
pub struct GrpcIngest<H, A> {
    api: Api<H, A>,
}

/// The tonic service to add to a server.
///
/// Messages over the API's limit are refused as `too_large`, with the code in the metadata
/// like any other refusal; tonic's own cap (4 MiB, answered `OUT_OF_RANGE`) stays as the
/// bound on what is buffered at all.
pub fn service<H: CommandHandler, A: Authenticator>(
    api: Api<H, A>,
) -> IngestServer<GrpcIngest<H, A>> {
    IngestServer::new(GrpcIngest { api })
}

fn token(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    bearer(metadata.get("authorization").map(|v| v.as_bytes()))
        .map_err(|err| ApiError::from(err).to_status())
}

/// The caller's trace context, when it sent one (the edge's [`super::GrpcCommands`] does).
fn traceparent(metadata: &MetadataMap) -> Option<&[u8]> {
    metadata
        .get(switchboard_log::trace::TRACEPARENT)
        .map(|v| v.as_bytes())
}

fn within(message: &impl Message, max: usize) -> Result<(), Status> {
    let len = message.encoded_len();
    if len > max {
        return Err(
            ApiError::too_large(format!("the message is {len} bytes, the limit is {max}"))
                .to_status(),
        );
    }
    Ok(())
}

#[tonic::async_trait]
impl<H: CommandHandler, A: Authenticator> Ingest for GrpcIngest<H, A> {
    async fn execute(
        &self,
        request: Request<proto::ConversationCommand>,
    ) -> Result<Response<proto::Ack>, Status> {
        let (metadata, _, message) = request.into_parts();
        let token = token(&metadata)?;
        within(&message, self.api.max_body_bytes())?;
        let request = ConversationRequest::try_from(message)
            .map_err(|err| ApiError::from(err).to_status())?;
        let ack = self
            .api
            .conversation(token, traceparent(&metadata), request)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(proto::Ack::from(&ack)))
    }

    async fn execute_agent(
        &self,
        request: Request<proto::AgentCommand>,
    ) -> Result<Response<proto::Ack>, Status> {
        let (metadata, _, message) = request.into_parts();
        let token = token(&metadata)?;
        within(&message, self.api.max_body_bytes())?;
        let request =
            AgentRequest::try_from(message).map_err(|err| ApiError::from(err).to_status())?;
        let ack = self
            .api
            .agent(token, traceparent(&metadata), request)
            .await
            .map_err(|err| err.to_status())?;
        Ok(Response::new(proto::Ack::from(&ack)))
    }
}
