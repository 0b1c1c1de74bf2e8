//! The TLS configuration of the gateway client: which CAs are trusted for the gateway's certificate
//! (`TlsCaBundle`, else the system's) and the client certificate for mutual TLS.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;

/// The rustls configuration for the gateway client.
pub fn tls_config(config: &Config) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca_bundle {
        // An explicit bundle is the whole trust: a private gateway's CA, not the web PKI.
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::File {
                path: path.display().to_string(),
                reason: format!("{e} (TlsCaBundle / SIGNPATH_TLS_CA_BUNDLE)"),
            })?;
            for der in crate::x509::pem_certificates(&pem, &path.display().to_string())
                .map_err(|e| Error::Tls(format!("TlsCaBundle: {e}")))?
            {
                roots
                    .add(der.into())
                    .map_err(|e| Error::Tls(format!("TlsCaBundle {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system store may hold certificates rustls cannot use; skipping them is what browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    match (&config.tls_client_certificate_file, &config.tls_client_key_file) {
        (Some(cert_path), Some(key_path)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| Error::File { path: p.display().to_string(), reason: e.to_string() })
            };
            let chain = crate::x509::pem_certificates(&read(cert_path)?, &cert_path.display().to_string())
                .map_err(|e| Error::Tls(format!("TlsClientCertificateFile: {e}")))?
                .into_iter()
                .map(rustls_pki_types::CertificateDer::from)
                .collect();
            let key_pem = read(key_path)?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| Error::Tls(format!("TlsClientKeyFile: {e}")))?
                .ok_or_else(|| Error::Tls(format!("TlsClientKeyFile {}: no private key", key_path.display())))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| Error::Tls(format!("client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(Error::Tls(
            "mutual TLS needs both TlsClientCertificateFile and TlsClientKeyFile (SIGNPATH_TLS_CLIENT_CERTIFICATE_FILE, SIGNPATH_TLS_CLIENT_KEY_FILE)".into(),
        )),
    }
}

/// A TLS handshake that failed on a certificate: the gateway's is not trusted or not for this host, or the gateway
/// refused ours. Retrying cannot change that, so it ends the call at once with the reason.
pub fn handshake_failure(error: &reqwest::Error, url: &reqwest::Url) -> Option<Error> {
    use rustls::AlertDescription as Alert;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    "TlsCaBundle (SIGNPATH_TLS_CA_BUNDLE) must hold the CA of the gateway's certificate, and ApiUrl must name a host that certificate is for"
                }
                rustls::Error::AlertReceived(
                    Alert::BadCertificate
                    | Alert::UnsupportedCertificate
                    | Alert::CertificateRevoked
                    | Alert::CertificateExpired
                    | Alert::CertificateUnknown
                    | Alert::UnknownCA
                    | Alert::CertificateRequired
                    | Alert::AccessDenied,
                ) => "the gateway refused this client's certificate; check TlsClientCertificateFile and TlsClientKeyFile",
                _ => return None,
            };
            let mut shown = url.clone();
            shown.set_query(None);
            return Some(Error::TlsHandshake {
                url: shown.to_string(),
                reason: tls.to_string(),
                hint,
            });
        }
        // An io::Error's `source` is its wrapped error's source: descend into the wrapped error itself.
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
