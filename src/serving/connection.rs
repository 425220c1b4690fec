//! The accept loop and the life of one connection under the [`Limits`]: the cap at accept, the
//! TLS handshake and first request head within the handshake deadline, hyper's header-read
//! timeout for later heads, the idle deadline, a deadline on every request body, and the drain.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_rustls::TlsAcceptor;

use super::{Kind, Limits, Shutdown};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// Accepts connections until shutdown, each in its own task, at most the listener's cap at
/// once; then waits for them within the drain grace.
pub(super) async fn accept(
    listener: TcpListener,
    kind: Kind,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let cap = match kind {
        Kind::WebSocket => limits.edge_max_connections,
        _ => limits.max_connections,
    };
    let permits = Arc::new(Semaphore::new(cap));
    let builder = Arc::new(builder(kind, &limits));
    let stop = shutdown.receiver();
    let mut connections = JoinSet::new();
    let stopped = shutdown.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before accept: the
                        // listener itself is fine; give the process a moment.
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // Over the cap, the connection is closed at once rather than queued.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::debug!(cap, "connection refused: at the listener's cap");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(
                    (stream, peer),
                    permit,
                    tls.clone(),
                    builder.clone(),
                    router.clone(),
                    limits,
                    stop.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(ms(limits.drain_grace_ms), drained)
        .await
        .is_err()
    {
        tracing::debug!("drain grace over: dropping the connections still open");
    }
    Ok(())
}

/// hyper-util's connection builder with the limits: HTTP/1 and HTTP/2, or HTTP/2 alone.
fn builder(kind: Kind, limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(ms(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(ms(limits.http2_keepalive_interval_ms))
        .keep_alive_timeout(ms(limits.http2_keepalive_timeout_ms))
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    if kind == Kind::Grpc {
        builder = builder.http2_only();
    }
    builder
}

/// One connection (the stream and the client's address): TLS, then HTTP until it ends, its
/// deadline passes, or the drain closes it.
async fn connection(
    (stream, peer): (TcpStream, SocketAddr),
    permit: OwnedSemaphorePermit,
    tls: Option<TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new(limits));
    match tls {
        None => {
            let io = Held::new(stream, permit);
            drive(io, peer, &builder, router, activity, stop).await;
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout_at(activity.handshake, acceptor.accept(stream));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            let io = Held::new(stream, permit);
            drive(io, peer, &builder, router, activity, stop).await;
        }
    }
}

async fn drive<IO>(
    io: Held<IO>,
    peer: SocketAddr,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_flight = activity.begin();
            let deadline = activity.body_timeout;
            let mut request = request.map(|body| Body::new(Bounded::deadline(body, deadline)));
            // The client's address, for per-address limits (axum's `ConnectInfo`).
            request.extensions_mut().insert(ConnectInfo(peer));
            let call = tower::Service::call(&mut router.clone(), request);
            async move {
                let response = call.await?;
                Ok::<_, Infallible>(
                    response.map(|body| Body::new(Bounded::tracked(body, in_flight))),
                )
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline();
        tokio::select! {
            // An upgraded connection (a WebSocket) ends here too: its socket lives on in the
            // upgrade, with the permit, under the edge's own timers.
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|stop| *stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = sleep_until(deadline) => {
                if activity.deadline() <= Instant::now() {
                    return;
                }
            }
        }
    }
}

/// What a connection's watchdog needs: when its handshake must be done, and when its last
/// request ended.
struct Activity {
    opened: Instant,
    handshake: Instant,
    idle: Duration,
    body_timeout: Duration,
    /// Requests started.
    started: AtomicU64,
    /// Requests whose response is not yet sent whole.
    in_flight: AtomicU64,
    /// When the last one ended, in ms since `opened`.
    ended_ms: AtomicU64,
}

impl Activity {
    fn new(limits: Limits) -> Self {
        let opened = Instant::now();
        Self {
            opened,
            handshake: opened + ms(limits.handshake_timeout_ms),
            idle: ms(limits.idle_timeout_ms),
            body_timeout: ms(limits.body_timeout_ms),
            started: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            ended_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection is closed unless something happens: the handshake deadline until
    /// a first request came, then the idle deadline after the last one (none while one runs).
    fn deadline(&self) -> Instant {
        if self.started.load(Ordering::Relaxed) == 0 {
            self.handshake
        } else if self.in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now() + self.idle
        } else {
            self.opened + ms(self.ended_ms.load(Ordering::Relaxed)) + self.idle
        }
    }
}

/// A request under way; dropped with its response body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = self.0.opened.elapsed().as_millis();
        self.0
            .ended_ms
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A body with a deadline (requests) or a request it keeps in flight (responses).
struct Bounded<B> {
    body: B,
    deadline: Option<Pin<Box<Sleep>>>,
    _in_flight: Option<InFlight>,
}

impl<B> Bounded<B> {
    fn deadline(body: B, within: Duration) -> Self {
        Self {
            body,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            _in_flight: None,
        }
    }

    fn tracked(body: B, in_flight: InFlight) -> Self {
        Self {
            body,
            deadline: None,
            _in_flight: Some(in_flight),
        }
    }
}

impl<B> hyper::body::Body for Bounded<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err("the request body did not arrive in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket with its place under the listener's cap: the permit goes when the
/// socket does, also after an upgrade.
struct Held<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Held<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit) -> Self {
        Self {
            io,
            _permit: permit,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Held<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Held<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::serving::{Listeners, Trigger};

    fn quick() -> Limits {
        Limits {
            handshake_timeout_ms: 300,
            header_read_timeout_ms: 300,
            body_timeout_ms: 300,
            ..Limits::default()
        }
    }

    async fn start(kind: Kind, limits: Limits) -> (SocketAddr, Trigger) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let router = Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/echo", post(|body: String| async move { body }));
        tokio::spawn(Listeners::new(limits, None).serve(listener, kind, router, shutdown));
        (address, trigger)
    }

    /// Sends `head`, then one byte of `drip` every 50 ms, until the server closes: how long
    /// that took. Panics after 5 s.
    async fn drip_until_closed(address: SocketAddr, head: &[u8], drip: &[u8]) -> Duration {
        let started = Instant::now();
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(head).await.unwrap();
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        let mut next = drip.iter().cycle();
        let mut buf = [0u8; 1024];
        loop {
            assert!(started.elapsed() < Duration::from_secs(5), "never dropped");
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(_) => {}
                },
                _ = ticks.tick() => {
                    if stream.write_all(&[*next.next().unwrap()]).await.is_err() {
                        return started.elapsed();
                    }
                }
            }
        }
    }

    async fn get_root(address: SocketAddr) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn a_slow_header_is_dropped_at_the_handshake_deadline_on_every_kind() {
        for kind in [Kind::Http, Kind::WebSocket, Kind::Admin, Kind::Grpc] {
            let (address, _stop) = start(kind, quick()).await;
            let http1 = drip_until_closed(address, b"GET / HTTP/1.1\r\n", b"x-a: b\r\n").await;
            let http2 = drip_until_closed(address, b"PRI * HTTP/2.0\r\n", b"\r\nSM\r\n\r\n").await;
            for took in [http1, http2] {
                assert!(
                    took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
                    "{kind:?}: dropped after {took:?}"
                );
            }
            if kind != Kind::Grpc {
                assert!(
                    get_root(address).await.starts_with("HTTP/1.1 200"),
                    "{kind:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_kept_alive_connection_waits_for_its_next_request_only_the_header_timeout() {
        let (address, _stop) = start(Kind::Http, quick()).await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let started = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "still open");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_at_once_and_a_freed_place_is_reused() {
        let limits = Limits {
            max_connections: 2,
            ..Limits::default()
        };
        let (address, _stop) = start(Kind::Http, limits).await;
        let first = TcpStream::connect(address).await.unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(address).await.unwrap();
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "the third was kept");
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(get_root(address).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_fails_its_request_and_closes_the_connection() {
        let (address, _stop) = start(Kind::Http, quick()).await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\nonly ten b")
            .await
            .unwrap();
        let started = Instant::now();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(3), stream.read_to_string(&mut response))
            .await
            .expect("the connection closes")
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let router = Router::new().route("/", get(|| async { "ok" }));
        let served = tokio::spawn(Listeners::new(quick(), None).serve(
            listener,
            Kind::Http,
            router,
            shutdown,
        ));
        assert!(get_root(address).await.starts_with("HTTP/1.1 200"));
        trigger.fire();
        tokio::time::timeout(Duration::from_secs(2), served)
            .await
            .expect("returns")
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(address).await.is_err());
    }
}
