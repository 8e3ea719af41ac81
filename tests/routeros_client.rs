//! The REST client against local servers on loopback: a scripted HTTP/1.1 server (plain or TLS
//! with certificates generated here) that records every request and answers from a script, so the
//! tests see exactly which method, path, headers and body went out, how often a call was retried,
//! and how faults (500, hang, closed connection, 401) are reported.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use uplinkd::config::{Rest, Trust};
use uplinkd::routeros::{
    Client, Error, ExecMode, Executed, LogLevel, Menu, Method, Outcome, Props, Query, Removed,
    RetryPolicy, RosId, tls,
};
use uplinkd::types::Secret;

// ------------------------------------------------------------------------------------------------
// A scripted HTTP/1.1 server.

/// What the server does with the next request.
#[derive(Debug, Clone)]
enum Reply {
    Json(u16, &'static str),
    /// Never answer (the connection stays open).
    Hang,
    /// Close the connection without answering.
    Close,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path with the raw query string.
    target: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    seen: Vec<Seen>,
}

#[derive(Clone, Default)]
struct Server {
    script: Arc<Mutex<Script>>,
}

impl Server {
    fn reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().replies.extend(replies);
    }
    fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
    fn next(&self, seen: Seen) -> Reply {
        let mut s = self.script.lock().unwrap();
        s.seen.push(seen);
        s.replies.pop_front().unwrap_or(Reply::Json(200, "[]"))
    }
}

async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let mut content_type = None;
    let mut authorization = None;
    let mut len = 0usize;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim().to_owned();
            match k.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(v),
                "authorization" => authorization = Some(v),
                "content-length" => len = v.parse().ok()?,
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(Seen {
        method,
        target,
        content_type,
        authorization,
        body: String::from_utf8(body).ok()?,
    })
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(server: Server, mut s: S) {
    while let Some(seen) = read_request(&mut s).await {
        match server.next(seen) {
            Reply::Json(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if s.write_all(head.as_bytes()).await.is_err()
                    || s.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Close => return,
        }
    }
}

async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Plain HTTP server; returns its base URL.
async fn plain_server(server: Server) -> String {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_conn(server.clone(), s));
        }
    });
    format!("http://{addr}")
}

/// HTTPS server with the given certificate chain and key; returns its base URL.
async fn tls_server(
    server: Server,
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> String {
    tls::install_crypto_provider();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let server = server.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve_conn(server, tls).await;
                }
            });
        }
    });
    format!("https://{addr}")
}

fn rest(url: &str, trust: Trust) -> Rest {
    Rest {
        url: url.parse().expect("a REST URL"),
        user: "uplinkd".into(),
        password: Secret::new("s3cret"),
        trust,
        timeout: Duration::from_millis(500),
    }
}

/// A client with a fast retry policy against a fresh scripted plain-HTTP server.
async fn plain() -> (Client, Server) {
    let server = Server::default();
    let url = plain_server(server.clone()).await;
    let client = Client::new(&rest(&url, Trust::PlainHttp))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        });
    client.enable_call_log();
    (client, server)
}

fn id(s: &str) -> RosId {
    RosId::parse(s).unwrap()
}

// ------------------------------------------------------------------------------------------------
// Certificates.

struct Pki {
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    /// The PEM of the certificate a client should trust (the CA, or the self-signed cert).
    trust_pem: String,
}

fn key_der(k: &rcgen::KeyPair) -> rustls_pki_types::PrivateKeyDer<'static> {
    rustls_pki_types::PrivateKeyDer::Pkcs8(k.serialize_der().into())
}

/// What RouterOS makes by default: self-signed, CA:TRUE, a CN and no subjectAltName.
fn router_like_self_signed() -> Pki {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "router");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Pki {
        chain: vec![cert.der().clone()],
        key: key_der(&key),
        trust_pem: cert.pem(),
    }
}

/// A CA and a leaf for 127.0.0.1 (SAN IP) signed by it.
fn ca_signed_leaf() -> Pki {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "uplinkd test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        chain: vec![leaf_cert.der().clone()],
        key: key_der(&leaf_key),
        trust_pem: ca_cert.pem(),
    }
}

fn write_pem(dir: &tempfile::TempDir, pem: &str) -> std::path::PathBuf {
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, pem).unwrap();
    p
}

const IDENTITY: &str = r#"{"name":"MikroTik"}"#;

// ------------------------------------------------------------------------------------------------
// TLS trust.

#[tokio::test]
async fn pin_accepts_a_self_signed_ca_true_cert_without_san() {
    let pki = router_like_self_signed();
    let pin = tls::sha256(pki.chain[0].as_ref());
    let server = Server::default();
    server.reply([Reply::Json(200, IDENTITY)]);
    let url = tls_server(server.clone(), pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::PinnedSha256(pin))).unwrap();
    let props = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap();
    assert_eq!(props.str("name"), Some("MikroTik"));
    assert_eq!(server.seen()[0].target, "/rest/system/identity");
}

#[tokio::test]
async fn pin_mismatch_is_refused_before_any_request() {
    let pki = router_like_self_signed();
    let mut pin = tls::sha256(pki.chain[0].as_ref());
    pin[31] ^= 0xff;
    let server = Server::default();
    let url = tls_server(server.clone(), pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::PinnedSha256(pin))).unwrap();
    let err = client
        .singleton(&Menu::SYSTEM_IDENTITY)
        .await
        .expect_err("a wrong pin must fail");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, Error::Transport { .. }), "{msg}");
    // The cause is walked out of reqwest's error: the operator sees both fingerprints.
    assert!(msg.contains("does not match the pinned"), "{msg}");
    assert!(msg.starts_with("GET /rest/system/identity"), "{msg}");
    assert!(
        server.seen().is_empty(),
        "no HTTP request may pass a failed pin"
    );
}

#[tokio::test]
async fn ca_file_trusts_a_leaf_signed_by_it() {
    let pki = ca_signed_leaf();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_pem(&dir, &pki.trust_pem);
    let server = Server::default();
    server.reply([Reply::Json(200, IDENTITY)]);
    let url = tls_server(server, pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::CaFile(ca))).unwrap();
    let props = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap();
    assert_eq!(props.str("name"), Some("MikroTik"));
}

#[tokio::test]
async fn ca_file_of_another_ca_is_refused_with_the_cause() {
    let pki = ca_signed_leaf();
    let other = ca_signed_leaf();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_pem(&dir, &other.trust_pem);
    let server = Server::default();
    let url = tls_server(server.clone(), pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::CaFile(ca))).unwrap();
    let err = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap_err();
    // The cause is walked out of reqwest's error (its own Display says only "error sending").
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(server.seen().is_empty());
}

/// The trap that makes the pin necessary: a router's self-signed CA:TRUE certificate given as a
/// CA file is refused by webpki (a CA used as an end entity).
#[tokio::test]
async fn ca_file_cannot_trust_a_self_signed_ca_true_router_cert() {
    let pki = router_like_self_signed();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_pem(&dir, &pki.trust_pem);
    let url = tls_server(Server::default(), pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::CaFile(ca))).unwrap();
    let err = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

#[tokio::test]
async fn bundled_roots_refuse_a_self_signed_router() {
    let pki = router_like_self_signed();
    let server = Server::default();
    let url = tls_server(server.clone(), pki.chain, pki.key).await;
    let client = Client::new(&rest(&url, Trust::WebPki)).unwrap();
    let err = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(server.seen().is_empty());
}

// ------------------------------------------------------------------------------------------------
// Request shapes.

#[tokio::test]
async fn every_request_carries_basic_auth_and_exact_json_content_type() {
    let (client, server) = plain().await;
    server.reply([Reply::Json(200, r#"{".id":"*5"}"#)]);
    client
        .add(&Menu::IP_ROUTE, &Props::new().with("distance", 1u32))
        .await
        .unwrap();
    client.print(&Menu::IP_ROUTE, &Query::all()).await.unwrap();
    let seen = server.seen();
    // base64("uplinkd:s3cret")
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some("Basic dXBsaW5rZDpzM2NyZXQ=")
        );
    }
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[1].content_type, None, "a GET has no body");
}

#[tokio::test]
async fn print_uses_get_with_proplist_and_filters_or_post_with_query_words() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(
            200,
            r#"[{".id":"*1","comment":"uplinkd:route:ISP1-main","disabled":"false","distance":"1"}]"#,
        ),
        Reply::Json(200, r#"[{".id":"*3","type":"ether"}]"#),
    ]);
    let routes = client
        .print(
            &Menu::IP_ROUTE,
            &Query::all()
                .proplist(&["comment", "disabled", "distance"])
                .eq("routing-table", "main"),
        )
        .await
        .unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].id, id("*1"));
    assert_eq!(routes[0].comment(), Some("uplinkd:route:ISP1-main"));
    assert_eq!(routes[0].disabled(), Ok(false));
    assert_eq!(routes[0].u64("distance"), Ok(Some(1)));

    let menu = Menu::parse("/interface").unwrap();
    let ifs = client
        .print(
            &menu,
            &Query::all()
                .proplist(&[".id", "type"])
                .words(&["type=ether", "type=vlan", "#|"]),
        )
        .await
        .unwrap();
    assert_eq!(ifs[0].str("type"), Some("ether"));

    let seen = server.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].target,
        "/rest/ip/route?.proplist=.id,comment,disabled,distance&routing-table=main"
    );
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].target, "/rest/interface/print");
    assert_eq!(
        seen[1].json(),
        serde_json::json!({".proplist": [".id", "type"], ".query": ["type=ether", "type=vlan", "#|"]})
    );
}

#[tokio::test]
async fn add_set_remove_get_and_toggle_shapes() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(
            201,
            r#"{".id":"*1A","comment":"uplinkd:route:ISP1-main","distance":"1"}"#,
        ),
        Reply::Json(200, r#"{".id":"*1A","distance":"2"}"#),
        Reply::Json(200, r#"{".id":"*1A","distance":"2"}"#),
        Reply::Json(204, ""),
        Reply::Json(404, r#"{"error":404,"message":"Not Found"}"#),
    ]);
    let added = client
        .add(
            &Menu::IP_ROUTE,
            &Props::new()
                .with("comment", "uplinkd:route:ISP1-main")
                .with("distance", 1u32)
                .with("disabled", false),
        )
        .await
        .unwrap();
    assert_eq!(added, id("*1A"));
    client
        .set(
            &Menu::IP_ROUTE,
            &added,
            &Props::new().with("distance", 2u32),
        )
        .await
        .unwrap();
    let got = client.get(&Menu::IP_ROUTE, &added).await.unwrap();
    assert_eq!(got.u64("distance"), Ok(Some(2)));
    assert_eq!(
        client.remove(&Menu::IP_ROUTE, &added).await.unwrap(),
        Removed::Deleted
    );
    assert_eq!(
        client.remove(&Menu::IP_ROUTE, &added).await.unwrap(),
        Removed::AlreadyGone
    );
    client
        .disable(&Menu::IP_FIREWALL_MANGLE, &[id("*1"), id("*2")])
        .await
        .unwrap();
    client
        .enable(&Menu::IP_FIREWALL_MANGLE, &[id("*3")])
        .await
        .unwrap();
    let before = client.stats();
    client.enable(&Menu::IP_FIREWALL_MANGLE, &[]).await.unwrap();
    assert_eq!(client.stats().since(&before).total(), 0, "no ids, no call");

    let seen = server.seen();
    let shapes: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.target.clone()))
        .collect();
    let want = [
        ("PUT", "/rest/ip/route"),
        ("PATCH", "/rest/ip/route/*1A"),
        ("GET", "/rest/ip/route/*1A"),
        ("DELETE", "/rest/ip/route/*1A"),
        ("DELETE", "/rest/ip/route/*1A"),
        ("POST", "/rest/ip/firewall/mangle/disable"),
        ("POST", "/rest/ip/firewall/mangle/enable"),
    ];
    assert_eq!(
        shapes,
        want.iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"comment":"uplinkd:route:ISP1-main","distance":"1","disabled":"false"})
    );
    assert_eq!(seen[1].json(), serde_json::json!({"distance":"2"}));
    assert_eq!(seen[3].body, "");
    assert_eq!(seen[5].json(), serde_json::json!({"numbers":"*1,*2"}));
    assert_eq!(seen[6].json(), serde_json::json!({"numbers":"*3"}));
}

#[tokio::test]
async fn execute_background_and_sync() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(200, r#"{"ret":"*B546"}"#),
        Reply::Json(
            200,
            r#"{"ret":"expected end of command (line 1 column 4)"}"#,
        ),
    ]);
    let script = r#"/ip firewall connection remove [find where connection-mark="conn-ISP1"]"#;
    assert_eq!(
        client.execute(script, ExecMode::Background).await.unwrap(),
        Executed::Job(id("*B546"))
    );
    // A failing synchronous script answers 200 with the error as output.
    assert_eq!(
        client.execute("/foo bar", ExecMode::Sync).await.unwrap(),
        Executed::Output("expected end of command (line 1 column 4)".into())
    );
    let seen = server.seen();
    assert_eq!(seen[0].target, "/rest/execute");
    assert_eq!(seen[0].json(), serde_json::json!({"script": script}));
    assert_eq!(
        seen[1].json(),
        serde_json::json!({"script": "/foo bar", "as-string": ""})
    );
}

#[tokio::test]
async fn log_command_upload_and_import() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(200, "[]"),                               // log
        Reply::Json(200, r#"{"ret":"*2;*2b"}"#),              // command find
        Reply::Json(200, "[]"),                               // upload: no such file
        Reply::Json(201, r#"{".id":"*F1","name":"u.rsc"}"#), // upload: created
        Reply::Json(200, r#"[{".id":"*F1","name":"u.rsc"}]"#), // upload again: exists
        Reply::Json(200, r#"{".id":"*F1"}"#),                 // patched
        Reply::Json(
            400,
            r#"{"error":400,"message":"Bad Request","detail":"expected end of command (line 3 column 7)"}"#,
        ),
    ]);
    client
        .log(LogLevel::Warning, "uplinkd: ISP1 down")
        .await
        .unwrap();
    let ret = client
        .command(
            &Menu::IP_ROUTE,
            "find",
            &Props::new().with("where", "comment~\"uplinkd:\""),
        )
        .await
        .unwrap();
    assert_eq!(ret.as_deref(), Some("*2;*2b"));
    assert_eq!(
        client.upload("u.rsc", "/log info x\n").await.unwrap(),
        id("*F1")
    );
    assert_eq!(
        client.upload("u.rsc", "/log info y\n").await.unwrap(),
        id("*F1")
    );
    let err = client.import("u.rsc").await.unwrap_err();
    assert_eq!(
        err.detail(),
        Some("expected end of command (line 3 column 7)")
    );
    assert!(matches!(
        err,
        Error::Rejected {
            status: 400,
            method: Method::Post,
            ..
        }
    ));
    assert!(err.to_string().contains("/rest/import"), "{err}");

    let seen = server.seen();
    assert_eq!(seen[0].target, "/rest/log/warning");
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"message":"uplinkd: ISP1 down"})
    );
    assert_eq!(seen[1].target, "/rest/ip/route/find");
    assert_eq!(seen[2].method, "GET");
    assert_eq!(seen[2].target, "/rest/file?.proplist=.id,name&name=u.rsc");
    assert_eq!(
        (seen[3].method.as_str(), seen[3].target.as_str()),
        ("PUT", "/rest/file")
    );
    assert_eq!(
        seen[3].json(),
        serde_json::json!({"name":"u.rsc","contents":"/log info x\n"})
    );
    assert_eq!(
        (seen[5].method.as_str(), seen[5].target.as_str()),
        ("PATCH", "/rest/file/*F1")
    );
    assert_eq!(
        seen[5].json(),
        serde_json::json!({"contents":"/log info y\n"})
    );
    assert_eq!(seen[6].target, "/rest/import");
    assert_eq!(seen[6].json(), serde_json::json!({"file-name":"u.rsc"}));
    assert_eq!(seen.len(), 7, "import is not retried");
}

// ------------------------------------------------------------------------------------------------
// Faults and the retry policy.

const E500: Reply = Reply::Json(500, r#"{"error":500,"message":"Internal Server Error"}"#);

#[tokio::test]
async fn safe_calls_retry_transient_faults_then_succeed() {
    let (client, server) = plain().await;
    // print: 500, closed connection, then the answer.
    server.reply([E500, Reply::Close, Reply::Json(200, r#"[{".id":"*1"}]"#)]);
    let rows = client.print(&Menu::IP_ROUTE, &Query::all()).await.unwrap();
    assert_eq!(rows.len(), 1);
    // set, delete, disable: one 500 each, then success.
    server.reply([E500, Reply::Json(200, "{}")]);
    client
        .set(
            &Menu::IP_ROUTE,
            &id("*1"),
            &Props::new().with("disabled", true),
        )
        .await
        .unwrap();
    server.reply([E500, Reply::Json(200, "")]);
    assert_eq!(
        client.remove(&Menu::IP_ROUTE, &id("*1")).await.unwrap(),
        Removed::Deleted
    );
    server.reply([E500, Reply::Json(200, "[]")]);
    client.disable(&Menu::IP_ROUTE, &[id("*1")]).await.unwrap();

    let stats = client.stats();
    assert_eq!(stats.total(), 9);
    assert_eq!(stats.retries, 5);
    assert_eq!(stats.requests.get(&Outcome::Status(500)), Some(&4));
    assert_eq!(stats.requests.get(&Outcome::Transport), Some(&1));
    assert_eq!(stats.reads, 3);
    assert_eq!(stats.writes, 6);
    assert_eq!(server.seen().len(), 9);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (client, server) = plain().await;
    server.reply([E500, E500, E500, E500]);
    let err = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected { status: 500, .. }), "{err}");
    assert_eq!(server.seen().len(), 3, "max_attempts = 3");
}

#[tokio::test]
async fn unsafe_calls_are_never_retried() {
    let (client, server) = plain().await;
    server.reply([E500, E500, E500, E500, E500, E500]);
    assert!(client.add(&Menu::IP_ROUTE, &Props::new()).await.is_err());
    assert!(
        client
            .execute(":log info x", ExecMode::Background)
            .await
            .is_err()
    );
    assert!(client.execute(":log info x", ExecMode::Sync).await.is_err());
    assert!(client.import("u.rsc").await.is_err());
    assert!(
        client
            .command(&Menu::IP_ROUTE, "find", &Props::new())
            .await
            .is_err()
    );
    assert!(client.log(LogLevel::Info, "x").await.is_err());
    assert_eq!(server.seen().len(), 6);
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn unauthorized_is_clear_and_not_retried() {
    let (client, server) = plain().await;
    server.reply([Reply::Json(
        401,
        r#"{"error":401,"message":"Unauthorized"}"#,
    )]);
    let err = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unauthorized {
            method: Method::Get,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("GET /rest/ip/route: 401"), "{msg}");
    assert!(msg.contains("rest-api policy"), "{msg}");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn client_errors_carry_routeros_detail_and_are_not_retried() {
    let (client, server) = plain().await;
    server.reply([Reply::Json(
        400,
        r#"{"error":400,"message":"Bad Request","detail":"unknown parameter foo"}"#,
    )]);
    let err = client
        .set(&Menu::IP_ROUTE, &id("*1"), &Props::new().with("foo", "1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PATCH /rest/ip/route/*1: 400 Bad Request: unknown parameter foo"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_hang_times_out_and_safe_calls_retry() {
    let (client, server) = plain().await;
    server.reply([Reply::Hang, Reply::Json(200, "[]")]);
    assert!(client.print(&Menu::IP_ROUTE, &Query::all()).await.is_ok());
    server.reply([Reply::Hang]);
    let err = client
        .add(&Menu::IP_ROUTE, &Props::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                method: Method::Put,
                ..
            }
        ),
        "{err}"
    );
    let stats = client.stats();
    assert_eq!(stats.requests.get(&Outcome::Timeout), Some(&2));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn refused_connection_names_the_cause() {
    let (l, addr) = listen().await;
    drop(l);
    let client = Client::new(&rest(&format!("http://{addr}"), Trust::PlainHttp))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    let err = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Transport { .. }), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn typed_rows_ask_for_their_attributes_and_fail_as_a_decode_error_naming_the_attribute() {
    use uplinkd::routeros::rows::{Commented, Enabled, Identity, PingRow};
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(
            200,
            r#"[{".id":"*1","comment":"uplinkd:route:ISP1-main","disabled":"true"},{".id":"*2"}]"#,
        ),
        Reply::Json(200, r#"[{".id":"*1","disabled":"sometimes"}]"#),
        Reply::Json(200, r#"{"name":"gw"}"#),
        Reply::Json(200, r#"[{"seq":"0","host":"198.18.0.9","time":"later"}]"#),
    ]);
    let rows: Vec<Commented> = client
        .items(&Menu::IP_ROUTE, Query::all().proplist(&["ignored"]))
        .await
        .unwrap();
    assert_eq!(rows[0].comment, "uplinkd:route:ISP1-main");
    assert_eq!(rows[0].enabled, Enabled::No);
    assert_eq!(
        (rows[1].id.clone(), rows[1].enabled),
        (id("*2"), Enabled::Yes)
    );

    let e = client
        .items::<Commented>(&Menu::IP_ROUTE, Query::all())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert!(e.to_string().contains("disabled=\"sometimes\""), "{e}");

    let me: Identity = client.attrs(&Menu::SYSTEM_IDENTITY).await.unwrap();
    assert_eq!(me.name, "gw");
    let ping = Menu::parse("/ping").unwrap();
    let e = client
        .run::<PingRow>(&ping, &Props::new().with("count", "1"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("time=\"later\""), "{e}");

    let seen = server.seen();
    // The row's own proplist replaces the caller's.
    assert_eq!(
        seen[0].target,
        "/rest/ip/route?.proplist=.id,comment,disabled"
    );
    assert_eq!(seen[2].target, "/rest/system/identity");
    assert_eq!(seen[3].method, "POST");
}

#[tokio::test]
async fn garbage_answers_are_decode_errors() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(200, "<html>captive portal</html>"),
        Reply::Json(200, r#"[{".id":"*1","distance":1}]"#),
        Reply::Json(200, r#"{"ret":"not-an-id"}"#),
    ]);
    let e = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    let e = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("distance"), "{e}");
    let e = client.execute("x", ExecMode::Background).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Decode {
                method: Method::Post,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let (client, server) = plain().await;
    let huge: &'static str = Box::leak(
        format!(
            "[{}\"\"]",
            "\"x\",".repeat(uplinkd::routeros::client::MAX_BODY / 4)
        )
        .into_boxed_str(),
    );
    server.reply([Reply::Json(200, huge)]);
    let err = client
        .print(&Menu::IP_ROUTE, &Query::all())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn call_log_counts_reads_and_writes() {
    let (client, server) = plain().await;
    server.reply([Reply::Json(200, "[]"), Reply::Json(200, r#"{".id":"*9"}"#)]);
    let before = client.stats();
    client.print(&Menu::IP_ROUTE, &Query::all()).await.unwrap();
    let mid = client.stats();
    assert_eq!(mid.since(&before).writes, 0);
    client.add(&Menu::IP_ROUTE, &Props::new()).await.unwrap();
    let d = client.stats().since(&mid);
    assert_eq!((d.reads, d.writes), (0, 1));
    assert_eq!(d.log.len(), 1);
    assert_eq!(d.log[0].method, Method::Put);
    assert_eq!(d.log[0].path, "/rest/ip/route");
    assert_eq!(d.log[0].outcome, Outcome::Status(200));
}

#[tokio::test]
async fn concurrent_calls_are_serialized() {
    // RouterOS runs one session per user and address; the client never has two calls in flight.
    let (client, server) = plain().await;
    server.reply([Reply::Hang]);
    let c1 = client.clone();
    let first = tokio::spawn(async move { c1.add(&Menu::IP_ROUTE, &Props::new()).await });
    // Wait until the first request reached the server and hangs there.
    while server.seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = client.print(&Menu::IP_ROUTE, &Query::all()).await;
    assert!(second.is_ok());
    assert!(first.await.unwrap().is_err(), "the hung add times out");
    // The print was only sent after the add gave up: the server saw them in that order and the
    // print was never concurrent with the hanging add (it would have been served at once).
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "GET");
    let log = client.stats().log;
    assert_eq!(log[0].outcome, Outcome::Timeout);
    assert_eq!(log[1].outcome, Outcome::Status(200));
}

// ------------------------------------------------------------------------------------------------
// No panic on any input.

mod no_panic {
    use proptest::prelude::*;
    use uplinkd::routeros::model::*;

    fn json_like() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            ".*".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"*1A\"".to_owned()),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just(".id".to_owned()),
                            Just("ret".to_owned()),
                            Just("detail".to_owned()),
                            "[a-z.-]{0,8}".prop_map(|s| s)
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| format!(
                    "{{{}}}",
                    kv.iter()
                        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
            ]
        })
    }

    fn all_decoders(body: &[u8]) {
        let _ = decode_records(body);
        let _ = decode_record(body);
        let _ = decode_singleton(body);
        let _ = decode_added_id(body);
        let _ = decode_ret(body);
        let _ = decode_executed(ExecMode::Background, body);
        let _ = decode_executed(ExecMode::Sync, body);
        let _ = decode_error_body(body);
        if let Ok(rs) = decode_records(body) {
            for r in rs {
                for k in r.props.keys() {
                    let _ = r.bool(k);
                    let _ = r.u64(k);
                    let _ = r.props.i64(k);
                    let _ = r.duration(k);
                }
                let _ = r.disabled();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn decoders_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
            all_decoders(&body);
        }

        #[test]
        fn decoders_never_panic_on_json(body in json_like()) {
            all_decoders(body.as_bytes());
        }

        #[test]
        fn value_parsers_never_panic(v in ".{0,40}") {
            let _ = parse_bool("k", &v);
            let _ = parse_u64("k", &v);
            let _ = parse_duration("k", &v);
            let _ = RosId::parse(&v);
            let _ = Menu::parse(&v);
            let _ = uplinkd::routeros::tls::parse_sha256_fingerprint(&v);
        }

        #[test]
        fn durations_in_routeros_syntax_never_panic(v in "[0-9wdhmsu:.]{0,40}") {
            let _ = parse_duration("k", &v);
        }

        #[test]
        fn duration_format_round_trips(ms in 0u64..10_000_000_000) {
            let d = std::time::Duration::from_millis(ms);
            prop_assert_eq!(parse_duration("k", &format_duration(d)), Ok(d));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The REST call list: every call shape the client makes, as sent, checked by
// `check-rsc --rest tests/fixtures/rest-calls.txt` against the RouterOS 7.20 command tree.

const CALL_LIST: &str = "tests/fixtures/rest-calls.txt";

/// `METHOD /rest/path[?query] [json]` with the query decoded (check-rsc reads it either way).
fn call_line(s: &Seen) -> String {
    let url = reqwest::Url::parse(&format!("http://x{}", s.target)).unwrap();
    let mut line = format!("{} {}", s.method, url.path());
    let pairs: Vec<String> = url.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
    if !pairs.is_empty() {
        line.push('?');
        line.push_str(&pairs.join("&"));
    }
    if !s.body.is_empty() {
        line.push(' ');
        line.push_str(&s.body);
    }
    line
}

#[tokio::test]
async fn rest_call_list_fixture_matches_what_the_client_sends() {
    let (client, server) = plain().await;
    server.reply([
        Reply::Json(200, "[]"),
        Reply::Json(200, "[]"),
        Reply::Json(200, r#"{".id":"*1A"}"#),
        Reply::Json(200, r#"{"cpu-load":"1"}"#),
        Reply::Json(200, r#"{".id":"*1A"}"#),
        Reply::Json(200, r#"{".id":"*2"}"#),
    ]);
    let route = id("*1A");
    let q = Query::all().proplist(&["comment", "disabled", "distance", "gateway"]);
    client.print(&Menu::IP_ROUTE, &q).await.unwrap();
    client
        .print(
            &Menu::IP_FIREWALL_CONNECTION,
            &Query::all()
                .proplist(&[".id"])
                .eq("connection-mark", "conn-ISP1")
                .words(&["protocol=tcp", "protocol=udp", "#|"]),
        )
        .await
        .unwrap();
    client.get(&Menu::IP_ROUTE, &route).await.unwrap();
    client.singleton(&Menu::SYSTEM_RESOURCE).await.unwrap();
    client
        .add(
            &Menu::IP_ROUTE,
            &Props::new()
                .with("dst-address", "0.0.0.0/0")
                .with("gateway", std::net::Ipv4Addr::new(198, 18, 0, 1))
                .with("routing-table", "to-ISP1")
                .with("distance", 1u32)
                .with("disabled", false)
                .with("comment", "uplinkd:route:ISP1-table"),
        )
        .await
        .unwrap();
    client
        .add(
            &Menu::IP_FIREWALL_MANGLE,
            &Props::new()
                .with("chain", "prerouting")
                .with("action", "mark-connection")
                .with("new-connection-mark", "conn-ISP1")
                .with("per-connection-classifier", "both-addresses-and-ports:2/0")
                .with("passthrough", true)
                .with("comment", "uplinkd:pcc:ISP1-0"),
        )
        .await
        .unwrap();
    client
        .set(
            &Menu::IP_ROUTE,
            &route,
            &Props::new().with("distance", 2u32).with("disabled", true),
        )
        .await
        .unwrap();
    client
        .set_singleton(&Menu::SYSTEM_IDENTITY, &Props::new().with("name", "router"))
        .await
        .unwrap();
    client.remove(&Menu::IP_ROUTE, &route).await.unwrap();
    client
        .enable(&Menu::IP_FIREWALL_MANGLE, &[id("*1"), id("*2")])
        .await
        .unwrap();
    client
        .disable(&Menu::IP_ROUTE, &[id("*1A"), id("*1B")])
        .await
        .unwrap();
    client
        .command(
            &Menu::IP_FIREWALL_CONNECTION,
            "remove",
            &Props::new().with("numbers", "*5,*6"),
        )
        .await
        .unwrap();
    server.reply([Reply::Json(200, r#"{"ret":"*B1"}"#)]);
    client
        .execute(
            // The reconciler's own script: the status globals, a sticky release, the flush.
            &uplinkd::reconciler::flush_and_release_script(
                &[uplinkd::types::LinkId::new("ISP1")],
                &[("banking".to_string(), uplinkd::types::LinkId::new("ISP1"))],
                &[(
                    uplinkd::types::LinkId::new("ISP1"),
                    uplinkd::reconcile::plan::GlobalStatus::Down,
                )]
                .into(),
            ),
            ExecMode::Background,
        )
        .await
        .unwrap();
    client
        .execute(":put [/system identity get name]", ExecMode::Sync)
        .await
        .unwrap();
    for level in [LogLevel::Info, LogLevel::Warning, LogLevel::Error] {
        client.log(level, "uplinkd: ISP1 DOWN").await.unwrap();
    }
    server.reply([
        Reply::Json(200, "[]"),
        Reply::Json(200, r#"{".id":"*F1"}"#),
        Reply::Json(200, r#"[{".id":"*F1","name":"uplinkd.rsc"}]"#),
    ]);
    client
        .upload("uplinkd.rsc", "/log info \"uplinkd base\"\n")
        .await
        .unwrap();
    client
        .upload("uplinkd.rsc", "/log info \"uplinkd base v2\"\n")
        .await
        .unwrap();
    client.import("uplinkd.rsc").await.unwrap();

    // Remote mode, as the prober sends it: a DHCP WAN's address, its pin rule (set to the
    // leased address), then the router-side ping.
    server.reply([
        Reply::Json(
            200,
            r#"[{".id":"*3","address":"198.18.13.2/30","disabled":"false","invalid":"false"}]"#,
        ),
        Reply::Json(200, r#"[{".id":"*9","disabled":"true"}]"#),
        Reply::Json(200, "{}"),
        Reply::Json(200, r#"[{"seq":"0","host":"198.18.100.1","time":"3ms"}]"#),
    ]);
    let mut wan = uplinkd::config::Config::example().wans[0].clone();
    wan.addressing = uplinkd::config::Addressing::Dhcp;
    let prober = uplinkd::probe::remote::RemoteProber::new(client.clone(), &[wan.clone()]);
    let result = uplinkd::probe::Prober::probe(
        &prober,
        &wan.id,
        std::net::Ipv4Addr::new(198, 18, 100, 1),
        1,
        Duration::from_millis(200),
    )
    .await;
    assert!(
        matches!(result, uplinkd::health::ProbeResult::Reply { .. }),
        "{result:?}"
    );

    let mut text = String::from(
        "# Every REST call shape uplinkd's client sends (generated and checked by\n\
         # tests/routeros_client.rs; UPDATE_REST_CALLS=1 rewrites it). Check with:\n\
         #   check-rsc --rest tests/fixtures/rest-calls.txt\n",
    );
    for s in server.seen() {
        text.push_str(&call_line(&s));
        text.push('\n');
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CALL_LIST);
    if std::env::var_os("UPDATE_REST_CALLS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        on_disk, text,
        "{CALL_LIST} is stale: rerun with UPDATE_REST_CALLS=1 and check it with check-rsc --rest"
    );
}

// ------------------------------------------------------------------------------------------------
// Against the strict RouterOS emulator: every call shape is accepted by a server that refuses
// unknown menus, commands and attributes as RouterOS 7.20 does, and faults behave as intended.

mod against_emulator {
    use std::time::Duration;

    use uplinkd::config::Rest;
    use uplinkd::routeros::{
        Client, Error, ExecMode, Executed, LogLevel, Menu, Props, Query, Removed, RetryPolicy,
    };
    use uplinkd_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, RebootMode, User};

    async fn start() -> (Emulator, uplinkd_emulator::RunningEmulator, Client) {
        let emu = Emulator::new(EmulatorConfig {
            users: vec![User::new("uplinkd", "s3cret")],
            ..EmulatorConfig::default()
        });
        let running = emu.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Client::new(&Rest::plain_http(
            running.url().parse().expect("the emulator\'s URL"),
            "uplinkd",
            "s3cret",
            Duration::from_millis(500),
        ))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        });
        (emu, running, client)
    }

    fn route(comment: &str, distance: u32) -> Props {
        Props::new()
            .with("dst-address", "0.0.0.0/0")
            .with("gateway", std::net::Ipv4Addr::new(198, 18, 0, 1))
            .with("distance", distance)
            .with("comment", comment)
    }

    fn tagged(emu: &Emulator) -> usize {
        emu.objects("/ip/route")
            .iter()
            .filter(|o| o.get("comment").is_some_and(|c| c.starts_with("uplinkd:")))
            .count()
    }

    #[tokio::test]
    async fn every_operation_round_trips() {
        let (emu, _running, client) = start().await;
        let id = client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap();
        let rows = client
            .print(
                &Menu::IP_ROUTE,
                &Query::all().proplist(&["comment", "disabled", "distance"]),
            )
            .await
            .unwrap();
        let mine = rows.iter().find(|r| r.id == id).expect("the added route");
        assert_eq!(mine.comment(), Some("uplinkd:route:ISP1-main"));
        assert_eq!(mine.disabled(), Ok(false));
        assert_eq!(mine.u64("distance"), Ok(Some(1)));

        let filtered = client
            .print(
                &Menu::IP_ROUTE,
                &Query::all()
                    .proplist(&["comment"])
                    .words(&["comment=uplinkd:route:ISP1-main"]),
            )
            .await
            .unwrap();
        assert_eq!(filtered.len(), 1);
        let by_eq = client
            .print(
                &Menu::IP_ROUTE,
                &Query::all().eq("comment", "uplinkd:route:ISP1-main"),
            )
            .await
            .unwrap();
        assert_eq!(by_eq.len(), 1);

        client
            .set(&Menu::IP_ROUTE, &id, &Props::new().with("distance", 3u32))
            .await
            .unwrap();
        assert_eq!(
            client
                .get(&Menu::IP_ROUTE, &id)
                .await
                .unwrap()
                .u64("distance"),
            Ok(Some(3))
        );
        client
            .disable(&Menu::IP_ROUTE, std::slice::from_ref(&id))
            .await
            .unwrap();
        assert_eq!(
            client.get(&Menu::IP_ROUTE, &id).await.unwrap().disabled(),
            Ok(true)
        );
        client
            .enable(&Menu::IP_ROUTE, std::slice::from_ref(&id))
            .await
            .unwrap();
        assert_eq!(
            client.get(&Menu::IP_ROUTE, &id).await.unwrap().disabled(),
            Ok(false)
        );

        let res = client.singleton(&Menu::SYSTEM_RESOURCE).await.unwrap();
        assert!(res.str("version").is_some_and(|v| v.starts_with("7.")));
        client
            .set_singleton(&Menu::SYSTEM_IDENTITY, &Props::new().with("name", "edge"))
            .await
            .unwrap();
        assert_eq!(
            client
                .singleton(&Menu::SYSTEM_IDENTITY)
                .await
                .unwrap()
                .str("name"),
            Some("edge")
        );

        client
            .log(LogLevel::Warning, "uplinkd: ISP1 DOWN")
            .await
            .unwrap();
        assert!(
            emu.log_entries()
                .iter()
                .any(|e| e.message == "uplinkd: ISP1 DOWN" && e.topics.contains("warning"))
        );

        assert_eq!(
            client.remove(&Menu::IP_ROUTE, &id).await.unwrap(),
            Removed::Deleted
        );
        assert_eq!(
            client.remove(&Menu::IP_ROUTE, &id).await.unwrap(),
            Removed::AlreadyGone
        );
        assert!(matches!(
            client.get(&Menu::IP_ROUTE, &id).await,
            Err(Error::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn upload_creates_then_replaces_a_file() {
        let (emu, _running, client) = start().await;
        let first = client
            .upload("uplinkd.rsc", "/log info \"v1\"\n")
            .await
            .unwrap();
        let again = client
            .upload("uplinkd.rsc", "/log info \"v2\"\n")
            .await
            .unwrap();
        assert_eq!(first, again, "replaced, not added");
        let files: Vec<_> = emu
            .objects("/file")
            .into_iter()
            .filter(|f| f.get("name") == Some("uplinkd.rsc"))
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].get("contents"), Some("/log info \"v2\"\n"));
    }

    #[tokio::test]
    async fn execute_upload_and_import() {
        let (emu, _running, client) = start().await;
        for mark in ["conn-ISP1", "conn-ISP1", "conn-ISP2"] {
            emu.add_connection(uplinkd_emulator::Connection {
                protocol: "tcp".into(),
                src_address: "192.168.100.10:40000".into(),
                dst_address: "198.18.1.1:443".into(),
                connection_mark: mark.into(),
            });
        }
        let job = client
            .execute(
                r#"/ip firewall connection remove [find where connection-mark="conn-ISP1"]"#,
                ExecMode::Background,
            )
            .await
            .unwrap();
        assert!(matches!(job, Executed::Job(_)), "{job:?}");
        emu.wait_jobs().await;
        let left = emu.connection_marks();
        assert_eq!(
            left,
            vec!["conn-ISP2".to_owned()],
            "log: {:?}",
            emu.log_entries()
        );

        let out = client
            .execute(":put [/system identity get name]", ExecMode::Sync)
            .await
            .unwrap();
        assert!(
            matches!(&out, Executed::Output(text) if text.trim_end() == "MikroTik"),
            "{out:?}"
        );

        let rsc = "/ip route add dst-address=0.0.0.0/0 gateway=198.18.0.1 comment=uplinkd:route:ISP1-main\n";
        let file = client.upload("uplinkd.rsc", rsc).await.unwrap();
        assert_eq!(
            client.upload("uplinkd.rsc", rsc).await.unwrap(),
            file,
            "replaced, not added"
        );
        client.import("uplinkd.rsc").await.unwrap();
        assert_eq!(tagged(&emu), 1);

        let bad = "/log info \"ok\"\n/ip route add bogus-attribute=1\n";
        client.upload("bad.rsc", bad).await.unwrap();
        let err = client.import("bad.rsc").await.unwrap_err();
        assert!(matches!(err, Error::Rejected { status: 400, .. }), "{err}");
        let detail = err.detail().unwrap_or_default().to_owned();
        assert!(
            detail.contains("line 2"),
            "the detail names the failing line: {detail}"
        );
    }

    #[tokio::test]
    async fn a_500_on_a_set_is_retried_and_applied_once() {
        let (emu, _running, client) = start().await;
        let id = client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap();
        emu.clear_requests();
        emu.inject(Fault::next(FaultKind::Status500, 1).method("PATCH"));
        client
            .set(&Menu::IP_ROUTE, &id, &Props::new().with("distance", 5u32))
            .await
            .unwrap();
        let reqs = emu.requests();
        assert_eq!(
            reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![500, 200]
        );
        assert_eq!(
            client
                .get(&Menu::IP_ROUTE, &id)
                .await
                .unwrap()
                .u64("distance"),
            Ok(Some(5))
        );
    }

    #[tokio::test]
    async fn a_500_on_add_is_reported_and_nothing_is_added() {
        let (emu, _running, client) = start().await;
        emu.inject(Fault::next(FaultKind::Status500, 1).method("PUT"));
        let err = client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Rejected { status: 500, .. }), "{err}");
        assert_eq!(tagged(&emu), 0);
        assert_eq!(emu.requests().len(), 1, "an add is never retried");
    }

    #[tokio::test]
    async fn a_lost_answer_to_add_is_not_retried_so_no_duplicate() {
        let (emu, _running, client) = start().await;
        emu.inject(Fault::next(FaultKind::CloseAfterApply, 1).method("PUT"));
        let err = client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err}");
        assert_eq!(tagged(&emu), 1, "applied once, never twice");
    }

    #[tokio::test]
    async fn a_lost_answer_to_delete_is_retried_and_reads_as_gone() {
        let (emu, _running, client) = start().await;
        let id = client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap();
        emu.inject(Fault::next(FaultKind::CloseAfterApply, 1).method("DELETE"));
        assert_eq!(
            client.remove(&Menu::IP_ROUTE, &id).await.unwrap(),
            Removed::AlreadyGone
        );
        assert_eq!(tagged(&emu), 0);
    }

    #[tokio::test]
    async fn unauthorized_makes_no_writes() {
        let (emu, _running, client) = start().await;
        emu.inject(Fault::next(FaultKind::Unauthorized, 10));
        let err = client
            .print(&Menu::IP_ROUTE, &Query::all())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
        let err = client
            .set(
                &Menu::IP_ROUTE,
                &uplinkd::routeros::RosId::parse("*1").unwrap(),
                &Props::new().with("distance", 2u32),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
        assert_eq!(emu.requests().len(), 2, "401 is never retried");
        assert_eq!(client.stats().retries, 0);
    }

    #[tokio::test]
    async fn wrong_password_is_a_clear_401() {
        let (_emu, running, _client) = start().await;
        let client = Client::new(&Rest::plain_http(
            running.url().parse().expect("the emulator\'s URL"),
            "uplinkd",
            "wrong",
            Duration::from_millis(500),
        ))
        .unwrap();
        let err = client.singleton(&Menu::SYSTEM_RESOURCE).await.unwrap_err();
        assert!(err.to_string().contains("401"), "{err}");
        assert!(
            !err.to_string().contains("wrong"),
            "no secret in messages: {err}"
        );
    }

    #[tokio::test]
    async fn a_hang_times_out_and_the_retry_waits_for_the_session() {
        // The router holds the hung request's session; the retry queues behind it and is served
        // when the hang ends, as on RouterOS.
        let (emu, _running, client) = start().await;
        emu.inject(Fault::next(FaultKind::Hang(Some(Duration::from_millis(700))), 1).method("GET"));
        let rows = client.print(&Menu::IP_ROUTE, &Query::all()).await;
        assert!(rows.is_ok(), "{rows:?}");
        let stats = client.stats();
        assert!(
            stats.requests.get(&uplinkd::routeros::Outcome::Timeout) >= Some(&1),
            "{stats:?}"
        );
    }

    #[tokio::test]
    async fn a_reboot_is_survived_by_safe_calls() {
        let (emu, _running, client) = start().await;
        client
            .add(&Menu::IP_ROUTE, &route("uplinkd:route:ISP1-main", 1))
            .await
            .unwrap();
        emu.reboot(Duration::from_secs(3600), RebootMode::KeepConfig);
        let err = client
            .print(&Menu::IP_ROUTE, &Query::all())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        emu.finish_reboot();
        let rows = client.print(&Menu::IP_ROUTE, &Query::all()).await.unwrap();
        assert!(
            rows.iter()
                .any(|r| r.comment() == Some("uplinkd:route:ISP1-main"))
        );
    }
}
