//! The TLS settings of HTTPS checks, built once and shared by every HTTPS client.
//!
//! Left to itself, each reqwest client loads its own verifier and trust store, and an HTTPS
//! check with `host` needs a client per member (the name must resolve to that member): shared,
//! the store is loaded once per `tls_verify` setting (memory measured in README "The check
//! plane at scale").

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;

/// Why the TLS configuration of HTTPS checks could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The crypto provider refused the default protocol versions.
    #[error("cannot set up TLS: {0}")]
    Setup(#[source] rustls::Error),
    /// The platform verifier could not load the system's trust store.
    #[error("cannot load the system's trust store: {0}")]
    TrustStore(#[source] rustls::Error),
}

/// A client configuration that verifies certificates as reqwest would (the platform verifier:
/// the system's trust store, the name asked for) when `verify`, and accepts any otherwise.
pub fn client_config(verify: bool) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?;
    let mut config = if verify {
        builder
            .with_platform_verifier()
            .map_err(TlsError::TrustStore)?
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(algorithms)))
            .with_no_client_auth()
    };
    // Checks speak HTTP/1.1 only, as reqwest's own configuration would say.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every check makes a full handshake: a session resumed from an earlier check (or from
    // another member with the same name) would skip the certificate it is meant to check.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// `tls_verify = false`: any certificate is accepted, though the handshake's signatures are
/// still checked against it. Written here because reqwest keeps its own equivalent private.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
