//! TLS: a local CA and server certificate generated into `DATA/tls/` on first start, or certificates by flag.
//!
//! `DATA/tls/ca.pem` is what clients trust. The CA key stays in `DATA/tls/ca.key` (mode 0600) so the server
//! certificate can be re-issued (new names, expiry) without clients having to trust anything new.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::fsutil::write_private;

/// What the server certificate was issued for; re-issued when the wanted names change or it nears expiry.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct ServerCertInfo {
    names: Vec<String>,
    not_after: i64,
}

pub struct TlsMaterial {
    pub server_config: Arc<rustls::ServerConfig>,
    /// The CA certificate clients should trust (PEM), when berth generated it.
    pub ca_pem: Option<String>,
    pub ca_path: Option<PathBuf>,
}

/// Load or create the certificates and build the rustls configuration.
pub fn prepare(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    extra_names: &[String],
) -> Result<TlsMaterial> {
    let (chain_pem, key_pem, ca_pem, ca_path) = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = std::fs::read_to_string(cert)
                .with_context(|| format!("reading {}", cert.display()))?;
            let key = std::fs::read_to_string(key)
                .with_context(|| format!("reading {}", key.display()))?;
            (chain, key, None, None)
        }
        (None, None) => {
            let (chain, key, ca) = generated(data_dir, extra_names)?;
            (chain, key, Some(ca), Some(data_dir.join("tls").join("ca.pem")))
        }
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let certs = rustls_pemfile::certs(&mut chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the TLS certificate chain")?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .context("parsing the TLS private key")?
        .context("no private key in the TLS key file")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial { server_config: Arc::new(config), ca_pem, ca_path })
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "berth local CA");
    dn.push(DnType::OrganizationName, "berth");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    Ok(params)
}

/// Returns (server chain PEM, server key PEM, CA PEM).
fn generated(data_dir: &Path, extra_names: &[String]) -> Result<(String, String, String)> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca_pem_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (ca_pem, ca_key) = if ca_pem_path.exists() && ca_key_path.exists() {
        let key_pem = std::fs::read_to_string(&ca_key_path)?;
        (
            std::fs::read_to_string(&ca_pem_path)?,
            KeyPair::from_pem(&key_pem).context("parsing tls/ca.key")?,
        )
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&ca_pem_path, cert.pem())?;
        (cert.pem(), key)
    };
    // The issuer is rebuilt from the same name and key: a leaf it signs verifies against the stored ca.pem.
    let issuer = ca_params()?.self_signed(&ca_key)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    for name in extra_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let (cert_path, key_path, info_path) =
        (dir.join("server.pem"), dir.join("server.key"), dir.join("server.json"));
    let now = OffsetDateTime::now_utc();
    let current: Option<ServerCertInfo> =
        std::fs::read(&info_path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let reusable = current.as_ref().is_some_and(|info| {
        info.names == names && info.not_after > (now + Duration::days(30)).unix_timestamp()
    }) && cert_path.exists()
        && key_path.exists();
    if reusable {
        let chain = std::fs::read_to_string(&cert_path)?;
        let key = std::fs::read_to_string(&key_path)?;
        return Ok((chain, key, ca_pem));
    }

    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "berth");
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(397);
    let not_after = params.not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer, &ca_key)?;
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, &chain)?;
    let info = ServerCertInfo { names, not_after: not_after.unix_timestamp() };
    std::fs::write(&info_path, serde_json::to_vec(&info)?)?;
    Ok((chain, key.serialize_pem(), ca_pem))
}
