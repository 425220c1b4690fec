//! The client's deadline on every gRPC call: the `grpc-timeout` request header, which tonic's
//! own server enforces and our accept loop must enforce itself. A call still running when its
//! deadline passes is answered `DEADLINE_EXCEEDED` and its handler's future is dropped, as if
//! the client had cancelled it. That is safe for every handler the process serves: a query
//! has no effect to half apply, and a command already handed to the writer is still decided,
//! written and acknowledged to no one (a retry with the same `client_msg_id` gets its seq).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// The header a gRPC client states its deadline in.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Runs the call within the client's deadline, when it gave one.
pub(super) async fn enforce(request: Request, next: Next) -> Response {
    let Some(within) = request
        .headers()
        .get(GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(parse)
    else {
        return next.run(request).await;
    };
    match tokio::time::timeout(within, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::debug!(?within, "a gRPC call ran past its deadline");
            tonic::Status::deadline_exceeded(format!(
                "the call did not finish within its deadline ({within:?})"
            ))
            .into_http::<Body>()
        }
    }
}

/// A `grpc-timeout` value: at most eight digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
/// A value that does not parse is ignored, as tonic's server ignores it.
fn parse(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use prost::Message;
    use switchboard_events::id::{AgentId, ConversationId, CorrelationId, PrincipalId, TenantId};
    use switchboard_events::principal::{Principal, Role};
    use switchboard_ingest::CommandError;
    use switchboard_ingest::api::{
        Ack, Api, AuthError, Authenticator, CommandHandler, ConversationRequest, proto,
    };
    use switchboard_ingest::command::{AgentCommand, ConversationCommand};
    use tokio::net::TcpListener;

    use super::*;
    use crate::serving::{Limits, Listeners, Shutdown};

    /// Commands that never finish: counts those started and those dropped unfinished.
    #[derive(Debug, Default)]
    struct Stuck {
        started: AtomicUsize,
        dropped: Arc<AtomicUsize>,
    }

    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Stuck {
        async fn forever(&self) -> Result<Ack, CommandError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _dropped = Dropped(self.dropped.clone());
            std::future::pending().await
        }
    }

    impl CommandHandler for Stuck {
        async fn conversation(
            &self,
            _: Principal,
            _: Option<ConversationId>,
            _: ConversationCommand,
            _: CorrelationId,
        ) -> Result<Ack, CommandError> {
            self.forever().await
        }

        async fn agent(
            &self,
            _: Principal,
            _: AgentId,
            _: AgentCommand,
            _: CorrelationId,
        ) -> Result<Ack, CommandError> {
            self.forever().await
        }
    }

    /// Lets every caller in as one agent.
    struct Anyone;

    impl Authenticator for Anyone {
        async fn authenticate(
            &self,
            _: Option<&str>,
            _: Option<Principal>,
        ) -> Result<Principal, AuthError> {
            Ok(Principal::new(
                TenantId::new("acme").unwrap(),
                Role::Agent,
                PrincipalId::new("agent-1").unwrap(),
            ))
        }
    }

    #[tokio::test]
    async fn a_call_past_its_grpc_timeout_is_answered_deadline_exceeded_and_its_work_dropped() {
        let stuck = Arc::new(Stuck::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let routes = tonic::service::Routes::new(switchboard_ingest::api::grpc::service(Api::new(
            stuck.clone(),
            Arc::new(Anyone),
        )));
        let served =
            tokio::spawn(Listeners::new(Limits::default(), None).grpc(listener, routes, shutdown));
        // By hand, over HTTP/2: tonic's client would enforce the header itself.
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let message = proto::ConversationCommand::from(&ConversationRequest {
            conversation: Some(ConversationId::new("c-1").unwrap()),
            on_behalf_of: None,
            correlation: CorrelationId(uuid::Uuid::now_v7()),
            command: ConversationCommand::Resolve,
        })
        .encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&message);
        let request = hyper::Request::post(format!(
            "http://{address}/switchboard.ingest.v1.Ingest/Execute"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(GRPC_TIMEOUT, "200m")
        .body(Full::new(Bytes::from(framed)))
        .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).expect("a gRPC status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("deadline"), "{status:?}");
        assert_eq!(stuck.started.load(Ordering::SeqCst), 1);
        assert_eq!(
            stuck.dropped.load(Ordering::SeqCst),
            1,
            "the call's work is dropped with it"
        );
        trigger.fire();
        served.await.unwrap().unwrap();
    }

    #[test]
    fn every_unit_of_the_grpc_timeout_header_is_read() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("1n"), Some(Duration::from_nanos(1)));
    }

    #[test]
    fn a_grpc_timeout_that_does_not_parse_is_ignored() {
        for bad in [
            "",
            "m",
            "100",
            "123456789m",
            "1.5S",
            "-1S",
            "10x",
            "1 m",
            "1é",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
