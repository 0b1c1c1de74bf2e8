//! Keyless certificates, as Fulcio issues them (sigstore/fulcio `docs/certificate-specification.md` and
//! `docs/oid-info.md`): a code-signing leaf for a key the client made a moment ago, valid for ten minutes, with an
//! empty subject, the identity as its (critical) subject alternative name, and the token's issuer and CI claims
//! under 1.3.6.1.4.1.57264.1, so cosign, sigstore-go and policy engines read them as they read Fulcio's. Signed
//! by the keyless intermediate, whose key is in the HSM. What goes in (the identity and its claims) is decided in
//! `signing/keyless.rs`; this file only encodes it.

use std::time::{Duration, SystemTime};

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::name::{GeneralName, OtherName};
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::demo::{serial, Ca, PkiError};
use super::hsm_key::HsmSignature;

/// How long a keyless certificate is valid: Fulcio's ten minutes, long enough to sign and timestamp.
pub const VALIDITY: Duration = Duration::from_secs(600);

/// The identity a certificate is for, as its subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A person's verified e-mail address (rfc822Name).
    Email(String),
    /// A CI workflow (GitHub's `https://github.com/{job_workflow_ref}`), or an issuer's URI subject.
    Uri(String),
    /// Any other subject, as Fulcio's username principal: `{sub}!{issuer host}` in an otherName of type
    /// 1.3.6.1.4.1.57264.1.7.
    Username(String),
}

/// The Fulcio extensions this file writes, by their last arc. 1 to 6 are the deprecated (v1) ones whose value is
/// the bare string; 8 and above hold a DER UTF8String.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FulcioExtension {
    IssuerV1 = 1,
    GithubWorkflowTrigger = 2,
    GithubWorkflowSha = 3,
    GithubWorkflowName = 4,
    GithubWorkflowRepository = 5,
    GithubWorkflowRef = 6,
    Issuer = 8,
    BuildSignerUri = 9,
    BuildSignerDigest = 10,
    RunnerEnvironment = 11,
    SourceRepositoryUri = 12,
    SourceRepositoryDigest = 13,
    SourceRepositoryRef = 14,
    SourceRepositoryIdentifier = 15,
    SourceRepositoryOwnerUri = 16,
    SourceRepositoryOwnerIdentifier = 17,
    BuildConfigUri = 18,
    BuildConfigDigest = 19,
    BuildTrigger = 20,
    RunInvocationUri = 21,
    SourceRepositoryVisibilityAtSigning = 22,
}

impl FulcioExtension {
    /// Its OID, 1.3.6.1.4.1.57264.1.N.
    #[cfg(test)]
    pub fn oid(self) -> ObjectIdentifier {
        fulcio_oid(self as u32)
    }

    /// The extension's value (the content of its OCTET STRING): the bare string for the v1 extensions, as Fulcio
    /// writes them, a DER UTF8String for the others.
    pub fn value(self, text: &str) -> Result<Vec<u8>, der::Error> {
        if (self as u32) <= 6 {
            Ok(text.as_bytes().to_vec())
        } else {
            Utf8StringRef::new(text)?.to_der()
        }
    }
}

/// 1.3.6.1.4.1.57264.1.`arc`, built at compile time for each extension type below.
const fn fulcio_oid(arc: u32) -> ObjectIdentifier {
    match arc {
        1 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1"),
        2 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.2"),
        3 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.3"),
        4 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.4"),
        5 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.5"),
        6 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.6"),
        7 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7"),
        8 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8"),
        9 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.9"),
        10 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.10"),
        11 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.11"),
        12 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.12"),
        13 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.13"),
        14 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.14"),
        15 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.15"),
        16 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.16"),
        17 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.17"),
        18 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.18"),
        19 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.19"),
        20 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.20"),
        21 => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.21"),
        _ => ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.22"),
    }
}

/// One Fulcio extension with its already-encoded value. x509-cert's builder takes extensions by type (the OID is
/// an associated constant), so each arc is its own type: [`add`] picks it.
struct Raw<const ARC: u32>(Vec<u8>);

impl<const ARC: u32> AssociatedOid for Raw<ARC> {
    const OID: ObjectIdentifier = fulcio_oid(ARC);
}

impl<const ARC: u32> Encode for Raw<ARC> {
    fn encoded_len(&self) -> der::Result<der::Length> {
        der::Length::try_from(self.0.len())
    }

    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl<const ARC: u32> x509_cert::ext::AsExtension for Raw<ARC> {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        false
    }
}

fn add<S>(
    builder: &mut CertificateBuilder<'_, S>,
    extension: FulcioExtension,
    value: Vec<u8>,
) -> Result<(), PkiError>
where
    S: signature::Keypair + spki::DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: spki::EncodePublicKey,
{
    use FulcioExtension as F;
    match extension {
        F::IssuerV1 => builder.add_extension(&Raw::<1>(value))?,
        F::GithubWorkflowTrigger => builder.add_extension(&Raw::<2>(value))?,
        F::GithubWorkflowSha => builder.add_extension(&Raw::<3>(value))?,
        F::GithubWorkflowName => builder.add_extension(&Raw::<4>(value))?,
        F::GithubWorkflowRepository => builder.add_extension(&Raw::<5>(value))?,
        F::GithubWorkflowRef => builder.add_extension(&Raw::<6>(value))?,
        F::Issuer => builder.add_extension(&Raw::<8>(value))?,
        F::BuildSignerUri => builder.add_extension(&Raw::<9>(value))?,
        F::BuildSignerDigest => builder.add_extension(&Raw::<10>(value))?,
        F::RunnerEnvironment => builder.add_extension(&Raw::<11>(value))?,
        F::SourceRepositoryUri => builder.add_extension(&Raw::<12>(value))?,
        F::SourceRepositoryDigest => builder.add_extension(&Raw::<13>(value))?,
        F::SourceRepositoryRef => builder.add_extension(&Raw::<14>(value))?,
        F::SourceRepositoryIdentifier => builder.add_extension(&Raw::<15>(value))?,
        F::SourceRepositoryOwnerUri => builder.add_extension(&Raw::<16>(value))?,
        F::SourceRepositoryOwnerIdentifier => builder.add_extension(&Raw::<17>(value))?,
        F::BuildConfigUri => builder.add_extension(&Raw::<18>(value))?,
        F::BuildConfigDigest => builder.add_extension(&Raw::<19>(value))?,
        F::BuildTrigger => builder.add_extension(&Raw::<20>(value))?,
        F::RunInvocationUri => builder.add_extension(&Raw::<21>(value))?,
        F::SourceRepositoryVisibilityAtSigning => builder.add_extension(&Raw::<22>(value))?,
    }
    Ok(())
}

/// What a keyless certificate says: who (the SAN) and the claims, each under its extension.
#[derive(Debug, Clone)]
pub struct Request {
    pub identity: Identity,
    pub extensions: Vec<(FulcioExtension, String)>,
}

/// The certificate for `spki_der` (a key the client holds) saying `request`, issued at `now` by `ca` and valid for
/// [`VALIDITY`].
pub fn issue(
    ca: &Ca<'_>,
    spki_der: &[u8],
    request: &Request,
    now: SystemTime,
) -> Result<Certificate, PkiError> {
    issue_with::<_, HsmSignature>(&ca.cert.tbs_certificate.subject, &ca.key, spki_der, request, now)
}

/// [`issue`] with any signer, so the encoding can be tested without an HSM.
fn issue_with<S, Signature>(
    issuer: &Name,
    signer: &S,
    spki_der: &[u8],
    request: &Request,
    now: SystemTime,
) -> Result<Certificate, PkiError>
where
    S: signature::Keypair + spki::DynSignatureAlgorithmIdentifier + signature::Signer<Signature>,
    S::VerifyingKey: spki::EncodePublicKey,
    Signature: spki::SignatureBitStringEncoding,
{
    // The Leaf profile: basic constraints CA:FALSE, key identifiers, a critical KeyUsage (digitalSignature).
    let profile = Profile::Leaf {
        issuer: issuer.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let validity = Validity {
        not_before: Time::try_from(now)?,
        not_after: Time::try_from(now + VALIDITY)?,
    };
    let mut builder = CertificateBuilder::new(
        profile,
        serial()?,
        validity,
        Name::default(),
        SubjectPublicKeyInfoOwned::from_der(spki_der)?,
        signer,
    )?;
    builder.add_extension(&ExtendedKeyUsage(vec![
        const_oid::db::rfc5280::ID_KP_CODE_SIGNING,
    ]))?;
    // Critical, as the subject is empty (RFC 5280 4.2.1.6; x509-cert decides it from the subject).
    builder.add_extension(&SubjectAltName(vec![general_name(&request.identity)?]))?;
    for (extension, text) in &request.extensions {
        add(&mut builder, *extension, extension.value(text)?)?;
    }
    Ok(builder.build::<Signature>()?)
}

/// Why a certificate signing request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("certificateSigningRequest is not a PKCS#10 request: {0}")]
    Malformed(String),
    #[error("the certificate signing request's signature ({0}) does not verify with the public key it names: the proof of possession fails")]
    Signature(String),
}

/// The public key (DER SubjectPublicKeyInfo) of a PKCS#10 request, once its self-signature, the proof that the
/// requester holds the key, verifies. Its subject and attributes are ignored: the certificate says what the
/// identity token proves, as Fulcio's does.
pub fn csr_public_key(der: &[u8]) -> Result<Vec<u8>, CsrError> {
    let request =
        x509_cert::request::CertReq::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let spki = request
        .info
        .public_key
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let algorithm = &request.algorithm.oid;
    let (scheme, hash) = super::check::signature_algorithm(algorithm)
        .ok_or_else(|| CsrError::Malformed(format!("signature algorithm {algorithm} is not supported")))?;
    let key =
        common::pubkey::PublicKey::from_spki_der(&spki).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let info = request
        .info
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let signature = request
        .signature
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("its signature is not a whole number of bytes".into()))?;
    key.verify_message(scheme, hash, &info, signature)
        .map_err(|_| CsrError::Signature(algorithm.to_string()))?;
    Ok(spki)
}

fn general_name(identity: &Identity) -> Result<GeneralName, PkiError> {
    Ok(match identity {
        Identity::Email(email) => GeneralName::Rfc822Name(Ia5String::new(email)?),
        Identity::Uri(uri) => GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?),
        Identity::Username(name) => GeneralName::OtherName(OtherName {
            type_id: fulcio_oid(7),
            value: der::Any::encode_from(&Utf8StringRef::new(name)?)?,
        }),
    })
}

#[cfg(test)]
#[path = "keyless_tests.rs"]
mod tests;
