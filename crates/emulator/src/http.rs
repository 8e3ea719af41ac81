//! The emulator's HTTP side: the loopback listener, Basic auth, one serialized session per
//! (user, source address), injected faults and reboots, request records. RouterOS semantics live
//! in `rest`; this module only decides whether and how a request reaches them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::rest::{Reply, dispatch};
use super::store::RosError;
use super::{Emulator, EmulatorError, FaultKind, RequestRecord};

/// A served emulator. Dropping it stops the server (as [`RunningEmulator::shutdown`] does).
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    emulator: Emulator,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:<port>` (the REST root is `<url>/rest`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stops accepting, ends hanging requests and waits for the server to finish.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(t) = self.task.take() {
            // A join error means the server task panicked; there is nothing left to stop.
            let _ = t.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            // The receiver is gone only when the server already stopped.
            let _ = s.send(());
        }
        self.emulator.cut_all();
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.stop_now();
    }
}

pub(super) async fn serve(
    emu: Emulator,
    addr: SocketAddr,
) -> Result<RunningEmulator, EmulatorError> {
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let local = tcp
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let listener = EmuListener {
        tcp,
        emu: emu.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(emu.clone()).into_make_service_with_connect_info::<ConnMeta>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // Either a stop or the handle being dropped ends the server.
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "emulator server ended with an error");
        }
    });
    Ok(RunningEmulator {
        addr: local,
        emulator: emu,
        stop: Some(stop),
        task: Some(task),
    })
}

pub(super) fn router(emu: Emulator) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(emu)
}

/// Accepts TCP connections; while the router reboots, closes them at once.
struct EmuListener {
    tcp: TcpListener,
    emu: Emulator,
}

impl Listener for EmuListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    if self.emu.is_down() {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    return (
                        KillableStream {
                            inner: stream,
                            killed: Arc::new(AtomicBool::new(false)),
                        },
                        peer,
                    );
                }
                // Accept errors (e.g. too many open files) are transient; back off briefly.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A TCP stream the handler can cut: once killed, writes fail and reads end, so hyper drops the
/// connection without sending the response.
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

fn killed_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "emulator closed the connection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Per-connection data the handler sees: the peer and the connection's kill switch.
#[derive(Clone, Debug)]
struct ConnMeta {
    peer: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, EmuListener>> for ConnMeta {
    fn connect_info(stream: IncomingStream<'_, EmuListener>) -> Self {
        ConnMeta {
            peer: *stream.remote_addr(),
            killed: stream.io().killed.clone(),
        }
    }
}

async fn handle(State(emu): State<Emulator>, req: Request) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnMeta>>()
        .map(|c| c.0.clone());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 16 << 20).await {
        Ok(b) => b,
        Err(_) => Bytes::new(),
    };
    let path_q = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let mut record = RequestRecord {
        method: method.to_string(),
        path: path_q,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        user: None,
    };

    if emu.is_down() {
        return close(&emu, conn.as_ref(), record);
    }
    let Some(user) = authenticate(&emu, &headers) else {
        return finish(&emu, record, Err(unauthorized()));
    };
    record.user = Some(user.clone());

    // One session per (user, source address): the whole request runs under its lock.
    let session = {
        let mut sessions = emu.inner.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .entry((user, conn.as_ref().map(|c| c.peer.ip())))
            .or_default()
            .clone()
    };
    let mut epoch = emu.inner.epoch.subscribe();
    let start_epoch = *epoch.borrow_and_update();
    emu.inner.waiting.fetch_add(1, Ordering::SeqCst);
    let guard = tokio::select! {
        g = session.lock_owned() => Some(g),
        _ = epoch.changed() => None,
    };
    emu.inner.waiting.fetch_sub(1, Ordering::SeqCst);
    let Some(_guard) = guard else {
        return close(&emu, conn.as_ref(), record);
    };
    if *epoch.borrow() != start_epoch || emu.is_down() {
        return close(&emu, conn.as_ref(), record);
    }

    let mut release = emu.inner.release.subscribe();
    release.borrow_and_update();
    let fault = take_fault(&emu, method.as_str(), uri.path());
    match fault {
        Some(FaultKind::Status500) => {
            let err = RosError {
                status: 500,
                detail: Some("emulator: injected fault".into()),
            };
            return finish(&emu, record, Err(err));
        }
        Some(FaultKind::Unauthorized) => return finish(&emu, record, Err(unauthorized())),
        Some(FaultKind::Close) => return close(&emu, conn.as_ref(), record),
        Some(FaultKind::Hang(d)) => {
            let cut = async {
                // Ends on release_hangs, a reboot or shutdown.
                tokio::select! {
                    _ = release.changed() => {}
                    _ = epoch.changed() => {}
                }
            };
            match d {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = cut => return close(&emu, conn.as_ref(), record),
                    }
                }
                None => {
                    cut.await;
                    return close(&emu, conn.as_ref(), record);
                }
            }
        }
        Some(FaultKind::CloseAfterApply) | None => {}
    }

    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let result = if let Some(rest_path) = path.strip_prefix("/rest") {
        if !rest_path.is_empty() && !rest_path.starts_with('/') {
            Err(RosError::not_found())
        } else {
            let emu2 = emu.clone();
            let m = method.to_string();
            let rp = rest_path.to_string();
            let b = body.clone();
            // Scripts may `:delay`; run off the async workers.
            match tokio::task::spawn_blocking(move || dispatch(&emu2, &m, &rp, &query, &b)).await {
                Ok(r) => r,
                Err(_) => Err(RosError {
                    status: 500,
                    detail: Some("emulator: internal error".into()),
                }),
            }
        }
    } else {
        Err(RosError::not_found())
    };
    if fault == Some(FaultKind::CloseAfterApply) {
        return close(&emu, conn.as_ref(), record);
    }
    finish(&emu, record, result)
}

fn unauthorized() -> RosError {
    RosError {
        status: 401,
        detail: None,
    }
}

fn take_fault(emu: &Emulator, method: &str, path: &str) -> Option<FaultKind> {
    let mut st = emu.lock();
    let i = st
        .faults
        .iter()
        .position(|f| f.count > 0 && f.matches(method, path))?;
    let kind = st.faults[i].kind;
    st.faults[i].count -= 1;
    if st.faults[i].count == 0 {
        st.faults.remove(i);
    }
    Some(kind)
}

fn authenticate(emu: &Emulator, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    let st = emu.lock();
    let configured = st
        .users
        .iter()
        .any(|u| u.name == name && u.password == password);
    // Users created through /user (e.g. by the install script) log in too, unless disabled.
    let added = st.store.table("/user").iter().any(|o| {
        o.get("name") == Some(name)
            && o.get("password") == Some(password)
            && o.get("disabled") != Some("true")
    });
    (configured || added).then(|| name.to_string())
}

/// Records the request as unanswered and cuts its connection (500 when there is none to cut,
/// i.e. when served through [`Emulator::router`] by someone else's listener).
fn close(emu: &Emulator, conn: Option<&ConnMeta>, mut record: RequestRecord) -> Response {
    record.status = 0;
    emu.lock().requests.push(record);
    match conn {
        Some(c) => {
            c.killed.store(true, Ordering::SeqCst);
            // Never written: the connection is dead.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        None => {
            let err = RosError {
                status: 500,
                detail: Some("emulator: connection closed".into()),
            };
            json_response(err.status, err.body().to_string())
        }
    }
}

fn finish(emu: &Emulator, mut record: RequestRecord, result: Result<Reply, RosError>) -> Response {
    let (status, body) = match result {
        Ok(Reply::Json(v)) => (200, Some(v.to_string())),
        Ok(Reply::Empty) => (200, None),
        Err(e) => (e.status, Some(e.body().to_string())),
    };
    record.status = status;
    emu.lock().requests.push(record);
    let mut resp = match body {
        Some(b) => json_response(status, b),
        None => Response::builder()
            .status(status)
            .body(Body::empty())
            .unwrap_or_default(),
    };
    if status == 401 {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"RouterOS\""),
        );
    }
    resp
}

fn json_response(status: u16, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
