//! The HTTP server loop, hardened against slow and numerous clients.
//!
//! - A connection that does not send a complete request head within `http.header_timeout` is
//!   closed (hyper's header-read timeout).
//! - At most `http.max_connections` connections are open, well below the default limit of
//!   1024 open files, so the process can always accept. When a new connection arrives at the
//!   limit, the connection that has been idle (waiting for a request head) the longest is
//!   closed to make room; only when every connection is busy answering is the new one refused.
//!   A flood of slow clients therefore cycles through the idle slots while a probe, which
//!   sends its request at once, is answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::config::HttpGuards;

/// How long open connections get to finish their request at shutdown.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// The open connections, and the idle ones in the order they became idle.
#[derive(Default)]
struct Registry {
    open: usize,
    next: u64,
    /// `idle since (sequence) -> the connection's eviction signal`.
    idle: BTreeMap<u64, Arc<Notify>>,
}

/// One connection's place in the registry.
struct Slot {
    registry: Arc<Mutex<Registry>>,
    evict: Arc<Notify>,
    /// Its key in `Registry::idle` while it waits for a request head.
    idle_key: Mutex<Option<u64>>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn idle(&self) {
        let mut registry = self.lock();
        let key = registry.next;
        registry.next += 1;
        registry.idle.insert(key, self.evict.clone());
        *self.idle_key.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    fn busy(&self) {
        let key = self
            .idle_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(key) = key {
            self.lock().idle.remove(&key);
        }
    }

    fn close(&self) {
        self.busy();
        let mut registry = self.lock();
        registry.open = registry.open.saturating_sub(1);
    }
}

/// Serves `app` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    guards: HttpGuards,
    mut stop: watch::Receiver<bool>,
) {
    let registry = Arc::new(Mutex::new(Registry::default()));
    loop {
        let accepted = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a reset before accept: wait a little, go on.
                warn!(error = %e, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        {
            let mut r = registry.lock().unwrap_or_else(PoisonError::into_inner);
            if r.open >= guards.max_connections {
                match r.idle.pop_first() {
                    Some((_, evict)) => evict.notify_one(),
                    None => {
                        debug!("HTTP connection refused: every connection is busy (http.max_connections)");
                        continue;
                    }
                }
            }
            r.open += 1;
        }
        let slot = Arc::new(Slot {
            registry: registry.clone(),
            evict: Arc::new(Notify::new()),
            idle_key: Mutex::new(None),
        });
        slot.idle();
        tokio::spawn(connection(stream, app.clone(), guards, slot, stop.clone()));
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    guards: HttpGuards,
    slot: Arc<Slot>,
    mut stop: watch::Receiver<bool>,
) {
    let service_slot = slot.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        let slot = service_slot.clone();
        async move {
            slot.busy();
            let response = app.oneshot(request).await;
            slot.idle();
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(guards.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "HTTP connection ended");
            }
        }
        () = slot.evict.notified() => debug!("closed the longest-idle HTTP connection to make room"),
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, conn.as_mut()).await;
        }
    }
    slot.close();
}
