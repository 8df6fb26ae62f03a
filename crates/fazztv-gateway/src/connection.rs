//! Accepting connections and serving each on its own task, with graceful shutdown (what
//! `axum::serve` does), and one thing it cannot do: a connection's task that wakes itself while
//! it runs is polled again at once ([`Repoll`]).
//!
//! Why: hyper hands a request's body to the handler through a channel whose receiver wakes the
//! connection's dispatcher for each chunk it takes, even once the dispatcher has sent the whole
//! body and dropped its sender. The handler runs on the dispatcher's task, so every request
//! with a body woke its own task. tokio treats such a wake as a yield: the task goes to the
//! back of the queue and another worker thread is woken (a futex call and a context switch)
//! only to find nothing to do. That was about half of what the gateway's JSON requests cost
//! over a bare proxy's.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::body::Body;
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::Live;
use crate::endpoint;

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting and waits
/// for the connections open then to finish what they are serving (streams included).
pub(crate) async fn serve(
    listener: TcpListener,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                wait_after(&error).await;
                continue;
            }
        };
        // Without it an SSE stream's small writes wait for the client's delayed ACK
        // (Nagle): ~40 ms between chunks.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!("could not set TCP_NODELAY on a connection: {error}");
        }
        let live = live.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let live = live.clone();
            async move { Ok::<_, Infallible>(endpoint::handle(&live, request.map(Body::new)).await) }
        });
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(Repoll::new(async move {
            if let Err(error) = connection.await {
                tracing::debug!("a connection ended with an error: {error}");
            }
        }));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed `accept`: a connection that failed before it was accepted concerns that
/// client only; anything else (out of file descriptors, most often) is logged, and accepting
/// resumes a second later rather than spinning.
async fn wait_after(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("could not accept a connection: {error}; trying again in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How many times in a row a future that keeps waking itself is polled again before it goes
/// back to the scheduler, so that one never keeps a worker from the other tasks.
const REPOLLS: usize = 4;

/// Not being polled.
const IDLE: u8 = 0;
/// Being polled.
const POLLING: u8 = 1;
/// Woken while being polled: to be polled again.
const WOKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// A future that, when woken while it is being polled (by itself, or by anyone else in
    /// the meantime), is polled again at once instead of being rescheduled. Other wakes reach
    /// its task as usual.
    pub(crate) struct Repoll<F> {
        #[pin]
        future: F,
        relay: Arc<Relay>,
        waker: Waker,
    }
}

/// What the wrapped future's waker does: notes a wake during a poll, or passes it on to the
/// task.
#[derive(Default)]
struct Relay {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
            == Err(IDLE)
        {
            self.task.wake();
        }
    }
}

impl<F> Repoll<F> {
    pub(crate) fn new(future: F) -> Self {
        let relay = Arc::new(Relay::default());
        let waker = Waker::from(relay.clone());
        Self {
            future,
            relay,
            waker,
        }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // First, so that a wake from now on reaches this task.
        this.relay.task.register(cx.waker());
        let mut inner = Context::from_waker(this.waker);
        for _ in 0..REPOLLS {
            this.relay.state.store(POLLING, Ordering::Release);
            let poll = this.future.as_mut().poll(&mut inner);
            let woken = this.relay.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if poll.is_ready() || !woken {
                return poll;
            }
        }
        // It keeps waking itself: let the scheduler run the others first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicUsize;

    /// Counts the wakes its task gets.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A task that counts its wakes, and its waker.
    fn task() -> (Arc<Counted>, Waker) {
        let task = Arc::new(Counted::default());
        (task.clone(), Waker::from(task))
    }

    /// Polls `future` once as `waker`'s task.
    fn poll_once<F: Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_wake_during_a_poll_polls_again_at_once_and_never_reaches_the_task() {
        let (task, waker) = task();
        let mut polls = 0;
        let mut future = pin!(Repoll::new(std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        })));
        assert_eq!(poll_once(future.as_mut(), &waker), Poll::Ready(3));
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_future_that_keeps_waking_itself_goes_back_to_the_scheduler() {
        let (task, waker) = task();
        let mut polls = 0;
        let mut future = pin!(Repoll::new(std::future::poll_fn(|cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })));
        assert!(poll_once(future.as_mut(), &waker).is_pending());
        assert_eq!(polls, REPOLLS);
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task() {
        let (task, waker) = task();
        let stored = std::sync::Mutex::new(None);
        let mut future = pin!(Repoll::new(std::future::poll_fn(|cx| {
            *stored.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })));
        assert!(poll_once(future.as_mut(), &waker).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        let stored = stored.lock().unwrap().take().expect("polled");
        stored.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }
}
