//! The dev PKI: a CA, the broker's server certificate, and for each agency in
//! the directory a client certificate (CN = agency id) and an Ed25519 signing
//! key, the partner gateway's HTTPS certificate and one delegated signing key
//! per publishing agency, plus the complete directory with each agency's
//! public keys. For
//! development and tests only; docs/operations.md says how a real deployment
//! issues these.

use std::fs;
use std::path::{Path, PathBuf};

use concord_domain::{Agency, Directory, KeyAlgorithm, KeyRecord, Role};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use ring::rand::SecureRandom;
use time::{Duration, OffsetDateTime};

/// Why the PKI could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error("making the certificate for {subject}: {source}")]
    Certificate {
        /// Whose.
        subject: String,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The input directory is invalid.
    #[error(transparent)]
    Directory(#[from] concord_domain::DirectoryError),
    /// The output folder already holds a PKI.
    #[error("{0} already holds a PKI (ca.pem); remove the folder to make a new one")]
    Exists(PathBuf),
}

/// Where the files of one agency are.
#[derive(Debug, Clone)]
pub struct AgencyFiles {
    /// Its folder.
    pub dir: PathBuf,
}

impl AgencyFiles {
    /// The files of `agency` under the PKI folder `pki`.
    pub fn new(pki: &Path, agency: &str) -> Self {
        AgencyFiles { dir: pki.join("agencies").join(agency) }
    }
    /// Client certificate (PEM).
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    /// Client certificate key (PKCS#8 PEM).
    pub fn certificate_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
    /// Ed25519 signing key (PKCS#8 PEM).
    pub fn signing_key(&self) -> PathBuf {
        self.dir.join("signing-key.pem")
    }
}

/// Where the partner gateway's files are.
#[derive(Debug, Clone)]
pub struct GatewayFiles {
    /// Its folder.
    pub dir: PathBuf,
}

impl GatewayFiles {
    /// The gateway's files under the PKI folder `pki`.
    pub fn new(pki: &Path) -> Self {
        GatewayFiles { dir: pki.join("gateway") }
    }
    /// HTTPS server certificate (PEM; SANs localhost and 127.0.0.1).
    pub fn server_certificate(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    /// Its key (PKCS#8 PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    /// The folder of delegated signing keys, one `<agency>.pem` each.
    pub fn delegated_keys(&self) -> PathBuf {
        self.dir.join("delegated")
    }
}

/// The roles whose agencies get a key delegated to the gateway: those that publish.
pub const DELEGATING_ROLES: [Role; 4] = [Role::Committee, Role::Enforcement, Role::Issuer, Role::Exchange];

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io { path: path.to_owned(), source };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    fs::write(path, contents).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

fn cert_error(subject: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Certificate { subject: subject.to_owned(), source }
}

/// A PEM `PRIVATE KEY` block of a fresh Ed25519 key and its raw public key.
pub fn new_signing_key() -> Result<(String, [u8; 32]), PkiError> {
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut seed).map_err(|_| PkiError::Random)?;
    let der = concord_protocol::pkcs8_from_seed(&seed);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| PkiError::Random)?;
    let public: [u8; 32] = ring::signature::KeyPair::public_key(&pair).as_ref().try_into().expect("32 bytes");
    Ok((pem_block("PRIVATE KEY", &der), public))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The dev CA's certificate parameters: its name is what every certificate it issues names as issuer.
fn ca_params(now: OffsetDateTime) -> Result<CertificateParams, PkiError> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_error("CA"))?;
    ca.distinguished_name.push(DnType::CommonName, "Concord dev CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Concord (development only)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + Duration::days(3650);
    Ok(ca)
}

/// A certificate for `cn` issued by `issuer`, and its key (PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    now: OffsetDateTime,
    cn: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate().map_err(cert_error(cn))?;
    let mut params = CertificateParams::new(sans).map_err(cert_error(cn))?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(825);
    let cert = params.signed_by(&key, issuer).map_err(cert_error(cn))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The agency's mutual-TLS certificate and signing key, written under `pki`.
/// Returns its entry with the signing key's record (`<id>/dev-1`).
fn issue(issuer: &Issuer<'_, KeyPair>, now: OffsetDateTime, pki: &Path, template: &Agency) -> Result<Agency, PkiError> {
    let files = AgencyFiles::new(pki, template.id.as_str());
    let (cert, key) = leaf(issuer, now, template.id.as_str(), Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
    write(&files.certificate(), &cert, false)?;
    write(&files.certificate_key(), &key, true)?;
    let (signing_pem, public) = new_signing_key()?;
    write(&files.signing_key(), &signing_pem, true)?;
    let mut agency = template.clone();
    agency.keys.push(KeyRecord {
        kid: format!("{}/dev-1", agency.id),
        alg: KeyAlgorithm::EdDSA,
        public_key: concord_protocol::b64(&public),
        not_before: Some(now - Duration::hours(1)),
        not_after: None,
        revoked_at: None,
        delegated: false,
    });
    Ok(agency)
}

/// Enrols a new agency in the existing dev PKI under `pki` (onboarding):
/// a client certificate (CN = its id) from the dev CA, and a signing key.
/// Returns its directory entry, for the next directory version. It gets no
/// key delegated to the gateway (the gateway reads those at start).
pub fn enroll(pki: &Path, template: &Agency) -> Result<Agency, PkiError> {
    if AgencyFiles::new(pki, template.id.as_str()).certificate().exists() {
        return Err(PkiError::Exists(AgencyFiles::new(pki, template.id.as_str()).certificate()));
    }
    let path = pki.join("ca-key.pem");
    let pem = fs::read_to_string(&path).map_err(|source| PkiError::Io { path: path.clone(), source })?;
    let ca_key = KeyPair::from_pem(&pem).map_err(cert_error("CA"))?;
    let now = OffsetDateTime::now_utc();
    let issuer = Issuer::new(ca_params(now)?, ca_key);
    issue(&issuer, now, pki, template)
}

/// Creates the dev PKI for the agencies in `agencies_toml` under `out`.
/// Returns the complete directory (with public keys), also written to `out/agencies.toml`.
pub fn init(agencies_toml: &Path, out: &Path) -> Result<Directory, PkiError> {
    if out.join("ca.pem").exists() {
        return Err(PkiError::Exists(out.to_owned()));
    }
    let text = fs::read_to_string(agencies_toml).map_err(|source| PkiError::Io { path: agencies_toml.to_owned(), source })?;
    let template = Directory::from_toml_str(&text, &agencies_toml.display().to_string())?;
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().map_err(cert_error("CA"))?;
    let ca = ca_params(now)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(cert_error("CA"))?;
    write(&out.join("ca.pem"), &ca_cert.pem(), false)?;
    write(&out.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |cn: &str, sans: Vec<String>, usage| leaf(&issuer, now, cn, sans, usage);

    // Kafka's PEM keystore wants the key and the chain in one file.
    let (cert, key) = leaf("kafka-broker", vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth)?;
    write(&out.join("broker/cert.pem"), &cert, false)?;
    write(&out.join("broker/keystore.pem"), &format!("{key}{cert}"), true)?;

    let gateway = GatewayFiles::new(out);
    let (cert, key) = leaf("concord-gateway", vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth)?;
    write(&gateway.server_certificate(), &cert, false)?;
    write(&gateway.server_key(), &key, true)?;

    let mut agencies = Vec::new();
    for agency in template.agencies() {
        let mut agency = issue(&issuer, now, out, agency)?;
        if DELEGATING_ROLES.contains(&agency.role) {
            let (pem, public) = new_signing_key()?;
            write(&gateway.delegated_keys().join(format!("{}.pem", agency.id)), &pem, true)?;
            agency.keys.push(KeyRecord {
                kid: format!("{}/gateway-1", agency.id),
                alg: KeyAlgorithm::EdDSA,
                public_key: concord_protocol::b64(&public),
                not_before: Some(now - Duration::hours(1)),
                not_after: None,
                revoked_at: None,
                delegated: true,
            });
        }
        agencies.push(agency);
    }
    let directory = Directory::new(agencies)
        .map_err(|problems| concord_domain::DirectoryError::Invalid { origin: agencies_toml.display().to_string(), problems })?;
    write(
        &out.join("agencies.toml"),
        &format!("# Written by `concord pki init` from {}.\n{}", agencies_toml.display(), directory.to_toml_string()),
        false,
    )?;
    Ok(directory)
}
