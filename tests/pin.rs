//! The certificate flow of docs/install.md in order, as a user meets it: `render install` works
//! before any pin exists; the imported script makes the certificate `uplinkd-rest` and prints its
//! fingerprint (and keeps both when it runs again); `uplinkd pin` reads the fingerprint of a
//! router-like TLS server on loopback, prints it with the trust-on-first-use warning, sends no
//! request, and with `--write` produces a config that `check` accepts and whose client connects.

#[path = "support/bin.rs"]
mod bin;
#[path = "support/docs.rs"]
mod docs;
use bin::uplinkd;

use docs::doc_block;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uplinkd::config::{Config, Env, Trust};
use uplinkd::routeros::{Client, Menu, tls};
use uplinkd_emulator::{Emulator, EmulatorConfig};

const EXAMPLE: &str = include_str!("../config.example.toml");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the binary off the async runtime (the TLS server under test lives on it).
async fn run(cmd: Command) -> Output {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

// ------------------------------------------------------------------------------------------------
// A router-like HTTPS server: RouterOS's kind of self-signed certificate, every request recorded
// and answered with /system/identity.

struct Router {
    url: String,
    /// SHA-256 of the certificate it presents, lower-case hex.
    sha256: String,
    /// Request lines received, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

async fn router() -> Router {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "172.31.255.1");
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "uplinkd test");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.not_before = rcgen::date_time_ymd(2026, 1, 2);
    p.not_after = rcgen::date_time_ymd(2036, 1, 2);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let sha256 = tls::hex(&tls::sha256(cert.der().as_ref()));
    tls::install_crypto_provider();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let first = text(&head).lines().next().unwrap_or_default().to_string();
                log.lock().unwrap().push(first);
                let body = r#"{"name":"MikroTik"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.flush().await;
            });
        }
    });
    Router { url, sha256, seen }
}

/// The fingerprint on the `pin_sha256 = "..."` line of `uplinkd pin`'s output.
fn printed_pin(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("pin_sha256 = \""))
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no pin_sha256 line in\n{stdout}"))
        .to_string()
}

// ------------------------------------------------------------------------------------------------
// Step 1 and 5: render before the pin, import, the fingerprint on the terminal.

/// Renders the install script from the shipped example (which has no pin yet) through the binary.
fn render_install_from_the_example(dir: &Path) -> String {
    let config = dir.join("uplinkd.toml");
    std::fs::write(&config, EXAMPLE).unwrap();
    let out = uplinkd(&["render", "install", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

const PUT: &str =
    "uplinkd: certificate uplinkd-rest, SHA-256 fingerprint (rest.pin_sha256), on the next line:";

/// The lines printed after [`PUT`]: the fingerprints, as the terminal shows them.
fn printed_fingerprints(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == PUT)
        .map(|w| w[1].to_string())
        .collect()
}

#[test]
fn the_install_script_makes_the_certificate_and_prints_its_fingerprint_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let script = render_install_from_the_example(dir.path());
    let emu = Emulator::new(EmulatorConfig::default());

    let first = emu
        .import_script(&script)
        .expect("the install script imports");
    let certs = emu.objects("/certificate");
    assert_eq!(certs.len(), 1, "{certs:?}");
    let cert = &certs[0];
    assert_eq!(cert.get("name"), Some("uplinkd-rest"));
    assert_eq!(cert.get("private-key"), Some("true"), "signed");
    let fingerprint = cert
        .get("fingerprint")
        .expect("signed: a fingerprint")
        .to_string();
    assert_eq!(
        printed_fingerprints(&first),
        vec![fingerprint.clone()],
        "{first}"
    );
    // In the form pin_sha256 takes, so the printed value can go into the config as it is.
    assert_eq!(
        tls::hex(&tls::parse_sha256_fingerprint(&fingerprint).unwrap()),
        fingerprint
    );
    let www_ssl = emu
        .objects("/ip/service")
        .into_iter()
        .find(|s| s.get("name") == Some("www-ssl"))
        .expect("www-ssl");
    assert_eq!(www_ssl.get("certificate"), Some("uplinkd-rest"));
    assert_eq!(www_ssl.get("disabled"), Some("false"));

    // Run again: the same certificate, the same fingerprint printed again.
    let again = emu
        .import_script(&script)
        .expect("the install script imports again");
    let certs = emu.objects("/certificate");
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0].get("fingerprint"), Some(fingerprint.as_str()));
    assert_eq!(
        printed_fingerprints(&again),
        vec![fingerprint.clone()],
        "{again}"
    );

    // That value as pin_sha256 is a config `check` accepts.
    let pinned = EXAMPLE.replacen(
        "trust = \"pin-sha256\"\n",
        &format!("trust = \"pin-sha256\"\npin_sha256 = \"{fingerprint}\"\n"),
        1,
    );
    let c =
        Config::from_toml_str(&pinned, &Env::empty().with("UPLINKD_REST_PASSWORD", "pw")).unwrap();
    assert!(matches!(c.router.rest.trust, Trust::PinnedSha256(p) if tls::hex(&p) == fingerprint));
}

/// With "webpki" or "ca-file" the certificate is the user's: the script makes none and leaves the
/// one www-ssl has (a script that put its own self-signed one there would break that trust).
#[test]
fn with_the_users_own_certificate_the_script_makes_none_and_keeps_it() {
    for trust in [
        "trust = \"webpki\"\n",
        "trust = \"ca-file\"\nca_file = \"/etc/uplinkd/ca.pem\"\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("uplinkd.toml");
        std::fs::write(
            &config,
            EXAMPLE.replacen("trust = \"pin-sha256\"\n", trust, 1),
        )
        .unwrap();
        let out = uplinkd(&["render", "install", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{trust}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(!script.contains("uplinkd-rest"), "{trust}: {script}");

        let emu = Emulator::new(EmulatorConfig::default());
        let www_ssl = || {
            emu.objects("/ip/service")
                .into_iter()
                .find(|s| s.get("name") == Some("www-ssl"))
                .expect("www-ssl")
        };
        assert!(emu.edit_object("/ip/service", &www_ssl().id, &[("certificate", "my-cert")]));
        let output = emu
            .import_script(&script)
            .expect("the install script imports");
        assert!(printed_fingerprints(&output).is_empty(), "{output}");
        assert!(emu.objects("/certificate").is_empty(), "{trust}");
        assert_eq!(www_ssl().get("certificate"), Some("my-cert"), "{trust}");
        assert_eq!(www_ssl().get("disabled"), Some("false"), "{trust}");
    }
}

// ------------------------------------------------------------------------------------------------
// Step 7: `uplinkd pin`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_prints_the_fingerprint_the_pinned_client_then_accepts() {
    let router = router().await;
    let out = run(uplinkd(&["pin", "--url", &router.url])).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(printed_pin(&stdout), router.sha256, "{stdout}");
    assert!(stdout.contains("trust = \"pin-sha256\""), "{stdout}");
    assert!(
        stdout.contains("  subject  CN=172.31.255.1, O=uplinkd test\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  issuer   CN=172.31.255.1, O=uplinkd test\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  valid    2026-01-02 00:00:00 UTC to 2036-01-02 00:00:00 UTC\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Trust on first use"), "{stdout}");
    assert!(
        stdout.contains("install script printed on the router's terminal"),
        "{stdout}"
    );
    assert!(
        router.seen.lock().unwrap().is_empty(),
        "pin sends no request over the unchecked connection"
    );

    // The printed value, pinned, is accepted; one bit off, refused.
    let pin = tls::parse_sha256_fingerprint(&printed_pin(&stdout)).unwrap();
    let rest = |pin| uplinkd::config::Rest {
        trust: Trust::PinnedSha256(pin),
        ..uplinkd::config::Rest::plain_http(
            router.url.parse().expect("a REST URL"),
            "uplinkd",
            "pw",
            Duration::from_secs(5),
        )
    };
    let client = Client::new(&rest(pin)).unwrap();
    let props = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap();
    assert_eq!(props.str("name"), Some("MikroTik"));
    let mut wrong = pin;
    wrong[0] ^= 1;
    let client = Client::new(&rest(wrong)).unwrap();
    assert!(client.singleton(&Menu::SYSTEM_IDENTITY).await.is_err());
    assert_eq!(
        *router.seen.lock().unwrap(),
        ["GET /rest/system/identity HTTP/1.1"]
    );
}

/// docs/install.md's step 7 command, typed with this server's address: it writes the pin into
/// the shipped example, changing nothing else; `check` accepts the file, and the client built
/// from it connects to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_write_as_documented_gives_a_config_check_accepts_and_that_connects() {
    let router = router().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("uplinkd.toml");
    std::fs::write(&config, EXAMPLE).unwrap();

    let documented = doc_block("pin")
        .into_iter()
        .find(|l| l.starts_with("uplinkd pin "))
        .expect("step 7 has an `uplinkd pin` line");
    let args: Vec<String> = documented
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a.starts_with("https://") {
                router.url.clone()
            } else if a == "uplinkd.toml" {
                config.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    assert!(args.iter().any(|a| a == "--write"), "{documented}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(uplinkd(&args)).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("wrote [rest] trust"), "{stdout}");

    // The file is the example plus one line, right after `trust`.
    let written = std::fs::read_to_string(&config).unwrap();
    let pin_line = format!("pin_sha256 = \"{}\"\n", router.sha256);
    assert_eq!(
        written,
        EXAMPLE.replacen(
            "trust = \"pin-sha256\"\n",
            &format!("trust = \"pin-sha256\"\n{pin_line}"),
            1
        )
    );

    let check = run({
        let mut c = uplinkd(&["check", "--config", config.to_str().unwrap()]);
        c.env("UPLINKD_REST_PASSWORD", "pw");
        c
    })
    .await;
    assert!(check.status.success(), "{}", text(&check.stderr));
    let upper_colons = router
        .sha256
        .as_bytes()
        .chunks(2)
        .map(|c| text(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        text(&check.stdout).contains(&format!("pin_sha256 = \"{upper_colons}\"")),
        "{}",
        text(&check.stdout)
    );

    // The container's URL is the veth address; from here the same router is this server.
    let env = Env::empty()
        .with("UPLINKD_REST_PASSWORD", "pw")
        .with("UPLINKD_REST_URL", &router.url);
    let c = uplinkd::config::load(Some(&config), &env).unwrap();
    let client = Client::new(&c.router.rest).unwrap();
    let props = client.singleton(&Menu::SYSTEM_IDENTITY).await.unwrap();
    assert_eq!(props.str("name"), Some("MikroTik"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_stops_with_the_reason_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("uplinkd.toml");
    std::fs::write(&config, EXAMPLE).unwrap();
    let path = config.to_str().unwrap();

    // Nothing listens: the connect error, non-zero exit, the file unchanged.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = run(uplinkd(&["pin", "--url", &url, "--write", path])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connect to 127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // http:// has no certificate.
    let out = run(uplinkd(&[
        "pin",
        "--url",
        "http://127.0.0.1:1",
        "--write",
        path,
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("https://"),
        "{}",
        text(&out.stderr)
    );

    // A server that does not speak TLS.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", plain.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = plain.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let out = run(uplinkd(&["pin", "--url", &url, "--write", path])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("TLS handshake with"),
        "{}",
        text(&out.stderr)
    );

    // A server that accepts and closes before any handshake.
    let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", closing.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = closing.accept().await {
            drop(s);
        }
    });
    let out = run(uplinkd(&["pin", "--url", &url])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("TLS handshake with"),
        "{}",
        text(&out.stderr)
    );

    // A config with a CA file: a pin would conflict with it, so nothing is written.
    let router = router().await;
    let with_ca = EXAMPLE.replacen(
        "trust = \"pin-sha256\"\n",
        "trust = \"ca-file\"\nca_file = \"/etc/uplinkd/ca.pem\"\n",
        1,
    );
    std::fs::write(&config, &with_ca).unwrap();
    let out = run(uplinkd(&["pin", "--url", &router.url, "--write", path])).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("ca_file"),
        "{}",
        text(&out.stderr)
    );
    // The fingerprint is still shown, to be written by hand.
    assert_eq!(printed_pin(&text(&out.stdout)), router.sha256);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), with_ca);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}
