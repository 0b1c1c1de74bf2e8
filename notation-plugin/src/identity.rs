//! `verify-signature` with `SIGNATURE_VERIFIER.TRUSTED_IDENTITY`: whether the signing certificate is one the trust
//! policy's `trustedIdentities` names. Declaring the capability makes notation skip its own check for envelopes that
//! name this plugin, so this one matches exactly as notation's does (notation-go `verifier`,
//! `verifyX509TrustedIdentities`, and `internal/pkix`): `*` trusts any identity; otherwise each `x509.subject: DN`
//! entry is parsed, and the leaf's subject, read the same way, must hold every attribute of one entry with an equal
//! value. Entries with another prefix are left to other verifiers, as notation leaves them.
//!
//! The DN parser is written here because the one crate at hand that parses DNs, x509-cert's `FromStr` for
//! `RdnSequence`, follows RFC 4514 to the letter where notation does not: it keeps the blank after `, ` (notation's
//! own examples write `C=US, ST=WA, O=...`) as part of the next attribute type, does not know notation's `S` alias
//! for `ST`, and fails without saying where. This one reads what notation's parser (go-ldap `ParseDN`) reads.
//!
//! Imports nothing of the plugin: `verify.rs` turns the verdict into the answer.

use std::collections::BTreeMap;

use der::asn1::{BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Tag, Tagged as _};

/// The trust policy entry that trusts any identity.
const WILDCARD: &str = "*";
/// The prefix of the one kind of identity notation itself matches.
const X509_SUBJECT: &str = "x509.subject";
/// The attributes every DN must hold, as notation demands of the trust policy's and of the leaf's.
const MANDATORY: [&str; 3] = ["C", "ST", "O"];

/// A DN as notation compares it: attribute type → value, each type once.
pub type Subject = BTreeMap<String, String>;

/// Whether `leaf` (DER, the chain's first certificate) is one of the trust policy's `trusted` identities; Err is
/// the reason it is not, for people.
pub fn check(trusted: &[String], leaf: Option<&[u8]>) -> Result<(), String> {
    if trusted.iter().any(|i| i == WILDCARD) {
        return Ok(());
    }
    let mut identities = Vec::new();
    for identity in trusted {
        let Some((prefix, value)) = identity.split_once(':') else {
            return Err(format!(
                "the trusted identity {identity:?} has no ':' separating its type from its value \
                 (write \"{X509_SUBJECT}: C=..., ST=..., O=...\" or \"{WILDCARD}\")"
            ));
        };
        if prefix != X509_SUBJECT {
            continue;
        }
        if value.trim().is_empty() {
            return Err(format!(
                "the trusted identity {identity:?} has no distinguished name"
            ));
        }
        let subject = parse_distinguished_name(value)
            .map_err(|e| format!("the trusted identity {identity:?} is malformed: {e}"))?;
        identities.push(subject);
    }
    if identities.is_empty() {
        return Err(format!(
            "the trust policy names no {X509_SUBJECT} identity to match the signing certificate against: {trusted:?}"
        ));
    }
    let leaf = leaf.ok_or("the signature has no certificate chain")?;
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(leaf)
        .map_err(|e| format!("the signing certificate is not DER X.509: {e}"))?;
    let name = &certificate.tbs_certificate.subject;
    let subject = certificate_subject(name)
        .map_err(|e| format!("the signing certificate's subject {name} cannot be matched: {e}"))?;
    if identities.iter().any(|i| is_subset(i, &subject)) {
        return Ok(());
    }
    Err(format!(
        "the signing certificate's subject {name} matches none of the trust policy's trusted identities {trusted:?}"
    ))
}

/// Whether every attribute of `identity` is in `subject` with the same value (notation-go `pkix.IsSubsetDN`).
pub fn is_subset(identity: &Subject, subject: &Subject) -> bool {
    identity.iter().all(|(k, v)| subject.get(k) == Some(v))
}

/// A DN string as notation reads one (notation-go `pkix.ParseDistinguishedName`): RFC 4514 with blanks around
/// types and values ignored, `,` or `;` between RDNs, `\` escaping a special character or a hex byte; no
/// multi-valued RDN, no `#` hex value, no attribute twice, `S` for `ST`, and C, ST and O present.
pub fn parse_distinguished_name(dn: &str) -> Result<Subject, String> {
    let mut subject = Subject::new();
    for rdn in split_rdns(dn)? {
        if rdn.len() > 1 {
            return Err("it has a multi-valued RDN ('+'), which notation does not support".to_owned());
        }
        for (mut kind, value) in rdn {
            if kind == "S" {
                kind = "ST".to_owned();
            }
            if subject.contains_key(&kind) {
                return Err(format!(
                    "it names the attribute {kind} twice; a DN may name each once"
                ));
            }
            subject.insert(kind, value);
        }
    }
    mandatory(&subject)?;
    Ok(subject)
}

fn mandatory(subject: &Subject) -> Result<(), String> {
    for kind in MANDATORY {
        if subject.get(kind).is_none_or(String::is_empty) {
            return Err(format!(
                "it has no {kind}; a DN must hold C, ST (or S) and O at least"
            ));
        }
    }
    Ok(())
}

/// The RDNs of `dn`, each its (type, value) pairs, values unescaped.
fn split_rdns(dn: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let bytes = dn.as_bytes();
    let (mut rdns, mut rdn) = (Vec::new(), Vec::new());
    let mut kind: Option<String> = None;
    let mut buffer: Vec<u8> = Vec::new();
    // Blanks at the end of the buffer that no `\` protected: trimmed from a type or value.
    let mut trailing_blanks = 0;
    fn take(buffer: &mut Vec<u8>, trailing_blanks: &mut usize) -> Result<String, String> {
        buffer.truncate(buffer.len() - *trailing_blanks);
        *trailing_blanks = 0;
        String::from_utf8(std::mem::take(buffer))
            .map_err(|_| "an escaped byte sequence is not UTF-8".to_owned())
    }
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\\' => {
                let next = *bytes.get(i + 1).ok_or("it ends in a lone '\\'")?;
                if b" \"#+,;<=>\\".contains(&next) {
                    buffer.push(next);
                    i += 2;
                } else {
                    let hex = dn
                        .get(i + 1..i + 3)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            format!("'\\' at byte {i} is followed by neither a special character nor two hex digits")
                        })?;
                    buffer.push(hex);
                    i += 3;
                }
                trailing_blanks = 0;
                continue;
            }
            b'=' if kind.is_none() => {
                let name = take(&mut buffer, &mut trailing_blanks)?;
                if name.is_empty() {
                    return Err(format!("the '=' at byte {i} has no attribute type before it"));
                }
                let rest = dn[i + 1..].trim_start_matches(' ');
                if rest.starts_with('#') {
                    return Err(format!(
                        "the value of {name} is '#' hex, which notation does not support"
                    ));
                }
                kind = Some(name);
            }
            b',' | b';' | b'+' => {
                let name = kind
                    .take()
                    .ok_or_else(|| format!("the '{}' at byte {i} ends an RDN that has no '='", c as char))?;
                rdn.push((name, take(&mut buffer, &mut trailing_blanks)?));
                if c != b'+' {
                    rdns.push(std::mem::take(&mut rdn));
                }
            }
            b' ' if buffer.is_empty() => {}
            _ => {
                trailing_blanks = if c == b' ' { trailing_blanks + 1 } else { 0 };
                buffer.push(c);
            }
        }
        i += 1;
    }
    match kind {
        Some(name) => {
            rdn.push((name, take(&mut buffer, &mut trailing_blanks)?));
            rdns.push(rdn);
        }
        None if !buffer.is_empty() || !rdn.is_empty() => {
            return Err("it ends in an attribute with no '='".to_owned());
        }
        None => {}
    }
    if rdns.is_empty() {
        return Err("it is empty".to_owned());
    }
    Ok(rdns)
}

/// The leaf's subject as notation reads it: the attribute types Go's `pkix.Name` names (C, O, OU, CN,
/// SERIALNUMBER, L, ST, STREET, POSTALCODE), multi-valued RDNs flattened, each type once, C, ST and O present.
/// Notation cannot read a subject with other attributes (it prints them as `#` hex, which it then refuses), so
/// neither do we.
pub fn certificate_subject(name: &x509_cert::name::Name) -> Result<Subject, String> {
    let mut subject = Subject::new();
    for atv in name.0.iter().flat_map(|rdn| rdn.0.iter()) {
        let kind = match atv.oid.to_string().as_str() {
            "2.5.4.6" => "C",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.3" => "CN",
            "2.5.4.5" => "SERIALNUMBER",
            "2.5.4.7" => "L",
            "2.5.4.8" => "ST",
            "2.5.4.9" => "STREET",
            "2.5.4.17" => "POSTALCODE",
            other => {
                return Err(format!(
                    "it holds the attribute {other}, which notation does not support"
                ))
            }
        };
        let value = match atv.value.tag() {
            Tag::Utf8String => Utf8StringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()),
            Tag::PrintableString => PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()),
            Tag::Ia5String => Ia5StringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()),
            Tag::TeletexString => TeletexStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned()),
            Tag::BmpString => atv.value.decode_as::<BmpString>().map(|s| s.to_string()),
            tag => return Err(format!("its {kind} is a {tag}, not a string")),
        }
        .map_err(|e| format!("its {kind} is not a valid string: {e}"))?;
        if subject.insert(kind.to_owned(), value).is_some() {
            return Err(format!(
                "it names {kind} more than once, which notation does not support"
            ));
        }
    }
    mandatory(&subject)?;
    Ok(subject)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
