//! TLS to PostgreSQL as libpq users expect it: `sslmode` (`disable`,
//! `allow`, `prefer`, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert` in the URL, carried out with rustls.
//!
//! rust-postgres reads neither the verifying modes nor a root certificate,
//! so both are taken out of the URL here and the connector is built to
//! match: `prefer` and `require` encrypt without checking the server's
//! certificate unless a root certificate is at hand (then they check the
//! chain, as libpq does), `verify-ca` checks the chain, `verify-full` the
//! chain and the host name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    /// libpq's default: encrypted when the server offers it.
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// What a URL says of TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `sslrootcert`: the certificates the server's must chain to.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of a `postgresql://` URL or a
    /// `key=value` string; returns them and the rest, for rust-postgres.
    pub fn split(text: &str) -> Result<(TlsSettings, String), String> {
        let mut settings = TlsSettings::default();
        let mut take = |key: &str, value: &str| -> Result<bool, String> {
            match key {
                "sslmode" => settings.mode = SslMode::parse(value)?,
                "sslrootcert" => settings.root_cert = Some(PathBuf::from(value)),
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let Some((base, query)) = text.split_once('?') else { return Ok((settings, text.to_owned())) };
            let mut kept = Vec::new();
            for pair in query.split('&') {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key, &percent_decoded(value))? {
                    kept.push(pair);
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        } else {
            let mut kept = Vec::new();
            for (key, value, written) in keyword_pairs(text)? {
                if !take(&key, &value)? {
                    kept.push(written);
                }
            }
            kept.join(" ")
        };
        Ok((settings, rest))
    }

    /// What rust-postgres is told: whether to ask for TLS and whether to
    /// insist on it.
    pub fn postgres_mode(&self) -> postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => postgres::config::SslMode::Require,
        }
    }

    /// The root certificate file in use: `sslrootcert`, else libpq's
    /// `~/.postgresql/root.crt` when it exists.
    fn roots_file(&self) -> Option<PathBuf> {
        self.root_cert.clone().or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(Path::new(&home).join(".postgresql/root.crt")).filter(|p| p.is_file())
        })
    }

    /// How the server's certificate is checked, in words for `health`.
    pub fn checks(&self) -> &'static str {
        match (self.mode, self.roots_file().is_some()) {
            (SslMode::Disable, _) => "no encryption",
            (SslMode::VerifyFull, _) => "certificate chain and host name",
            (_, true) => "certificate chain",
            _ => "none (encrypted, server not authenticated)",
        }
    }

    /// The TLS connector for these settings; `None` for `disable`. The
    /// error names what is missing or unreadable.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, self.roots_file()) {
            (SslMode::Disable, _) => return Ok(None),
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={} needs the certificate the server's chains to: sslrootcert=PATH in the URL, \
                     or ~/.postgresql/root.crt",
                    self.mode.name()
                ))
            }
            (_, None) => Arc::new(PartialCheck { provider: provider.clone(), chain: None }),
            (mode, Some(roots)) => {
                let chain =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(&roots)?), provider.clone())
                        .build()
                        .map_err(|e| format!("cannot use the root certificates in {}: {e}", roots.display()))?;
                if mode == SslMode::VerifyFull {
                    chain
                } else {
                    Arc::new(PartialCheck { provider: provider.clone(), chain: Some(chain) })
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

fn root_store(path: &Path) -> Result<RootCertStore, String> {
    let unreadable =
        |e: &dyn std::fmt::Display| format!("cannot read the root certificates in {}: {e}", path.display());
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        store.add(cert.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))?;
    }
    if store.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    Ok(store)
}

/// The `key = value` pairs of a libpq keyword string, each with its text
/// as written. A value may be quoted (`'a b'`), with `\'` and `\\` inside.
/// Errors never repeat a value: it may be a password.
fn keyword_pairs(text: &str) -> Result<Vec<(String, String, &str)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let eq = rest.find('=').ok_or("a keyword without `=` in the connection string")?;
        let key = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = rest.len();
        let mut closed = !quoted;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '\'' if quoted => {
                    end = i + 1;
                    closed = true;
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(format!("the value of `{key}` in the connection string has no closing quote"));
        }
        rest = &rest[end..];
        pairs.push((key, value, start[..start.len() - rest.len()].trim()));
        rest = rest.trim_start();
    }
    Ok(pairs)
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The checks short of `verify-full`: with no chain (`prefer`, and
/// `require` without a root certificate) any certificate is taken, as
/// libpq takes it; with one (`verify-ca`) the chain is checked and the
/// host name is not. The handshake's signatures are checked either way.
#[derive(Debug)]
struct PartialCheck {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for PartialCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_of_both_forms() {
        let (tls, rest) =
            TlsSettings::split("postgresql://ada@db/ms?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem")
                .unwrap();
        assert_eq!((tls.mode, tls.root_cert.as_deref()), (SslMode::VerifyFull, Some(Path::new("/ca.pem"))));
        assert_eq!(rest, "postgresql://ada@db/ms?application_name=x");
        let (tls, rest) = TlsSettings::split("host=db sslmode = require dbname=ms").unwrap();
        assert_eq!((tls.mode, rest.as_str()), (SslMode::Require, "host=db dbname=ms"));
        // A quoted value is one value, whatever it holds.
        let (tls, rest) =
            TlsSettings::split("host=db application_name='a sslmode=disable' password='x \\' y'").unwrap();
        assert_eq!(tls.mode, SslMode::Prefer);
        assert_eq!(rest, "host=db application_name='a sslmode=disable' password='x \\' y'");
        let err = TlsSettings::split("host=db password='secret").unwrap_err();
        assert!(err.contains("`password`") && !err.contains("secret"), "{err}");
        let (tls, _) = TlsSettings::split("postgresql://db/ms").unwrap();
        assert_eq!(tls.mode, SslMode::Prefer, "libpq's default");
        let err = TlsSettings::split("postgresql://db/ms?sslmode=always").unwrap_err();
        assert!(err.contains("sslmode `always` is not one of"), "{err}");
    }

    #[test]
    fn verifying_needs_a_root_certificate() {
        let tls = TlsSettings { mode: SslMode::VerifyFull, root_cert: Some(PathBuf::from("/nonexistent/ca.pem")) };
        let err = tls.connector().err().unwrap_or_default();
        assert!(err.contains("cannot read the root certificates in /nonexistent/ca.pem"), "{err}");
        assert!(TlsSettings { mode: SslMode::Disable, root_cert: None }.connector().unwrap().is_none());
    }
}
