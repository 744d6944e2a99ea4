//! TLS trust: builds the rustls root store from PEM bundles ourselves (reqwest is built with
//! manual roots), so a berth server's self-signed CA or a system bundle can be trusted.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::Error;

/// Places where Linux distributions keep their CA bundle, tried when no bundle is given.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Parses every `CERTIFICATE` section of a PEM bundle into a root store.
/// Fails when no certificate could be added (an empty or garbled bundle is a mistake, not "trust nothing").
pub fn root_store_from_pem(pem: &str) -> Result<RootCertStore, Error> {
    let mut certificates = Vec::new();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certificates.push(certificate.map_err(|e| Error::InvalidCaBundle(e.to_string()))?);
    }
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(Error::InvalidCaBundle("no usable CERTIFICATE section".to_owned()));
    }
    Ok(store)
}

/// The system CA bundle, or an empty store when none of the usual files exists.
pub fn system_root_store() -> RootCertStore {
    SYSTEM_BUNDLES
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|pem| root_store_from_pem(&pem).ok())
        .unwrap_or_else(RootCertStore::empty)
}

/// A rustls client configuration (ring provider) trusting `roots`, offering HTTP/2 and HTTP/1.1.
pub(crate) fn client_config(roots: RootCertStore) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidCaBundle(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key generation");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("self-signed certificate").pem()
    }

    #[test]
    fn bundle_with_two_certificates_adds_both() {
        let bundle = format!("{}\n{}", self_signed_pem(), self_signed_pem());
        let store = root_store_from_pem(&bundle).expect("valid bundle");
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn empty_or_garbled_bundle_is_an_error() {
        assert!(matches!(root_store_from_pem(""), Err(Error::InvalidCaBundle(_))));
        let garbled =
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
        assert!(matches!(root_store_from_pem(garbled), Err(Error::InvalidCaBundle(_))));
    }

    #[test]
    fn client_config_offers_h2_and_http11() {
        let store = root_store_from_pem(&self_signed_pem()).expect("valid bundle");
        let config = client_config(store).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
