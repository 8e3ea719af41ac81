//! `uplinkd pin`: read the router's HTTPS certificate over one TLS handshake, print its SHA-256
//! fingerprint in the form `[rest] pin_sha256` takes, and optionally write it into a config file.
//!
//! This is trust on first use: the handshake accepts any certificate ([`tls::FirstUse`]), so what
//! it prints is only as good as the network path. The output says so and names the value to
//! compare it with (the fingerprint the install script printed on the router's terminal). No
//! request, and so no password, is ever sent over that connection. The config file is edited as
//! text, line by line, so comments and layout stay; the result is parsed again and must equal the
//! original plus the two keys, or nothing is written.

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::routeros::tls;

/// What `uplinkd pin` was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// `https://ROUTER[:PORT]`.
    pub url: String,
    /// A config file to set `[rest] trust` and `pin_sha256` in.
    pub write: Option<PathBuf>,
    /// Bound on the TCP connect and on each read and write of the handshake.
    pub timeout: Duration,
}

/// Why `uplinkd pin` stopped.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{url:?}: {what}")]
    Url { url: String, what: String },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {what}")]
    Handshake { addr: String, what: String },
    #[error("{path}: {what}")]
    Config { path: PathBuf, what: String },
}

/// The certificate as `uplinkd pin` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// SHA-256 of the DER, lower-case hex: what RouterOS prints and `pin_sha256` takes.
    pub sha256: String,
    /// The readable parts, or `None` when the DER is not a certificate this reader understands
    /// (the fingerprint is still right: it is taken over the bytes).
    pub details: Option<Details>,
}

/// Subject, issuer and validity of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

/// `uplinkd pin`: fetch, print, and with `--write` edit the config file.
/// The certificate is printed before the file is touched, so a file that cannot be edited still
/// leaves the user the fingerprint to write by hand.
pub fn main_pin(req: &Request) -> anyhow::Result<()> {
    let seen = fetch(&req.url, req.timeout)?;
    emit(&report(&req.url, &seen));
    if let Some(path) = &req.write {
        write_pin(path, &seen.sha256)?;
        emit(&format!(
            "wrote [rest] trust = \"pin-sha256\" and pin_sha256 to {}\n",
            path.display()
        ));
    }
    Ok(())
}

/// A reader that went away (`uplinkd pin ... | head -1`) is not an error of ours.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// One TLS handshake with the server at `url`; the leaf certificate it presented.
pub fn fetch(url: &str, timeout: Duration) -> Result<Seen, PinError> {
    let bad = |what: &str| PinError::Url {
        url: url.to_string(),
        what: what.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|_| bad("expected https://ROUTER[:PORT]"))?;
    if parsed.scheme() != "https" {
        return Err(bad(
            "expected an https:// URL (http:// has no certificate to pin)",
        ));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("expected a host, like https://192.168.88.1"))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addr_text = format!("{}:{port}", parsed.host_str().unwrap_or(&host));
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| PinError::Connect {
            addr: addr_text.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| PinError::Connect {
            addr: addr_text.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host"),
        })?;
    let name =
        ServerName::try_from(host.clone()).map_err(|_| bad("the host is not a valid name"))?;
    let handshake = |what: String| PinError::Handshake {
        addr: addr_text.clone(),
        what,
    };
    let (cfg, recorder) = tls::first_use_config().map_err(|e| handshake(e.to_string()))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| handshake(e.to_string()))?;
    let connect = |source| PinError::Connect {
        addr: addr_text.clone(),
        source,
    };
    let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    sock.set_read_timeout(Some(timeout)).map_err(connect)?;
    sock.set_write_timeout(Some(timeout)).map_err(connect)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| handshake(e.to_string()))?;
    }
    // Polite close; the server may already have gone, which changes nothing.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    let leaf = recorder
        .leaf()
        .ok_or_else(|| handshake("the server presented no certificate".into()))?;
    Ok(Seen {
        sha256: tls::hex(&tls::sha256(leaf.as_ref())),
        details: der::details(leaf.as_ref()),
    })
}

/// What `uplinkd pin` prints: the certificate, the line for the config, and the risk.
pub fn report(url: &str, seen: &Seen) -> String {
    let mut o = format!("{url} presented this certificate (accepted unchecked, to read it):\n");
    match &seen.details {
        Some(d) => {
            o.push_str(&format!("  subject  {}\n", d.subject));
            o.push_str(&format!("  issuer   {}\n", d.issuer));
            o.push_str(&format!("  valid    {} to {}\n", d.not_before, d.not_after));
        }
        None => o.push_str("  (not a certificate this reader can show; fingerprint below)\n"),
    }
    o.push_str(&format!("  sha256   {}\n\n", seen.sha256));
    o.push_str(&format!(
        "[rest]\ntrust = \"pin-sha256\"\npin_sha256 = \"{}\"\n\n",
        seen.sha256
    ));
    o.push_str(
        "Trust on first use: this certificate was read over the network without any check, so a \
         machine between you and the router could have shown its own. Compare the sha256 above \
         with the fingerprint the install script printed on the router's terminal (or \
         `/certificate print detail where name=uplinkd-rest`) before you rely on it.\n",
    );
    o
}

/// Sets `[rest] trust = "pin-sha256"` and `pin_sha256` in the file at `path`, keeping the rest
/// of it as it is. Writes through a temporary file and a rename, so a failure leaves the old file.
pub fn write_pin(path: &Path, sha256_hex: &str) -> Result<(), PinError> {
    let err = |what: String| PinError::Config {
        path: path.to_path_buf(),
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let edited = set_pin(&text, sha256_hex).map_err(err)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".uplinkd-pin.tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, edited)
        .map_err(|e| err(format!("cannot write {}: {e}", tmp.display())))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("cannot replace: {e}"))
    })
}

/// The TOML text with `[rest] trust = "pin-sha256"` and `pin_sha256 = "<hex>"` set: existing
/// lines of those keys in the `[rest]` table are replaced, missing ones are added after the
/// `trust` line (or the table header), and a file without `[rest]` gets the table at its end.
/// The result must parse to the original document plus exactly those two values; any layout
/// this line editor cannot handle (inline tables, dotted keys, multi-line strings around the
/// keys) fails that check and is reported instead of written.
pub fn set_pin(text: &str, sha256_hex: &str) -> Result<String, String> {
    let original: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    if let Some(rest) = original.get("rest").and_then(toml::Value::as_table)
        && rest.contains_key("ca_file")
    {
        return Err("[rest] has ca_file; a pin replaces it: remove ca_file first".into());
    }
    let trust_line = "trust = \"pin-sha256\"";
    let pin_line = format!("pin_sha256 = \"{sha256_hex}\"");

    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 3);
    let mut table: Option<String> = None;
    let (mut header, mut trust_at, mut pin_at) = (None, None, None);
    for line in &lines {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim_start();
        if let Some(name) = table_header(trimmed) {
            table = Some(name);
            if table.as_deref() == Some("rest") && header.is_none() {
                header = Some(out.len());
            }
        } else if table.as_deref() == Some("rest") {
            let indent = &body[..body.len() - trimmed.len()];
            if is_key(trimmed, "trust") {
                trust_at = Some(out.len());
                out.push(format!("{indent}{trust_line}{ending}"));
                continue;
            }
            if is_key(trimmed, "pin_sha256") {
                pin_at = Some(out.len());
                out.push(format!("{indent}{pin_line}{ending}"));
                continue;
            }
        }
        out.push((*line).to_string());
    }
    match (header, trust_at, pin_at) {
        (None, _, _) => {
            if original.contains_key("rest") {
                return Err("the rest table is not written as a [rest] header; set \
                            trust = \"pin-sha256\" and pin_sha256 there by hand"
                    .into());
            }
            if out.last().is_some_and(|l| !l.ends_with('\n')) {
                out.push(eol.to_string());
            }
            out.push(format!("{eol}[rest]{eol}{trust_line}{eol}{pin_line}{eol}"));
        }
        (Some(_), Some(_), Some(_)) => {}
        (Some(_), Some(t), None) => insert_line(&mut out, t + 1, format!("{pin_line}{eol}"), eol),
        (Some(_), None, Some(p)) => insert_line(&mut out, p, format!("{trust_line}{eol}"), eol),
        (Some(h), None, None) => insert_line(
            &mut out,
            h + 1,
            format!("{trust_line}{eol}{pin_line}{eol}"),
            eol,
        ),
    }
    let edited = out.concat();

    let mut want = original;
    let rest = want
        .entry("rest")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(rest) = rest.as_table_mut() else {
        return Err("rest is not a table".into());
    };
    rest.insert("trust".into(), toml::Value::String("pin-sha256".into()));
    rest.insert("pin_sha256".into(), toml::Value::String(sha256_hex.into()));
    match edited.parse::<toml::Table>() {
        Ok(got) if got == want => Ok(edited),
        _ => Err(
            "cannot set [rest] pin_sha256 safely in this file's layout; set \
                  trust = \"pin-sha256\" and pin_sha256 by hand"
                .into(),
        ),
    }
}

/// Inserts `line` at `at`, ending the line before it first when it is the file's last line and
/// has no newline.
fn insert_line(out: &mut Vec<String>, at: usize, line: String, eol: &str) {
    if let Some(prev) = at.checked_sub(1).and_then(|i| out.get_mut(i))
        && !prev.ends_with('\n')
    {
        prev.push_str(eol);
    }
    out.insert(at, line);
}

/// `[name]` or `[[name]]` (with an optional comment after it): the table's name.
fn table_header(trimmed: &str) -> Option<String> {
    if !trimmed.starts_with('[') {
        return None;
    }
    let close = trimmed.find(']')?;
    let inner = trimmed[..close].trim_start_matches('[').trim();
    Some(inner.trim_matches(['"', '\'']).to_string())
}

/// Whether the line assigns `key` (`key = ...`, `key= ...`).
fn is_key(trimmed: &str, key: &str) -> bool {
    trimmed
        .strip_prefix(key)
        .is_some_and(|r| r.trim_start().starts_with('='))
}

/// Just enough DER to show a certificate's subject, issuer and validity (RFC 5280 §4.1):
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer Name, validity SEQUENCE { notBefore, notAfter }, subject Name, ... }, ... }.
mod der {
    use super::Details;

    /// One TLV from the front of `input`: (tag, content, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;

    pub(super) fn details(cert: &[u8]) -> Option<Details> {
        let (SEQUENCE, cert, _) = tlv(cert)? else {
            return None;
        };
        let (SEQUENCE, tbs, _) = tlv(cert)? else {
            return None;
        };
        let mut rest = tbs;
        let (tag, _, r) = tlv(rest)?;
        if tag == 0xa0 {
            rest = r; // version
        }
        let (_, _, r) = tlv(rest)?; // serialNumber
        let (_, _, r) = tlv(r)?; // signature
        let (SEQUENCE, issuer, r) = tlv(r)? else {
            return None;
        };
        let (SEQUENCE, validity, r) = tlv(r)? else {
            return None;
        };
        let (SEQUENCE, subject, _) = tlv(r)? else {
            return None;
        };
        let (t1, nb, v) = tlv(validity)?;
        let (t2, na, _) = tlv(v)?;
        Some(Details {
            subject: name(subject)?,
            issuer: name(issuer)?,
            not_before: time(t1, nb)?,
            not_after: time(t2, na)?,
        })
    }

    /// A Name as `CN=..., O=...` in the certificate's order; empty as `(empty)`.
    fn name(mut rdns: &[u8]) -> Option<String> {
        let mut parts = Vec::new();
        while !rdns.is_empty() {
            let (SET, mut set, r) = tlv(rdns)? else {
                return None;
            };
            rdns = r;
            while !set.is_empty() {
                let (SEQUENCE, atv, r) = tlv(set)? else {
                    return None;
                };
                set = r;
                let (0x06, oid, v) = tlv(atv)? else {
                    return None;
                };
                let (tag, value, _) = tlv(v)?;
                let value = match tag {
                    // BMPString: UTF-16BE.
                    0x1e => {
                        let units: Vec<u16> = value
                            .chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => String::from_utf8_lossy(value).into_owned(),
                };
                parts.push(format!("{}={value}", attribute(oid)));
            }
        }
        Some(if parts.is_empty() {
            "(empty)".into()
        } else {
            parts.join(", ")
        })
    }

    fn attribute(oid: &[u8]) -> String {
        match oid {
            [0x55, 0x04, 0x03] => "CN".into(),
            [0x55, 0x04, 0x06] => "C".into(),
            [0x55, 0x04, 0x07] => "L".into(),
            [0x55, 0x04, 0x08] => "ST".into(),
            [0x55, 0x04, 0x0a] => "O".into(),
            [0x55, 0x04, 0x0b] => "OU".into(),
            _ => dotted(oid),
        }
    }

    fn dotted(oid: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut acc: u64 = 0;
        for b in oid {
            acc = (acc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (acc / 40).min(2);
                    arcs.push(first);
                    arcs.push(acc - first * 40);
                } else {
                    arcs.push(acc);
                }
                acc = 0;
            }
        }
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as `YYYY-MM-DD HH:MM:SS UTC`.
    fn time(tag: u8, value: &[u8]) -> Option<String> {
        let s = std::str::from_utf8(value).ok()?;
        let digits = s.strip_suffix('Z')?;
        let full = match (tag, digits.len()) {
            (0x17, 12) => {
                // RFC 5280: YY below 50 is 20YY.
                let yy: u32 = digits[..2].parse().ok()?;
                format!("{}{digits}", if yy < 50 { "20" } else { "19" })
            }
            (0x18, 14) => digits.to_string(),
            _ => return None,
        };
        if !full.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(format!(
            "{}-{}-{} {}:{}:{} UTC",
            &full[..4],
            &full[4..6],
            &full[6..8],
            &full[8..10],
            &full[10..12],
            &full[12..14]
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn times_and_oids() {
            assert_eq!(
                time(0x17, b"261202133109Z").as_deref(),
                Some("2026-12-02 13:31:09 UTC")
            );
            assert_eq!(
                time(0x17, b"991231235959Z").as_deref(),
                Some("1999-12-31 23:59:59 UTC")
            );
            assert_eq!(
                time(0x18, b"20361130000000Z").as_deref(),
                Some("2036-11-30 00:00:00 UTC")
            );
            assert_eq!(time(0x17, b"2612021331Z"), None);
            assert_eq!(time(0x18, b"2036113000000aZ"), None);
            // 1.2.840.113549.1.9.1 (emailAddress).
            assert_eq!(
                dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
                "1.2.840.113549.1.9.1"
            );
        }

        #[test]
        fn garbage_is_none_not_a_panic() {
            for bad in [
                &b""[..],
                b"\x30",
                b"\x30\x05\x30",
                b"\x30\x84\xff\xff\xff\xff",
                b"not even a certificate",
            ] {
                assert_eq!(details(bad), None, "{bad:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn rest_of(text: &str) -> toml::Table {
        let t: toml::Table = text.parse().unwrap();
        t["rest"].as_table().unwrap().clone()
    }

    #[test]
    fn replaces_both_lines_in_place_and_keeps_everything_else() {
        let text = "# top\n[rest]\n# how trust works\ntrust = \"webpki\" # old\ntimeout = \"5s\"\n\
                    pin_sha256 = \"AB:CD\"\n\n[[wan]]\nname = \"ISP1\"\n";
        let got = set_pin(text, PIN).unwrap();
        assert_eq!(
            got,
            format!(
                "# top\n[rest]\n# how trust works\ntrust = \"pin-sha256\"\ntimeout = \"5s\"\n\
                 pin_sha256 = \"{PIN}\"\n\n[[wan]]\nname = \"ISP1\"\n"
            )
        );
    }

    #[test]
    fn adds_the_pin_after_trust_and_leaves_comments_alone() {
        let text = "[rest]\nurl = \"https://192.168.88.1\"\ntrust = \"pin-sha256\"\n\
                    # pin_sha256 = \"...\"\n[lan]\nbridge = \"b\"\n";
        let got = set_pin(text, PIN).unwrap();
        assert_eq!(
            got,
            format!(
                "[rest]\nurl = \"https://192.168.88.1\"\ntrust = \"pin-sha256\"\n\
                 pin_sha256 = \"{PIN}\"\n# pin_sha256 = \"...\"\n[lan]\nbridge = \"b\"\n"
            )
        );
    }

    #[test]
    fn adds_both_under_the_header_or_a_new_table() {
        let got = set_pin("[rest] # REST\nuser = \"u\"\n", PIN).unwrap();
        assert_eq!(
            got,
            format!(
                "[rest] # REST\ntrust = \"pin-sha256\"\npin_sha256 = \"{PIN}\"\nuser = \"u\"\n"
            )
        );
        let got = set_pin("state_dir = \"/x\"", PIN).unwrap();
        assert_eq!(
            got,
            format!(
                "state_dir = \"/x\"\n\n[rest]\ntrust = \"pin-sha256\"\npin_sha256 = \"{PIN}\"\n"
            )
        );
        let r = rest_of(&got);
        assert_eq!(r["pin_sha256"].as_str(), Some(PIN));
        // A header on the last line, without a newline.
        let got = set_pin("[rest]", PIN).unwrap();
        assert_eq!(rest_of(&got)["trust"].as_str(), Some("pin-sha256"));
        // CRLF stays CRLF.
        let got = set_pin("[rest]\r\nuser = \"u\"\r\n", PIN).unwrap();
        assert!(!got.replace("\r\n", "").contains('\n'), "{got:?}");
    }

    #[test]
    fn layouts_it_cannot_edit_are_refused_not_broken() {
        for text in [
            "rest = { user = \"u\" }\n",
            "rest.user = \"u\"\n",
            "[rest]\nca_file = \"/ca.pem\"\n",
            "[rest\n",
            // A key inside a multi-line string is text, not a key: editing it would change it.
            "[rest]\nuser = \"\"\"\ntrust = \"x\"\n\"\"\"\n",
        ] {
            assert!(set_pin(text, PIN).is_err(), "{text:?}");
        }
        // A `trust` key in another table is not touched.
        let got = set_pin("[email]\ntrust = \"x\"\n", PIN).unwrap();
        assert!(
            got.starts_with("[email]\ntrust = \"x\"\n\n[rest]\n"),
            "{got}"
        );
        // The last line without a newline gets one before the added line.
        let got = set_pin("[rest]\ntrust = \"webpki\"", PIN).unwrap();
        assert_eq!(
            got,
            format!("[rest]\ntrust = \"pin-sha256\"\npin_sha256 = \"{PIN}\"\n")
        );
    }

    #[test]
    fn the_report_names_the_line_and_the_risk() {
        let seen = Seen {
            sha256: PIN.into(),
            details: None,
        };
        let r = report("https://192.168.88.1", &seen);
        assert!(r.contains(&format!("pin_sha256 = \"{PIN}\"")), "{r}");
        assert!(r.contains("Trust on first use"), "{r}");
        assert!(
            r.contains("install script printed on the router's terminal"),
            "{r}"
        );
    }

    #[test]
    fn urls_other_than_https_are_refused_before_any_connection() {
        for url in ["http://127.0.0.1", "127.0.0.1", "https://", "ftp://x"] {
            let e = fetch(url, Duration::from_secs(1)).unwrap_err();
            assert!(matches!(e, PinError::Url { .. }), "{url}: {e}");
        }
    }
}
