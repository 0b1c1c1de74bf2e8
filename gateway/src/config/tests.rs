//! `gateway.toml` refused at load with a reason that names the setting: the artifact configurations' Notary
//! envelope and signing scheme.

#![allow(clippy::unwrap_used)]

use super::*;

fn load_with(configuration: &str) -> Result<GatewayConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let text = format!(
        "listen = \"127.0.0.1:8443\"\npublic_url = \"https://127.0.0.1:8443\"\norganization_id = \"org\"\n\
         audit_db = \"audit.db\"\n[tls]\ncertificate = \"tls.pem\"\nkey = \"tls.key\"\n\
         [hsm]\nmodule = \"softhsm2.so\"\ntoken_label = \"t\"\npin_file = \"pin\"\n\
         [[projects]]\nslug = \"demo\"\n[[projects.artifact_configurations]]\nslug = \"images\"\n{configuration}\n"
    );
    std::fs::write(&path, text).unwrap();
    GatewayConfig::load(&path)
        .map(|(config, _)| config)
        .map_err(|e| e.to_string())
}

#[test]
fn the_signing_scheme_of_an_artifact_configuration_is_read_as_the_notary_project_spells_it() {
    let config = load_with("signing_scheme = \"notary.x509.signingAuthority\"").unwrap();
    assert_eq!(
        config.projects[0].artifact_configurations[0].signing_scheme,
        SigningScheme::X509SigningAuthority
    );
    let config = load_with("").unwrap();
    assert_eq!(
        config.projects[0].artifact_configurations[0].signing_scheme,
        SigningScheme::X509
    );
}

#[test]
fn an_unknown_signing_scheme_or_one_without_a_notary_signature_is_refused_at_load() {
    let error = load_with("signing_scheme = \"signingAuthority\"").unwrap_err();
    assert!(
        error.contains("expected `notary.x509` or `notary.x509.signingAuthority`"),
        "{error}"
    );
    let error =
        load_with("notary = \"none\"\ncosign = true\nsigning_scheme = \"notary.x509.signingAuthority\"")
            .unwrap_err();
    assert!(
        error.contains(
            "artifact configuration demo/images: signing_scheme = \"notary.x509.signingAuthority\" applies to"
        ),
        "{error}"
    );
    let error = load_with("notary = \"jwt\"").unwrap_err();
    assert!(error.contains("notary = \"jwt\""), "{error}");
}

#[test]
fn a_public_url_with_port_0_names_the_port_the_gateway_listens_on() {
    let listening: std::net::SocketAddr = "127.0.0.1:40123".parse().unwrap();
    let mut config = load_with("").unwrap();
    config.public_url = "https://127.0.0.1:0".into();
    assert_eq!(
        config.clone().listening_on(listening).public_url,
        "https://127.0.0.1:40123"
    );
    config.public_url = "https://127.0.0.1:0/".into();
    assert_eq!(
        config.clone().listening_on(listening).public_url,
        "https://127.0.0.1:40123"
    );
    // A URL with a port of its own (a balancer's, a name clients use) stays as configured.
    config.public_url = "https://signing.example:10".into();
    assert_eq!(
        config.clone().listening_on(listening).public_url,
        "https://signing.example:10"
    );
    config.public_url = "https://signing.example".into();
    assert_eq!(
        config.listening_on(listening).public_url,
        "https://signing.example"
    );
}
