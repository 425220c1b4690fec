//! Serving both protocols until shutdown: what the root binary calls.

use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::service::QueryService;

/// Why a server stopped other than by the shutdown signal.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("the gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// Serves the HTTP API on `http` and the gRPC API on `grpc` until `shutdown` completes; then
/// both stop accepting, finish the requests under way and return.
pub async fn serve(
    query: Arc<QueryService>,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (stop, stopped) = watch::channel(false);
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            // An error means the sender is gone, which happens only once we return.
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let incoming = tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true));
    let grpc = tonic::transport::Server::builder()
        .add_service(crate::grpc::service(Arc::clone(&query)))
        .serve_with_incoming_shutdown(incoming, stopped());
    let http = axum::serve(http, crate::http::router(query)).with_graceful_shutdown(stopped());
    let signal = async move {
        shutdown.await;
        tracing::info!("query service shutting down");
        let _ = stop.send(true);
        Ok(())
    };
    tokio::try_join!(
        async { grpc.await.map_err(ServeError::Grpc) },
        async { http.await.map_err(ServeError::Http) },
        signal,
    )?;
    Ok(())
}
