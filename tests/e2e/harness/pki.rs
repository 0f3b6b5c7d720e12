//! A throwaway PKI made at test time for the mTLS listener: a CA, a server
//! certificate for 127.0.0.1, and client certificates with or without a
//! SPIFFE id, so no test depends on the committed demo certificates.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// The CA and its files in the layout [`super::Envoy::start_with_tls`] reads:
/// `ca.pem`, `server.pem`, `server-key.pem`.
pub struct Pki {
    dir: TempDir,
    ca_pem: String,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    /// A new CA and a server certificate for `127.0.0.1` and `localhost`.
    pub fn new() -> Self {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "mcp-authz e2e test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let ca_pem = params.self_signed(&key).expect("self-sign CA").pem();
        let ca = Issuer::new(params, key);

        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server SANs");
        server
            .distinguished_name
            .push(DnType::CommonName, "envoy mTLS listener");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (cert, key) = sign(&server, &ca);
        write(dir.path(), "ca.pem", &ca_pem);
        write(dir.path(), "server.pem", &cert);
        write(dir.path(), "server-key.pem", &key);
        Self { dir, ca_pem, ca }
    }

    /// The directory to hand to [`super::Envoy::start_with_tls`].
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client certificate named `common_name`, with `uri_san` (a SPIFFE id)
    /// as its only subject alternative name, or none: certificate and key PEM
    /// concatenated, as [`reqwest::Identity::from_pem`] reads them.
    pub fn client_identity(&self, common_name: &str, uri_san: Option<&str>) -> String {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = uri_san
            .map(|uri| SanType::URI(uri.try_into().expect("URI SAN is ASCII")))
            .into_iter()
            .collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (cert, key) = sign(&params, &self.ca);
        format!("{cert}{key}")
    }

    /// An HTTPS client that trusts only this CA and presents `identity`
    /// (from [`Pki::client_identity`]), or no certificate at all.
    pub fn https_client(&self, identity: Option<&str>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA PEM");
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([ca]);
        if let Some(pem) = identity {
            builder =
                builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        builder.build().expect("https client")
    }
}

/// Certificate and private key PEM of `params` signed by `ca`.
fn sign(params: &CertificateParams, ca: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("sign certificate");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
}
