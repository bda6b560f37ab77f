//! What the simulators share: a loopback HTTP server on its own thread and runtime
//! ([`Loopback`], which every simulator runs on), and for the asset-system simulators a log
//! of every request and faults injected by request number.
//!
//! An asset-system simulator is a [`Service`]: plain state that answers one request at a
//! time while it is locked, so tests can read and change it between requests through
//! [`Loopback::with`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

/// The largest request body a simulator reads.
const MAX_BODY: usize = 16 << 20;

/// A fault to inject into one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After` (seconds, may be fractional); the request is not carried out.
    Throttle(f64),
    /// This server error (500, 502, 503, 504); the request is not carried out.
    ServerError(u16),
    /// The connection breaks after the status line; the request is not carried out.
    Drop,
    /// The request is carried out, then the connection breaks before the answer arrives.
    DropAfter,
    /// This status and body instead of the real answer (garbage, hostile answers); the
    /// request is not carried out.
    Answer(u16, String),
}

/// One request a simulator received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `POST`, `PATCH`…
    pub method: String,
    /// The path, e.g. `/api/v1/users/3`.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The body, when it was JSON.
    pub body: Option<Json>,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
}

impl Logged {
    /// Whether the request asks for a change (anything but GET).
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// The requests a simulator received and the faults waiting for later ones.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Every request so far, in order.
    pub log: Vec<Logged>,
    /// Faults by request number (1 = the first request).
    pub faults: BTreeMap<u64, Fault>,
    /// How long after it arrived every request is answered (the work of answering
    /// included), as on a real server; none by default.
    pub latency: std::time::Duration,
    received: u64,
}

impl Traffic {
    /// How many requests asked for a change.
    pub fn writes(&self) -> usize {
        self.log.iter().filter(|l| l.is_write()).count()
    }

    /// The requests with this method and path.
    pub fn requests(&self, method: &str, path: &str) -> Vec<&Logged> {
        self.log
            .iter()
            .filter(|l| l.method == method && l.path == path)
            .collect()
    }

    /// The number the next request will have.
    pub fn next_number(&self) -> u64 {
        self.received + 1
    }
}

/// A request as a service sees it.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The path.
    pub path: String,
    /// Query parameters, decoded (the last of repeated ones).
    pub query: BTreeMap<String, String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, when it is JSON.
    pub body: Option<Json>,
    /// The body as sent.
    pub raw: Bytes,
}

impl Request {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A service's answer.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: Json,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// An HTML page sent instead of `body` (a vendor's error page).
    pub html: Option<String>,
}

impl Reply {
    /// An answer with this status and JSON body.
    pub fn json(status: u16, body: Json) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
            html: None,
        }
    }

    /// An HTML page with this status, as a web server or a proxy answers an error.
    pub fn html(status: u16, page: String) -> Reply {
        Reply {
            html: Some(page),
            ..Reply::json(status, Json::Null)
        }
    }
}

/// A simulated API.
pub trait Service: Send + 'static {
    /// The thread's name.
    const NAME: &'static str;

    /// Its traffic, for the log and the faults.
    fn traffic(&mut self) -> &mut Traffic;

    /// Answers one request.
    fn serve(&mut self, request: &Request) -> Reply;
}

/// An axum app served on a free loopback port from its own thread and runtime (so it works
/// from any test, sync or async), around state that tests reach through [`Loopback::with`];
/// stops when dropped.
#[derive(Debug)]
pub struct Loopback<S> {
    addr: SocketAddr,
    state: Arc<Mutex<S>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A running asset-system simulator; stops when dropped.
pub type Server<S> = Loopback<S>;

impl<S: Send + 'static> Loopback<S> {
    /// Starts serving on a free loopback port, with `workers` runtime threads named `name`:
    /// `state` makes the state for the address, `app` the routes for the shared state and
    /// the address. Answers go out without Nagle delays.
    pub fn serve(
        name: &'static str,
        workers: usize,
        state: impl FnOnce(SocketAddr) -> S,
        app: impl FnOnce(Arc<Mutex<S>>, SocketAddr) -> axum::Router,
    ) -> std::io::Result<Loopback<S>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(state(addr)));
        let app = app(Arc::clone(&state), addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            // Busy workers look for ready sockets and due timers more often than tokio's
            // default, so a simulated latency is not stretched while answers queue up.
            .event_interval(4)
            .thread_name(name)
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
                runtime.shutdown_background();
            })?;
        Ok(Loopback {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` with the simulator's state locked: change its data or faults, read its log.
    pub fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut lock(&self.state))
    }
}

impl<S: Service> Loopback<S> {
    /// Starts `service` on a free loopback port.
    pub fn start(service: S) -> std::io::Result<Server<S>> {
        Loopback::serve(
            S::NAME,
            1,
            |_| service,
            |state, _| axum::Router::new().fallback(handle::<S>).with_state(state),
        )
    }
}

impl<S> Drop for Loopback<S> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The state lock; a panic elsewhere never makes the simulator unusable.
pub(crate) fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits until a simulated latency has passed since a request `arrived`: the work of
/// answering is part of the latency, as on a real server.
///
/// The runtime's timer only fires on whole milliseconds (a 5 ms latency came out as 5.8 ms
/// on average), so the waits are kept by one thread for all simulators of the process that
/// sleeps to the next deadline with the operating system's timer, accurate to tens of
/// microseconds, and wakes each waiting request when its time has come.
pub(crate) async fn delay(arrived: std::time::Instant, latency: std::time::Duration) {
    if latency.is_zero() {
        return;
    }
    let Some(alarms) = Alarms::global() else {
        // Without the thread (it could not start), the runtime's timer does.
        tokio::time::sleep_until((arrived + latency).into()).await;
        return;
    };
    let (wake, woken) = tokio::sync::oneshot::channel();
    alarms.set(arrived + latency, wake);
    // The alarm thread never drops a waiter before its time.
    let _ = woken.await;
}

/// The deadlines of the requests waiting in [`delay`], kept by one thread.
struct Alarms {
    due: Mutex<std::collections::BinaryHeap<Alarm>>,
    changed: std::sync::Condvar,
}

/// One waiting request: its deadline and its wake-up.
struct Alarm(std::time::Instant, tokio::sync::oneshot::Sender<()>);

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    /// The earliest deadline is the greatest, so the heap's top is the next one due.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

impl Alarms {
    /// The process's alarms, their thread started on first use; `None` if it cannot start.
    fn global() -> Option<&'static Alarms> {
        static ALARMS: std::sync::OnceLock<Option<&'static Alarms>> = std::sync::OnceLock::new();
        *ALARMS.get_or_init(|| {
            let alarms: &'static Alarms = Box::leak(Box::new(Alarms {
                due: Mutex::new(std::collections::BinaryHeap::new()),
                changed: std::sync::Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("sim-latency".into())
                .spawn(|| alarms.keep())
                .ok()
                .map(|_| alarms)
        })
    }

    fn set(&self, at: std::time::Instant, wake: tokio::sync::oneshot::Sender<()>) {
        let mut due = lock(&self.due);
        let first = due.peek().is_none_or(|next| at < next.0);
        due.push(Alarm(at, wake));
        if first {
            self.changed.notify_one();
        }
    }

    /// Wakes each request at its deadline, for as long as the process runs.
    fn keep(&self) {
        let mut due = lock(&self.due);
        loop {
            let now = std::time::Instant::now();
            while due.peek().is_some_and(|next| next.0 <= now) {
                if let Some(Alarm(_, wake)) = due.pop() {
                    // A request whose client went away no longer waits.
                    let _ = wake.send(());
                }
            }
            due = match due.peek().map(|next| next.0 - now) {
                Some(wait) => match self.changed.wait_timeout(due, wait) {
                    Ok((due, _)) => due,
                    Err(poisoned) => poisoned.into_inner().0,
                },
                None => self
                    .changed
                    .wait(due)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            };
        }
    }
}

/// A body that breaks after `start`: the headers go out, then the client sees a broken
/// connection.
pub(crate) fn broken(start: &'static [u8]) -> Body {
    Body::from_stream(futures_util::stream::iter([
        Ok(Bytes::from_static(start)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped",
        )),
    ]))
}

/// What to send back.
enum Outcome {
    Reply(Reply),
    Raw(u16, String),
    Dropped,
}

async fn handle<S: Service>(State(state): State<Arc<Mutex<S>>>, request: HttpRequest) -> Response {
    let arrived = std::time::Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let headers = request.headers().clone();
    let raw = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice::<Json>(&raw).ok();
    let request = Request {
        method,
        path,
        query,
        headers,
        body,
        raw,
    };
    let (outcome, latency) = {
        let mut service = lock(&state);
        let traffic = service.traffic();
        let latency = traffic.latency;
        traffic.received += 1;
        let fault = traffic.faults.remove(&traffic.received);
        let outcome = match fault {
            None => Outcome::Reply(service.serve(&request)),
            Some(Fault::Throttle(seconds)) => {
                let mut reply =
                    Reply::json(429, serde_json::json!({"message": "Too Many Attempts."}));
                reply.headers.push(("retry-after", format!("{seconds}")));
                Outcome::Reply(reply)
            }
            Some(Fault::ServerError(status)) => Outcome::Reply(Reply::json(
                status,
                serde_json::json!({"message": "Server Error"}),
            )),
            Some(Fault::Drop) => Outcome::Dropped,
            Some(Fault::DropAfter) => {
                service.serve(&request);
                Outcome::Dropped
            }
            Some(Fault::Answer(status, body)) => Outcome::Raw(status, body),
        };
        let status = match &outcome {
            Outcome::Reply(reply) => reply.status,
            Outcome::Raw(status, _) => *status,
            Outcome::Dropped => 0,
        };
        service.traffic().log.push(Logged {
            method: request.method,
            path: request.path,
            query: request.query,
            body: request.body,
            status,
        });
        (outcome, latency)
    };
    delay(arrived, latency).await;
    respond(outcome)
}

fn respond(outcome: Outcome) -> Response {
    let (status, body, headers, content_type) = match outcome {
        Outcome::Dropped => (200, broken(b"{\"status\":"), Vec::new(), "application/json"),
        Outcome::Raw(status, text) => (status, Body::from(text), Vec::new(), "application/json"),
        Outcome::Reply(reply) => match reply.html {
            Some(page) => (reply.status, Body::from(page), reply.headers, "text/html"),
            None => (
                reply.status,
                Body::from(reply.body.to_string()),
                reply.headers,
                "application/json",
            ),
        },
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, body, content_type, headers)
}

/// An answer of `status` with `body` of `content_type` and the `extra` headers (a value that
/// cannot be a header value is left out).
pub(crate) fn response<N: header::IntoHeaderName>(
    status: StatusCode,
    body: Body,
    content_type: &'static str,
    extra: Vec<(N, String)>,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    for (name, value) in extra {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}
