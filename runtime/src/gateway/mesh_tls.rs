//! The mesh between hosts over mutual TLS. A host with an identity serves
//! its mesh port only to peers that present a host certificate the
//! cluster's CA signed (anything else fails the handshake), and calls a
//! peer only once the peer proved it is that host: its certificate must
//! name `<host>.hosts.atoll.invalid` ([`mesh_name`]). Connections are
//! pooled and sessions resumed, so a call rarely pays a handshake.

use crate::identity::Identity;
use atoll_sdk::api::mesh_name;
use hyper_util::client::legacy::connect::dns::Name;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

/// The TLS settings of both ends of the mesh.
#[derive(Clone)]
pub struct MeshTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

impl MeshTls {
    pub fn from_identity(id: &Identity) -> Result<MeshTls, String> {
        let bad = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(id.ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| bad("the cluster CA", &e))?;
            roots.add(cert).map_err(|e| bad("the cluster CA", &e))?;
        }
        let roots = Arc::new(roots);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(id.mesh_cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| bad("the mesh certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(id.mesh_key_pem.as_bytes())
            .map_err(|e| bad("the mesh key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| bad("the peer verifier", &e))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| bad("the mesh certificate", &e))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        // No ALPN here: the HTTPS connector sets it (and refuses a config
        // that has it).
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("the mesh certificate", &e))?;
        Ok(MeshTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The name peer `host`'s certificate must carry, for the handshake.
    pub fn server_name(host: &str) -> Option<ServerName<'static>> {
        ServerName::try_from(mesh_name(host)).ok()
    }
}

/// Where peers' mesh names resolve: host name → address, learned from
/// the routing table as calls go out (no DNS: the names are not real).
#[derive(Clone, Default)]
pub struct PeerAddresses(Arc<RwLock<HashMap<String, IpAddr>>>);

impl PeerAddresses {
    /// Remembers that `host`'s mesh name leads to `address`.
    pub fn learn(&self, host: &str, address: IpAddr) {
        let name = mesh_name(host);
        let known = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&name) == Some(&address);
        if !known {
            (self.0.write().unwrap_or_else(|e| e.into_inner())).insert(name, address);
        }
    }

    fn lookup(&self, name: &str) -> Option<IpAddr> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }
}

impl tower_service::Service<Name> for PeerAddresses {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        std::future::ready(match self.lookup(name.as_str()) {
            Some(ip) => Ok(vec![SocketAddr::new(ip, 0)].into_iter()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no address known for peer {}", name.as_str()),
            )),
        })
    }
}
