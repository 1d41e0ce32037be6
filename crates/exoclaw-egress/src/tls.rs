//! The TLS settings every outbound client shares: reqwest's own choice (the
//! platform verifier, ring, TLS 1.2 and 1.3, HTTP/1.1 by ALPN), built once
//! per process.
//!
//! The verifier loads its root store (the system's certificates, or the
//! bundled Mozilla roots where the system has none) when it first checks a
//! certificate, not when the client is built: parsing some 150 roots costs
//! about 70 KiB of heap and brings their 130 KiB of DER into memory, which a
//! gateway that sits idle, or talks only to local models over plain HTTP,
//! never needs (BENCHMARKS.md, "Start-up and footprint"). The checks are the
//! platform verifier's, unchanged; a root store that cannot be loaded fails
//! the handshake with the reason, as it failed start-up before.

use crate::error::EgressError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;
use std::sync::{Arc, OnceLock};

/// The process's client TLS settings (cloned: a clone shares the verifier
/// and the session cache).
pub(crate) fn client_config() -> Result<rustls::ClientConfig, EgressError> {
    static TLS: OnceLock<rustls::ClientConfig> = OnceLock::new();
    if let Some(config) = TLS.get() {
        return Ok(config.clone());
    }
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            EgressError::Unavailable(format!("cannot set up TLS for the HTTP client: {e}"))
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LazyVerifier::new(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TLS.get_or_init(|| config).clone())
}

/// The process's default crypto provider, installing ring's if none is.
fn provider() -> Arc<CryptoProvider> {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The platform verifier, built on its first use.
#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    /// The verifier, or why it could not be built (kept: every later
    /// handshake fails the same way instead of retrying the load).
    inner: OnceLock<Result<Verifier, String>>,
}

impl LazyVerifier {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            inner: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        let built = self
            .inner
            .get_or_init(|| Verifier::new(self.provider.clone()).map_err(|e| e.to_string()));
        built.as_ref().map_err(|e| {
            rustls::Error::General(format!("cannot load the TLS root certificates: {e}"))
        })
    }

    #[cfg(test)]
    fn is_loaded(&self) -> bool {
        self.inner.get().is_some()
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    /// Asked for every ClientHello, before any certificate: the provider's
    /// algorithms, which is what the platform verifier answers too (a test
    /// checks), without loading the roots.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_load_at_the_first_check_not_before() {
        let lazy = LazyVerifier::new(provider());
        let schemes = lazy.supported_verify_schemes();
        assert!(!lazy.is_loaded(), "asking for the schemes loaded the roots");
        let eager = Verifier::new(provider()).unwrap();
        assert_eq!(schemes, eager.supported_verify_schemes());
        assert!(!schemes.is_empty());

        let name = ServerName::try_from("example.com").unwrap();
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let now = UnixTime::now();
        let lazily = lazy
            .verify_server_cert(&junk, &[], &name, &[], now)
            .unwrap_err();
        assert!(lazy.is_loaded());
        let eagerly = eager
            .verify_server_cert(&junk, &[], &name, &[], now)
            .unwrap_err();
        assert_eq!(
            lazily, eagerly,
            "the lazy verifier decides as the platform one"
        );
    }

    #[test]
    fn a_certificate_that_chains_to_no_root_is_refused() {
        let lazy = LazyVerifier::new(provider());
        let name = ServerName::try_from("example.com").unwrap();
        // `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
        // -subj /CN=example.com -addext subjectAltName=DNS:example.com
        // -addext basicConstraints=critical,CA:FALSE -days 36500 -nodes
        // -outform DER`: a server certificate with the right name, signed
        // by no one the roots know.
        let cert = CertificateDer::from(
            include_bytes!("../tests/fixtures/self-signed-example.com.der").to_vec(),
        );
        let err = lazy
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
    }
}
