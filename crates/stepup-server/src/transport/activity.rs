//! What one connection is doing, for its idle timeout: when a byte last moved either way, and how many
//! requests are in progress on it.
//!
//! hyper bounds the wait for a request head (its header-read timeout) but has no notion of a connection that
//! stalls elsewhere: a client that stops reading its answer leaves the write pending forever. The connection
//! task asks [`Activity::idle_deadline`] when the connection last showed signs of life; a request in progress
//! counts as life, so a slow handler is bounded by the request timeout, not cut by the idle one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved a byte and how many requests it has in progress.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` when a byte last moved.
    last_moved_ms: AtomicU64,
    in_progress: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last_moved_ms: AtomicU64::new(0),
            in_progress: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_moved_ms.store(elapsed, Ordering::Relaxed);
    }

    /// Marks a request in progress until the returned guard drops.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestInProgress {
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        RequestInProgress(Arc::clone(self))
    }

    /// When the connection counts as idle if nothing happens before: `idle` after the last byte moved, or
    /// `idle` from now while a request is in progress.
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_progress.load(Ordering::Relaxed) > 0 {
            return Instant::now() + idle;
        }
        self.opened + Duration::from_millis(self.last_moved_ms.load(Ordering::Relaxed)) + idle
    }
}

/// A request in progress on a connection (see [`Activity::begin_request`]).
#[derive(Debug)]
pub(crate) struct RequestInProgress(Arc<Activity>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A byte stream that records its progress in an [`Activity`].
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(stream: S, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_in_progress_keeps_the_connection_alive() {
        let activity = Activity::new();
        let idle = Duration::from_secs(5);
        assert_eq!(activity.idle_deadline(idle), activity.opened + idle);
        let request = activity.begin_request();
        std::thread::sleep(Duration::from_millis(20));
        assert!(activity.idle_deadline(idle) >= activity.opened + Duration::from_millis(20) + idle);
        drop(request);
        let after = activity.idle_deadline(idle);
        assert!(
            after >= activity.opened + Duration::from_millis(20) + idle && after <= Instant::now() + idle
        );
    }
}
