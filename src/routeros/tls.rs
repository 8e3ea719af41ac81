//! TLS trust for the REST client. A `FROM scratch` image has no system trust store, so trust is
//! always explicit: a pinned SHA-256 fingerprint of the router certificate (a custom rustls
//! verifier that accepts exactly that certificate, even self-signed, CA:TRUE or without a SAN),
//! a CA file, or the bundled Mozilla roots. The REST client never falls back to "accept
//! anything": the one verifier that accepts any certificate, [`FirstUse`], serves `uplinkd pin`,
//! which opens one connection to show the user the certificate and sends nothing over it.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::error::Error;

/// Installs the ring crypto provider as the process default, once. Idempotent: a provider that
/// is already installed (by us or by another part of the program) is kept.
pub fn install_crypto_provider() {
    // `install_default` fails only when a default exists already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The provider every TLS configuration of the client uses.
fn provider() -> Arc<CryptoProvider> {
    install_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// SHA-256 of `data`, through the ring provider's TLS 1.3 suite (no extra hash crate).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite by definition, so `tls13()` is `Some`.
    if let Some(suite) = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() {
        let digest = suite.common.hash_provider.hash(data);
        let bytes = digest.as_ref();
        if bytes.len() == 32 {
            out.copy_from_slice(bytes);
        }
    }
    out
}

/// Parses a SHA-256 fingerprint as RouterOS (`/certificate print detail`, `fingerprint`) or
/// openssl (`AB:CD:...`) print it: 64 hex digits, `:` and spaces ignored.
pub fn parse_sha256_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex: Vec<u8> = s
        .bytes()
        .filter(|b| *b != b':' && !b.is_ascii_whitespace())
        .collect();
    if hex.len() != 64 {
        return Err(format!(
            "a SHA-256 fingerprint has 64 hex digits, got {}",
            hex.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
            _ => return Err("a SHA-256 fingerprint has only hex digits (0-9, a-f)".to_owned()),
        }
    }
    Ok(out)
}

/// Lower-case hex, the form RouterOS prints.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Accepts exactly the server certificate whose SHA-256 equals the pin, whatever its issuer,
/// names, validity or basic constraints: the pin *is* the trust decision. Handshake signatures
/// are still verified, so the peer must hold the certificate's private key.
#[derive(Debug)]
pub struct PinVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub fn new(pin: [u8; 32]) -> Self {
        Self {
            pin,
            provider: provider(),
        }
    }
}

/// The handshake-signature half of a [`ServerCertVerifier`], the same for every verifier here:
/// checked with the provider's algorithms (a `provider` field), whatever the leaf policy is.
macro_rules! handshake_signatures_checked {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha256(end_entity.as_ref());
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "router certificate sha256 {} does not match the pinned {}",
                hex(&got),
                hex(&self.pin)
            )))
        }
    }

    handshake_signatures_checked!();
}

/// Accepts whatever certificate the server presents and records the leaf: trust on first use,
/// for `uplinkd pin` only, which prints the fingerprint for the user to compare with the one the
/// router printed and never sends a request (so never a password) over that connection. The
/// handshake signature is still checked, so the peer holds the recorded certificate's key.
#[derive(Debug)]
pub struct FirstUse {
    leaf: std::sync::Mutex<Option<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl FirstUse {
    /// The leaf certificate seen in the handshake, if it got that far.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        // A poisoned lock still holds the certificate recorded before the panic.
        match self.leaf.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl ServerCertVerifier for FirstUse {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut g = match self.leaf.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures_checked!();
}

/// A rustls client configuration for one trust-on-first-use handshake, and the recorder that
/// holds the leaf afterwards (see [`FirstUse`]).
pub fn first_use_config() -> Result<(rustls::ClientConfig, Arc<FirstUse>), Error> {
    let recorder = Arc::new(FirstUse {
        leaf: std::sync::Mutex::new(None),
        provider: provider(),
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            subject: "first-use certificate".into(),
            what: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((cfg, recorder))
}

/// A rustls client configuration that trusts only the pinned certificate.
pub fn pinned_config(pin: [u8; 32]) -> Result<rustls::ClientConfig, Error> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            subject: "pinned certificate".into(),
            what: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier::new(pin)))
        .with_no_client_auth();
    // reqwest is built without HTTP/2; RouterOS's www-ssl speaks HTTP/1.1.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The certificates of a PEM CA file (one or more).
pub fn load_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let subject = format!("CA file {}", path.display());
    let pem = std::fs::read(path).map_err(|e| Error::Tls {
        subject: subject.clone(),
        what: e.to_string(),
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Tls {
        subject: subject.clone(),
        what: super::error::chain(&e),
    })?;
    if certs.is_empty() {
        return Err(Error::Tls {
            subject,
            what: "no PEM certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// The bundled Mozilla roots (webpki-root-certs), for a router with a publicly trusted cert.
pub fn webpki_roots() -> Result<Vec<reqwest::Certificate>, Error> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| {
            reqwest::Certificate::from_der(der.as_ref()).map_err(|e| Error::Tls {
                subject: "bundled roots".into(),
                what: super::error::chain(&e),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprints_parse() {
        let want = sha256(b"abc");
        let plain = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_sha256_fingerprint(plain), Ok(want));
        let colons = plain
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_sha256_fingerprint(&colons), Ok(want));
        assert!(parse_sha256_fingerprint("abcd").is_err());
        assert!(parse_sha256_fingerprint(&"zz".repeat(32)).is_err());
        assert!(parse_sha256_fingerprint(&"é".repeat(32)).is_err());
    }

    #[test]
    fn pin_verifier_decides_on_the_hash_only() {
        let cert = CertificateDer::from(b"not even a certificate".to_vec());
        let name = ServerName::try_from("198.18.0.1").unwrap();
        let ok = PinVerifier::new(sha256(cert.as_ref()));
        assert!(
            ok.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let mut other = sha256(cert.as_ref());
        other[0] ^= 1;
        let err = PinVerifier::new(other)
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match the pinned"),
            "{err}"
        );
    }

    #[test]
    fn install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(CryptoProvider::get_default().is_some());
        assert!(pinned_config([0; 32]).is_ok());
    }

    #[test]
    fn bundled_roots_load() {
        assert!(webpki_roots().unwrap().len() > 50);
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let e = load_ca_file(std::path::Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "nothing here\n").unwrap();
        assert!(load_ca_file(&p).unwrap_err().to_string().contains("no PEM"));
    }
}
