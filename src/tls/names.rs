//! `[tls] client_names`: after the chain is verified against `client_ca`, the client certificate
//! must also name one of the accepted names, in a SAN (DNS name or IP address, checked by webpki)
//! or in the subject's common name (read here with a few lines of DER, as webpki does not look at CN).

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;

/// A client verifier that adds the name check to a chain verifier.
#[derive(Debug)]
pub struct NameVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl NameVerifier {
    /// `inner` alone when `names` is empty, else `inner` plus the name check.
    pub fn wrap(
        inner: Arc<dyn ClientCertVerifier>,
        names: Vec<String>,
    ) -> Arc<dyn ClientCertVerifier> {
        if names.is_empty() {
            inner
        } else {
            Arc::new(NameVerifier { inner, names })
        }
    }
}

/// Whether the certificate names `wanted` in a SAN or in its subject CN (ASCII case-insensitive).
pub fn cert_has_name(cert: &CertificateDer<'_>, wanted: &str) -> bool {
    if let Ok(ee) = webpki::EndEntityCert::try_from(cert)
        && let Ok(name) = ServerName::try_from(wanted)
        && ee.verify_is_valid_for_subject_name(&name).is_ok()
    {
        return true;
    }
    subject_common_names(cert.as_ref())
        .iter()
        .any(|cn| cn.eq_ignore_ascii_case(wanted))
}

impl ClientCertVerifier for NameVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.names.iter().any(|n| cert_has_name(end_entity, n)) {
            Ok(ok)
        } else {
            tracing::info!(
                "TLS client certificate refused: its subject CN / SAN names none of [tls] client_names"
            );
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject's commonName values (OID 2.5.4.3) of a DER certificate.
pub fn subject_common_names(cert: &[u8]) -> Vec<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut out = Vec::new();
    let Some((0x30, cert, _)) = der(cert) else {
        return out;
    };
    let Some((0x30, mut tbs, _)) = der(cert) else {
        return out;
    };
    // [0] version (optional), serial, signature, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        let Some((_, _, rest)) = der(tbs) else {
            return out;
        };
        tbs = rest;
    }
    for _ in 0..4 {
        let Some((_, _, rest)) = der(tbs) else {
            return out;
        };
        tbs = rest;
    }
    let Some((0x30, mut rdns, _)) = der(tbs) else {
        return out;
    };
    while let Some((0x31, mut set, rest)) = der(rdns) {
        rdns = rest;
        while let Some((0x30, atv, rest)) = der(set) {
            set = rest;
            if let Some((0x06, oid, value)) = der(atv)
                && oid == CN
                && let Some((_, text, _)) = der(value)
                && let Ok(s) = std::str::from_utf8(text)
            {
                out.push(s.to_string());
            }
        }
    }
    out
}
