//! A few long-lived, bound connections per target. LDAP multiplexes operations by message id,
//! so each connection carries several at once; a connection the server dropped is replaced on
//! its next use.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::Mutex;

use super::errors;
use crate::connectors::ConnectorError;

pub struct Pool {
    url: String,
    settings: LdapConnSettings,
    bind: Option<(String, String)>,
    timeout: Duration,
    slots: Vec<Mutex<Option<Ldap>>>,
    next: AtomicUsize,
}

/// TLS trusting exactly the certificates in `ca_file`.
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("ca_cert_file {}: {e}", ca_file.display()))?;
    for certificate in certificates {
        let certificate =
            certificate.map_err(|e| format!("ca_cert_file {}: {e}", ca_file.display()))?;
        roots
            .add(certificate)
            .map_err(|e| format!("ca_cert_file {}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Pool {
    pub fn new(
        url: &str,
        settings: LdapConnSettings,
        bind: Option<(String, String)>,
        size: usize,
        timeout: Duration,
    ) -> Pool {
        Pool {
            url: url.to_string(),
            settings: settings.set_conn_timeout(timeout),
            bind,
            timeout,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Drops every open connection: the next use connects and binds afresh (a connection
    /// test must prove the current settings, not an old connection).
    pub async fn reset(&self) {
        for slot in &self.slots {
            *slot.lock().await = None;
        }
    }

    /// A bound connection handle, opening (or reopening) one when needed.
    pub async fn get(&self) -> Result<Ldap, ConnectorError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        if let Some(ldap) = slot.as_mut() {
            if !ldap.is_closed() {
                return Ok(ldap.clone());
            }
        }
        *slot = None;
        let ldap = self.connect().await?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    async fn connect(&self) -> Result<Ldap, ConnectorError> {
        let doing = format!("connecting to {}", self.url);
        let opened = tokio::time::timeout(
            self.timeout,
            LdapConnAsync::with_settings(self.settings.clone(), &self.url),
        )
        .await
        .map_err(|_| errors::timed_out(&doing))?;
        let (connection, mut ldap) = opened.map_err(|e| errors::from_error(e, &doing))?;
        ldap3::drive!(connection);
        if let Some((dn, password)) = &self.bind {
            let doing = format!("binding as {dn}");
            let bound = tokio::time::timeout(self.timeout, ldap.simple_bind(dn, password))
                .await
                .map_err(|_| errors::timed_out(&doing))?;
            bound
                .and_then(|r| r.success())
                .map_err(|e| errors::from_error(e, &doing))?;
        }
        Ok(ldap)
    }
}
