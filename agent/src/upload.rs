//! HTTPS upload to the hub over rustls, with the hub's certificate verified against a
//! configured CA, a pinned certificate, or the public web PKI.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use synchro_shared::batch::BatchSignature;

/// The HTTP header carrying the detached signature (base64 of its JSON).
pub const SIGNATURE_HEADER: &str = "Synchro-Signature";
/// Where batches are posted, relative to the hub URL.
pub const BATCHES_PATH: &str = "/api/v1/batches";

/// Why an upload did not go through.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The TLS settings cannot be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The hub could not be reached or the connection failed.
    #[error("cannot reach the hub at {url}: {message}")]
    Network {
        /// The hub URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The hub refused the batch.
    #[error("the hub refused the batch ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Machine-readable reason.
        code: String,
        /// Human sentence.
        message: String,
    },
    /// The batch file cannot be read.
    #[error("cannot read the batch file: {0}")]
    Io(#[from] std::io::Error),
}

/// The hub's answer, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubReply {
    /// `accepted`, `duplicate` or `refused`.
    pub status: String,
    /// Machine-readable reason (refusals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human sentence.
    #[serde(default)]
    pub message: String,
    /// The hub's id for the stored batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UploadError> {
    let file = std::fs::File::open(path)
        .map_err(|e| UploadError::Tls(format!("{}: {e}", path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            UploadError::Tls(format!(
                "{}: not a PEM certificate file ({e})",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(UploadError::Tls(format!(
            "{}: no certificate in this PEM file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Accepts exactly one server certificate, byte for byte (certificate pinning).
#[derive(Debug)]
struct PinnedCertificate {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client for one hub.
pub struct HubClient {
    agent: ureq::Agent,
    url: String,
}

impl HubClient {
    /// Builds the client: CA file, pinned certificate, or (neither) the public web PKI.
    pub fn new(
        url: &str,
        ca_certificate: Option<&Path>,
        pinned_certificate: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, UploadError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| UploadError::Tls(e.to_string()))?;
        let tls = match (ca_certificate, pinned_certificate) {
            (_, Some(pin)) => {
                let pinned = read_certs(pin)?.remove(0);
                Some(
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                            pinned,
                            provider,
                        }))
                        .with_no_client_auth(),
                )
            }
            (Some(ca), None) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| UploadError::Tls(format!("{}: {e}", ca.display())))?;
                }
                Some(builder.with_root_certificates(roots).with_no_client_auth())
            }
            (None, None) => None,
        };
        let mut agent = ureq::AgentBuilder::new().timeout(timeout);
        if let Some(tls) = tls {
            agent = agent.tls_config(Arc::new(tls));
        }
        Ok(HubClient {
            agent: agent.build(),
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// Posts a sealed batch with its signature; returns the hub's reply.
    pub fn upload(
        &self,
        batch: &Path,
        signature: &BatchSignature,
    ) -> Result<HubReply, UploadError> {
        let file = std::fs::File::open(batch)?;
        let len = file.metadata()?.len();
        let compact = serde_json::to_string(signature).map_err(std::io::Error::other)?;
        let header = base64::engine::general_purpose::STANDARD.encode(compact);
        let url = format!("{}{BATCHES_PATH}", self.url);
        let result = self
            .agent
            .post(&url)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &len.to_string())
            .set(SIGNATURE_HEADER, &header)
            .send(file);
        match result {
            Ok(resp) => resp
                .into_string()
                .map_err(|e| e.to_string())
                .and_then(|body| serde_json::from_str::<HubReply>(&body).map_err(|e| e.to_string()))
                .map_err(|e| UploadError::Network {
                    url: self.url.clone(),
                    message: format!("unreadable reply: {e}"),
                }),
            Err(ureq::Error::Status(status, resp)) => {
                let reply: Option<HubReply> = resp
                    .into_string()
                    .ok()
                    .and_then(|body| serde_json::from_str(&body).ok());
                Err(UploadError::Refused {
                    status,
                    code: reply
                        .as_ref()
                        .and_then(|r| r.code.clone())
                        .unwrap_or_else(|| "http_error".into()),
                    message: reply.map(|r| r.message).unwrap_or_default(),
                })
            }
            Err(ureq::Error::Transport(t)) => Err(UploadError::Network {
                url: self.url.clone(),
                message: t.to_string(),
            }),
        }
    }
}
