//! The daemon's credentials, made on first start in its state folder (files
//! 0600): a CA, a server certificate it signs (for `localhost`,
//! `127.0.0.1`, `::1` and the listen address), a random bearer token, and a
//! kubeconfig naming all three, so that `export KUBECONFIG=...` is all a
//! user does.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// What the server needs: its TLS configuration and the token it accepts.
pub struct Credentials {
    /// rustls's server configuration (certificate chain and key).
    pub tls: Arc<rustls::ServerConfig>,
    /// The bearer token clients must send.
    pub token: String,
    /// The CA certificate (PEM), which clients trust.
    pub ca_pem: String,
}

const CA_CERT: &str = "ca.crt";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const TOKEN: &str = "token";

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Loads the credentials from `dir`, making any that are missing (all of
/// them on first start; a new server certificate when the listen address is
/// not among its names).
pub fn load_or_create(dir: &Path, listen: SocketAddr) -> anyhow::Result<Credentials> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |name: &str| dir.join(name);
    let names = server_names(listen);
    let fresh = !path(CA_CERT).exists()
        || !path(SERVER_CERT).exists()
        || !path(SERVER_KEY).exists()
        || std::fs::read_to_string(path("server.names"))
            .ok()
            .as_deref()
            != Some(names.join(",").as_str());
    if fresh {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wasipod daemon CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, ca_key)?;
        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(names.clone())?;
        server
            .distinguished_name
            .push(DnType::CommonName, "wasipod daemon");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server.signed_by(&server_key, &ca)?;
        write_private(&path(CA_CERT), ca.pem().as_bytes())?;
        write_private(&path(SERVER_CERT), server.pem().as_bytes())?;
        write_private(&path(SERVER_KEY), server_key.serialize_pem().as_bytes())?;
        write_private(&path("server.names"), names.join(",").as_bytes())?;
    }
    if !path(TOKEN).exists() {
        let bytes: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        write_private(&path(TOKEN), token.as_bytes())?;
    }
    let token = std::fs::read_to_string(path(TOKEN))?.trim().to_string();
    let ca_pem = std::fs::read_to_string(path(CA_CERT))?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut std::fs::read(path(SERVER_CERT))?.as_slice())
        .collect::<Result<_, _>>()
        .context("reading server.crt")?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(path(SERVER_KEY))?.as_slice())
        .context("reading server.key")?
        .context("server.key holds no key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Credentials {
        tls: Arc::new(tls),
        token,
        ca_pem,
    })
}

/// The names the server certificate covers.
fn server_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let ip = listen.ip().to_string();
    if !listen.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    names
}

/// Writes a kubeconfig for the daemon at `server` (an `https://` URL) and
/// returns its path.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    credentials: &Credentials,
) -> anyhow::Result<PathBuf> {
    let ca = base64::engine::general_purpose::STANDARD.encode(&credentials.ca_pem);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "wasipod", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "wasipod", "user": {"token": credentials.token}}],
        "contexts": [{"name": "wasipod", "context": {"cluster": "wasipod", "user": "wasipod", "namespace": "default"}}],
        "current-context": "wasipod",
        "preferences": {},
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_private(path, serde_yaml_ng::to_string(&config)?.as_bytes())?;
    Ok(path.to_path_buf())
}
