//! A real SMTP server for the email tests: `smtp_server.py` (Python aiosmtpd) on 127.0.0.1 with
//! STARTTLS and implicit TLS, AUTH required, and a certificate generated here (a test CA and a
//! leaf for 127.0.0.1). Received messages land as JSON files the tests read back.
#![expect(
    clippy::disallowed_methods,
    reason = "a test measures and waits in real time; the clock ban is for the library"
)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const USER: &str = "router@example.net";
pub(crate) const PASSWORD: &str = "pw-Sekr1t-4242";

/// Whether python3 with aiosmtpd is here (`pip install aiosmtpd`).
pub(crate) fn available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err("python3 module aiosmtpd missing (pip install aiosmtpd)".into())
    }
}

/// A CA, and a leaf signed by it, as PEM files in `dir`.
pub(crate) struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// [`Certs`] with a leaf for `127.0.0.1` and `localhost`.
pub(crate) fn make_certs(dir: &Path) -> Certs {
    make_certs_for(dir, &["127.0.0.1", "localhost"])
}

/// [`Certs`] with a leaf for `names` (DNS names or IP addresses).
pub(crate) fn make_certs_for(dir: &Path, names: &[&str]) -> Certs {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "uplinkd test mail CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let c = Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&c.ca, ca_cert.pem()).unwrap();
    std::fs::write(&c.cert, leaf_cert.pem()).unwrap();
    std::fs::write(&c.key, leaf_key.serialize_pem()).unwrap();
    c
}

/// A free port on 127.0.0.1 right now (for a server that starts later on a known port).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) struct SmtpServer {
    child: Child,
    pub outdir: PathBuf,
    pub starttls_port: Option<u16>,
    pub tls_port: Option<u16>,
}

impl SmtpServer {
    /// Starts the server; `Some(0)` picks a free port. Returns once it listens.
    pub(crate) fn start(
        dir: &Path,
        certs: &Certs,
        starttls_port: Option<u16>,
        tls_port: Option<u16>,
    ) -> SmtpServer {
        Self::start_in(None, dir, certs, starttls_port, tls_port)
    }

    /// [`SmtpServer::start`] inside network namespace `netns` (its 127.0.0.1), for a daemon
    /// that runs there.
    pub(crate) fn start_in(
        netns: Option<&str>,
        dir: &Path,
        certs: &Certs,
        starttls_port: Option<u16>,
        tls_port: Option<u16>,
    ) -> SmtpServer {
        Self::start_at(netns, "127.0.0.1", dir, certs, starttls_port, tls_port)
    }

    /// [`SmtpServer::start_in`] listening on `host`, an address of that namespace.
    pub(crate) fn start_at(
        netns: Option<&str>,
        host: &str,
        dir: &Path,
        certs: &Certs,
        starttls_port: Option<u16>,
        tls_port: Option<u16>,
    ) -> SmtpServer {
        // aiosmtpd's controller checks readiness by connecting to the given port: never pass 0.
        let pick = |p: Option<u16>| p.map(|p| if p == 0 { free_port() } else { p });
        let (starttls_port, tls_port) = (pick(starttls_port), pick(tls_port));
        let outdir = dir.join(format!(
            "mail-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&outdir).unwrap();
        let ready = outdir.join("ready.json");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3"]);
                c
            }
            None => Command::new("python3"),
        };
        cmd.arg(script)
            .arg("--cert")
            .arg(&certs.cert)
            .arg("--key")
            .arg(&certs.key)
            .arg("--outdir")
            .arg(&outdir)
            .args(["--user", USER, "--password", PASSWORD])
            .arg("--ready-file")
            .arg(&ready)
            .args(["--host", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        if let Some(p) = starttls_port {
            cmd.args(["--starttls-port", &p.to_string()]);
        }
        if let Some(p) = tls_port {
            cmd.args(["--tls-port", &p.to_string()]);
        }
        let mut child = cmd.spawn().expect("start smtp_server.py");
        // Bounded wait for readiness (not a timing assertion: it only avoids hanging forever).
        for _ in 0..300 {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let port = |k: &str| v.get(k).and_then(|p| p.as_u64()).map(|p| p as u16);
                return SmtpServer {
                    child,
                    outdir,
                    starttls_port: port("starttls"),
                    tls_port: port("tls"),
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("smtp_server.py exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("smtp_server.py did not become ready");
    }

    /// Messages received so far, in arrival order.
    pub(crate) fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.outdir)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
