//! The HTTP/1 accept loop, with the connection limits that `axum::serve` does
//! not offer: a cap on open connections, a deadline for a request head, an idle
//! timeout between requests on a kept-alive connection, and a write timeout for
//! clients that stop reading an answer. Without them an idle or half-sent
//! connection stays open for ever, and a thousand of them exhaust the process's
//! file descriptors.
//!
//! The timeouts live in [`GuardedIo`], a wrapper around the socket that watches
//! the bytes going each way, so they hold whatever hyper does between reads.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use crate::config::ConnectionLimits;

/// How long answers in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops
/// accepting, lets requests in flight finish, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before
                    // accept: not the server's end. Pause so that an fd
                    // shortage does not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Answers are small and often written in more than one piece (streamed
        // bodies): without TCP_NODELAY, Nagle's algorithm and delayed ACKs
        // would hold the last piece back for tens of milliseconds.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service =
            router
                .clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = hyper::server::conn::http1::Builder::new()
            // The wrapper below enforces the head deadline from the first byte
            // (hyper's own would start while the connection is idle).
            .header_read_timeout(None)
            .serve_connection(
                TokioIo::new(GuardedIo::new(stream, limits)),
                TowerToHyperService::new(service),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Idle connections close at once; answers in flight get a moment to
    // finish, but a client that stopped reading does not hold up the exit.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    Ok(())
}

/// Where a connection is in its request cycle, as far as its bytes tell.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request since this instant (the connection opened, or
    /// the previous answer was written).
    Idle(Instant),
    /// A request head is arriving, since this instant.
    Head(Instant),
    /// The head is complete; the answer is being worked out.
    Handling,
}

/// A socket that fails with `TimedOut` when its peer breaks a
/// [`ConnectionLimits`] deadline.
pub struct GuardedIo<T> {
    io: T,
    limits: ConnectionLimits,
    phase: Phase,
    /// The last bytes of the head read so far, to spot its end (`\r\n\r\n`).
    tail: [u8; 3],
    read_timer: Pin<Box<Sleep>>,
    /// Since when a write has been waiting on the peer.
    write_blocked_since: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
}

impl<T> GuardedIo<T> {
    pub fn new(io: T, limits: ConnectionLimits) -> Self {
        let now = Instant::now();
        GuardedIo {
            io,
            limits,
            phase: Phase::Idle(now),
            tail: [0; 3],
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            write_blocked_since: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// Moves the phase along for bytes just read.
    fn saw_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let started = match self.phase {
            Phase::Handling => return,
            Phase::Idle(_) => Instant::now(),
            Phase::Head(since) => since,
        };
        for &byte in bytes {
            let [a, b, c] = self.tail;
            // httparse accepts a bare `\n` as a line end too.
            let head_ends =
                byte == b'\n' && (c == b'\n' || (c == b'\r' && b == b'\n' && a == b'\r'));
            self.tail = [b, c, byte];
            if head_ends {
                self.phase = Phase::Handling;
                self.tail = [0; 3];
                return;
            }
        }
        self.phase = Phase::Head(started);
    }

    /// When a pending read gives up, if it ever does in this phase.
    fn read_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle(since) => Some(since + self.limits.keep_alive_timeout),
            Phase::Head(since) => Some(since + self.limits.header_read_timeout),
            Phase::Handling => None,
        }
    }
}

/// Whether `deadline` has passed; if not, `timer` wakes the task by then.
///
/// Deadlines only move later (each request or answer pushes them on), so a
/// timer already set for an earlier moment is left as it is: when it fires,
/// the task comes back here and sets it for the real deadline. Re-arming the
/// timer on every request would touch the runtime's timer wheel each time,
/// which measurably slowed the cheapest requests.
fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    loop {
        if Instant::now() >= deadline {
            return true;
        }
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Pending => return false,
            // An earlier deadline passed: set the real one and wait for it.
            Poll::Ready(()) => timer.as_mut().reset(deadline),
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw_bytes(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.read_deadline() {
                Some(deadline) if expired(&mut this.read_timer, deadline, cx) => {
                    Poll::Ready(Err(timed_out(match this.phase {
                        Phase::Head(_) => "request head not received in time",
                        _ => "connection idle too long",
                    })))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> GuardedIo<T> {
    /// Tracks a write's progress: a stalled write past the timeout is an
    /// error; bytes written mean an answer is going out, so the request was
    /// read and the idle clock for the next one runs from the last byte written.
    fn track_write<R: Written>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Pending => {
                let since = *self.write_blocked_since.get_or_insert_with(Instant::now);
                if expired(&mut self.write_timer, since + self.limits.write_timeout, cx) {
                    return Poll::Ready(Err(timed_out("client stopped reading the answer")));
                }
                Poll::Pending
            }
            ready => {
                self.write_blocked_since = None;
                if let Poll::Ready(Ok(done)) = &ready
                    && done.wrote_bytes()
                {
                    self.phase = Phase::Idle(Instant::now());
                }
                ready
            }
        }
    }
}

/// What a write call returns: a byte count, or `()` for a flush.
trait Written {
    fn wrote_bytes(&self) -> bool;
}

impl Written for usize {
    fn wrote_bytes(&self) -> bool {
        *self > 0
    }
}

impl Written for () {
    fn wrote_bytes(&self) -> bool {
        false
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.track_write(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.track_write(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.track_write(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_times_out_after_the_keep_alive_timeout() {
        let (_client, server) = duplex(1024);
        let mut guarded = GuardedIo::new(server, limits());
        let start = Instant::now();
        let mut buf = [0u8; 16];
        let error = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn half_a_head_times_out_after_the_header_timeout() {
        let (mut client, server) = duplex(1024);
        let mut guarded = GuardedIo::new(server, limits());
        tokio::time::sleep(Duration::from_secs(20)).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 64];
        let n = guarded.read(&mut buf).await.unwrap();
        assert_eq!(n, 25);
        let error = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_head_split_over_reads_stops_the_head_clock() {
        let (mut client, server) = duplex(1024);
        let mut guarded = GuardedIo::new(server, limits());
        let mut buf = [0u8; 64];
        for piece in [&b"GET / HTTP/1.1\r"[..], b"\nHost: x\r\n\r", b"\n"] {
            client.write_all(piece).await.unwrap();
            let read = guarded.read(&mut buf).await.unwrap();
            assert_eq!(read, piece.len());
        }
        // Handling: a read may wait as long as the handler takes.
        let waited = tokio::time::timeout(Duration::from_secs(3600), guarded.read(&mut buf)).await;
        assert!(waited.is_err(), "no deadline while handling");
        // Once the answer is written, the keep-alive clock runs.
        guarded.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let start = Instant::now();
        let error = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_after_the_write_timeout() {
        let (client, server) = duplex(64);
        let mut guarded = GuardedIo::new(server, limits());
        let start = Instant::now();
        let error = guarded.write_all(&[b'x'; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        // A slow but steady reader is never cut.
        let (mut client2, server2) = duplex(64);
        let mut guarded = GuardedIo::new(server2, limits());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match client2.read(&mut buf).await.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        guarded.write_all(&[b'x'; 4096]).await.unwrap();
        guarded.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), 4096);
        drop(client);
    }
}
