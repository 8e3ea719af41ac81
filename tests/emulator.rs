//! The RouterOS emulator over real HTTP on loopback: REST verbs and error shapes, strictness
//! against the command table, sessions, faults, reboots, and the script interpreter.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uplinkd::emulator::{
    Connection, Emulator, EmulatorConfig, Fault, FaultKind, RebootMode, RunningEmulator, User,
};

/// What a raw HTTP exchange gave: a status and JSON body, or a connection closed without reply.
#[derive(Debug, PartialEq)]
enum Answer {
    Reply(u16, Value),
    Closed,
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Reply(s, _) => *s,
            Answer::Closed => 0,
        }
    }
    fn json(&self) -> &Value {
        match self {
            Answer::Reply(_, v) => v,
            Answer::Closed => &Value::Null,
        }
    }
}

const ADMIN: (&str, &str) = ("admin", "secret");

async fn start() -> (Emulator, RunningEmulator) {
    let emu = Emulator::new(EmulatorConfig {
        users: vec![User::new(ADMIN.0, ADMIN.1)],
        ..EmulatorConfig::default()
    });
    let running = emu
        .serve("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    (emu, running)
}

/// One request on its own connection (HTTP/1.1, `Connection: close`).
async fn call_as(
    srv: &RunningEmulator,
    auth: Option<(&str, &str)>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    use base64::Engine;
    let mut s = TcpStream::connect(srv.addr()).await.expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: router\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    if s.write_all(req.as_bytes()).await.is_err() {
        return Answer::Closed;
    }
    let mut buf = Vec::new();
    if s.read_to_end(&mut buf).await.is_err() || buf.is_empty() {
        return Answer::Closed;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string()))
    };
    Answer::Reply(status, v)
}

async fn call(srv: &RunningEmulator, method: &str, path: &str, body: Option<Value>) -> Answer {
    call_as(srv, Some(ADMIN), method, path, body).await
}

#[tokio::test]
async fn put_get_patch_delete_round_trip() {
    let (emu, srv) = start().await;
    let a = call(
        &srv,
        "PUT",
        "/rest/ip/route",
        Some(json!({"dst-address":"0.0.0.0/0","gateway":"198.18.0.1","comment":"uplinkd:route:ISP1","disabled":"no"})),
    )
    .await;
    assert_eq!(a.status(), 200, "{a:?}");
    let id = a.json()[".id"].as_str().expect("id").to_string();
    assert!(id.starts_with('*'));
    assert_eq!(a.json()["disabled"], "false");
    assert_eq!(a.json()["distance"], "1");

    let list = call(&srv, "GET", "/rest/ip/route", None).await;
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    let one = call(&srv, "GET", &format!("/rest/ip/route/{id}"), None).await;
    assert_eq!(one.json()["gateway"], "198.18.0.1");
    let filtered = call(&srv, "GET", "/rest/ip/route?comment=nothing", None).await;
    assert_eq!(filtered.json(), &json!([]));
    let proplist = call(&srv, "GET", "/rest/ip/route?.proplist=.id,gateway", None).await;
    assert_eq!(
        proplist.json(),
        &json!([{".id": id, "gateway": "198.18.0.1"}])
    );

    let p = call(
        &srv,
        "PATCH",
        &format!("/rest/ip/route/{id}"),
        Some(json!({"disabled":"true","distance":5})),
    )
    .await;
    assert_eq!(p.status(), 200);
    assert_eq!(p.json()["disabled"], "true");
    assert_eq!(p.json()["distance"], "5");

    let d = call(&srv, "DELETE", &format!("/rest/ip/route/{id}"), None).await;
    assert_eq!(d, Answer::Reply(200, Value::Null));
    let d2 = call(&srv, "DELETE", &format!("/rest/ip/route/{id}"), None).await;
    assert_eq!(
        d2,
        Answer::Reply(404, json!({"error":404,"message":"Not Found"}))
    );
    assert!(emu.objects("/ip/route").is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_answer_401() {
    let (emu, srv) = start().await;
    let a = call_as(
        &srv,
        Some(("admin", "wrong")),
        "GET",
        "/rest/ip/route",
        None,
    )
    .await;
    assert_eq!(
        a,
        Answer::Reply(401, json!({"error":401,"message":"Unauthorized"}))
    );
    let b = call_as(&srv, None, "GET", "/rest/ip/route", None).await;
    assert_eq!(b.status(), 401);
    assert!(emu.requests().iter().all(|r| r.user.is_none()));
}

#[tokio::test]
async fn unknown_attribute_menu_and_command_are_refused() {
    let (_emu, srv) = start().await;
    let a = call(
        &srv,
        "PUT",
        "/rest/ip/route",
        Some(json!({"routing-mark":"x"})),
    )
    .await;
    assert_eq!(
        a,
        Answer::Reply(
            400,
            json!({"error":400,"message":"Bad Request","detail":"unknown parameter routing-mark"})
        )
    );
    let b = call(&srv, "GET", "/rest/ip/nothing", None).await;
    assert_eq!(b.json()["detail"], "no such command or directory (nothing)");
    assert_eq!(b.status(), 400);
    let c = call(&srv, "POST", "/rest/ip/route/frobnicate", Some(json!({}))).await;
    assert_eq!(c.status(), 406);
    assert_eq!(
        c.json()["detail"],
        "no such command or directory (frobnicate)"
    );
    let d = call(
        &srv,
        "PUT",
        "/rest/ip/firewall/filter",
        Some(json!({"chain":"forward","action":"explode"})),
    )
    .await;
    assert_eq!(
        d.json()["detail"],
        "input does not match any value of action"
    );
}

#[tokio::test]
async fn faults_500_and_401_are_served_then_cleared() {
    let (emu, srv) = start().await;
    emu.inject(Fault::next(FaultKind::Status500, 1).path("/rest/ip/route"));
    emu.inject(Fault::next(FaultKind::Unauthorized, 1).method("PUT"));
    assert_eq!(
        call(&srv, "GET", "/rest/ip/address", None).await.status(),
        200
    );
    assert_eq!(
        call(&srv, "GET", "/rest/ip/route", None).await.status(),
        500
    );
    assert_eq!(
        call(&srv, "GET", "/rest/ip/route", None).await.status(),
        200
    );
    let put = call(
        &srv,
        "PUT",
        "/rest/ip/firewall/address-list",
        Some(json!({"list":"x","address":"198.18.0.1"})),
    )
    .await;
    assert_eq!(put.status(), 401);
    assert!(emu.objects("/ip/firewall/address-list").is_empty());
}

#[tokio::test]
async fn close_fault_drops_the_connection_without_reply() {
    let (emu, srv) = start().await;
    emu.inject(Fault::next(FaultKind::Close, 1));
    let a = call(
        &srv,
        "PUT",
        "/rest/ip/firewall/address-list",
        Some(json!({"list":"x","address":"198.18.0.1"})),
    )
    .await;
    assert_eq!(a, Answer::Closed);
    assert!(emu.objects("/ip/firewall/address-list").is_empty());
    emu.inject(Fault::next(FaultKind::CloseAfterApply, 1));
    let b = call(
        &srv,
        "PUT",
        "/rest/ip/firewall/address-list",
        Some(json!({"list":"x","address":"198.18.0.1"})),
    )
    .await;
    assert_eq!(b, Answer::Closed);
    assert_eq!(emu.objects("/ip/firewall/address-list").len(), 1);
}

#[tokio::test]
async fn reboot_keeps_config_and_resets_runtime() {
    let (emu, srv) = start().await;
    emu.add_object(
        "/ip/firewall/address-list",
        &[("list", "keep"), ("address", "198.18.0.9")],
    )
    .expect("add");
    emu.add_connection(Connection {
        protocol: "tcp".into(),
        connection_mark: "conn-ISP1".into(),
        ..Connection::default()
    });
    assert_eq!(
        call(
            &srv,
            "POST",
            "/rest/log/info",
            Some(json!({"message":"before"}))
        )
        .await
        .status(),
        200
    );
    assert_eq!(emu.log_entries().len(), 1);
    emu.reboot(Duration::from_secs(3600), RebootMode::KeepConfig);
    assert_eq!(
        call(&srv, "GET", "/rest/ip/route", None).await,
        Answer::Closed
    );
    emu.finish_reboot();
    assert_eq!(
        call(&srv, "GET", "/rest/ip/route", None).await.status(),
        200
    );
    assert_eq!(emu.objects("/ip/firewall/address-list").len(), 1);
    assert!(emu.connections().is_empty());
    assert!(emu.log_entries().is_empty());
}
