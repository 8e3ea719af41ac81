//! A webhook receiver in one of the lab's namespaces (the internet, behind the ISPs): an HTTP
//! server on a runtime whose threads live there, recording every request with its client
//! address (after the router's masquerade: which ISP it came through) and when it arrived.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{Method, Uri};

use super::lab::Lab;

/// One request the receiver took.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub at: Instant,
    pub peer: SocketAddr,
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

pub(crate) struct Receiver {
    pub port: u16,
    hooks: Arc<Mutex<Vec<Hook>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Listens on `addr` (port 0: any) in namespace `which` of `lab`; answers 200 to anything.
    pub(crate) fn start(lab: &Lab, which: &str, addr: Ipv4Addr) -> Receiver {
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let seen = hooks.clone();
        // Worker threads inherit the namespace of the thread that builds the runtime.
        let (rt, port) = lab.run_in(which, move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let listener = rt
                .block_on(tokio::net::TcpListener::bind((addr, 0)))
                .expect("bind the webhook receiver");
            let port = listener.local_addr().expect("local addr").port();
            let app = axum::Router::new().fallback(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      method: Method,
                      uri: Uri,
                      body: Bytes| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push(Hook {
                            at: Instant::now(),
                            peer,
                            method: method.to_string(),
                            path: uri.path().to_string(),
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                        });
                        "{}"
                    }
                },
            );
            rt.spawn(async move {
                let _ = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await;
            });
            (rt, port)
        });
        Receiver {
            port,
            hooks,
            rt: Some(rt),
        }
    }

    /// Requests so far, in arrival order.
    pub(crate) fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
