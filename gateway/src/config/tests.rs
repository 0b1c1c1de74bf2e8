//! `gateway.toml` refused at load with a reason that names the setting: the artifact configurations' Notary
//! envelope and signing scheme, a key the gateway does not know, a file others can write; and the defaults of a
//! trusted issuer's audience and repository host.

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
/// A setup's gateway.toml with one policy, and `extra` after it.
fn load_text(extra: &str) -> Result<GatewayConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let text = format!(
        "listen = \"127.0.0.1:8443\"\npublic_url = \"https://127.0.0.1:8443\"\norganization_id = \"org\"\n\
         audit_db = \"audit.db\"\n[tls]\ncertificate = \"tls.pem\"\nkey = \"tls.key\"\n\
         [hsm]\nmodule = \"softhsm2.so\"\ntoken_label = \"t\"\npin_file = \"pin\"\n\
         [[projects]]\nslug = \"demo\"\n\n[[projects.policies]]\nslug = \"release\"\nid = \"p1\"\n\
         key_label = \"k\"\ncertificate_chain = [\"c.pem\"]\n{extra}\n"
    );
    std::fs::write(&path, text).unwrap();
    GatewayConfig::load(&path)
        .map(|(config, _)| config)
        .map_err(|e| e.to_string())
}

#[test]
fn a_misspelt_approval_is_refused_naming_the_key_and_where_it_is() {
    let alice = format!(
        "[[approvers]]\nname = \"alice\"\nsha256 = \"{}\"\n",
        "0".repeat(64)
    );
    let config = load_text(&format!(
        "[projects.policies.approval]\napprovers = [\"alice\"]\nrequired = 1\n{alice}"
    ))
    .unwrap();
    assert!(config.projects[0].policies[0].approval.is_some());

    let error = load_text(&format!(
        "[projects.policies.aproval]\napprovers = [\"alice\"]\nrequired = 1\n{alice}"
    ))
    .unwrap_err();
    assert!(error.contains("unknown field `aproval`"), "{error}");
    assert!(
        error.contains("line 20") && error.contains("in [[projects.policies]]"),
        "{error}"
    );
    assert!(!error.contains('\n'), "one line for the log: {error}");
}

#[test]
fn an_unknown_key_is_refused_in_every_table() {
    for (extra, key) in [
        ("[projects.policies.approval]\napprovers = [\"a\"]\nrequired = 1\nrequierd = 2", "requierd"),
        ("[projects.policies.origin]\nissuer = \"ci\"\nconditon = { repository = \"acme/app\" }", "conditon"),
        ("[projects.policies.approval]\napprovers = [\"a\"]\nrequired = 1\n[projects.policies.approval.release_groups]\nmax_signatures = 2\nwindow_seconds = 60", "release_groups"),
        ("submiters = [\"ci\"]", "submiters"),
        ("[[tokens]]\nid = \"t\"\nname = \"ci\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nowners = \"x\"", "owners"),
        ("[[approvers]]\nname = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nonwer = \"x\"", "onwer"),
        ("[[trusted_issuers]]\nname = \"ci\"\nissuer = \"https://ci.example\"\naudiance = \"gw\"\njwks_file = \"j\"", "audiance"),
        ("[server]\nmax_conections = 5", "max_conections"),
        ("[artifacts]\nretention_hour = 5", "retention_hour"),
        ("[pki]\ncrl_listen = \"x\"\ncrl_url = \"x\"\nrevocations = \"r\"\ncas = []\ncrl_validity = 5", "crl_validity"),
        ("[tsl]\ncertificate = \"x\"", "tsl"),
    ] {
        let error = load_text(extra).unwrap_err();
        assert!(error.contains(&format!("unknown field `{key}`")), "{key}: {error}");
    }
}

#[test]
fn a_configuration_others_can_write_is_refused_naming_it_and_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, "listen = \"x\"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let error = GatewayConfig::load(&path).unwrap_err().to_string();
    assert!(
        error.contains(&path.display().to_string()) && error.contains("mode 0666"),
        "{error}"
    );
}

#[test]
fn a_pin_file_others_can_write_is_not_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("hsm-pin");
    std::fs::write(&pin, "1234\n").unwrap();
    let hsm = HsmConfig {
        module: "softhsm2.so".into(),
        softhsm2_conf: None,
        token_label: "t".into(),
        pin_file: "hsm-pin".into(),
    };
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(hsm.read_pin(dir.path()).unwrap(), "1234");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o622)).unwrap();
    let error = hsm.read_pin(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("the HSM PIN file") && error.contains("mode 0622"),
        "{error}"
    );
    assert!(!error.contains("1234"), "{error}");
}

#[test]
fn an_issuer_verifies_the_gateways_url_and_knows_its_repositories_host_by_default() {
    let issuer = |issuer: &str| IssuerConfig {
        name: "ci".into(),
        issuer: issuer.into(),
        audience: None,
        repository_host: None,
        jwks_file: None,
        jwks_url: None,
    };
    let github = issuer("https://token.actions.githubusercontent.com");
    assert_eq!(
        github.audience_or("https://gw.example:8443/"),
        "https://gw.example:8443"
    );
    assert_eq!(github.repository_host(), "github.com");
    assert_eq!(
        issuer("https://token.actions.acme.ghe.com").repository_host(),
        "acme.ghe.com"
    );
    assert_eq!(
        issuer("https://GitLab.Example").repository_host(),
        "gitlab.example"
    );
    assert_eq!(
        issuer("https://ghes.example/_services/token").repository_host(),
        "ghes.example"
    );
    let configured = IssuerConfig {
        audience: Some("signpath-gateway".into()),
        repository_host: Some("Git.Example".into()),
        ..github
    };
    assert_eq!(configured.audience_or("https://gw.example"), "signpath-gateway");
    assert_eq!(configured.repository_host(), "git.example");
}

#[test]
fn values_of_a_set_are_read_as_types_in_any_case_and_others_refused_with_their_line() {
    let config = load_with("notary = \"COSE\"").unwrap();
    assert_eq!(
        config.projects[0].artifact_configurations[0].notary,
        NotaryEnvelope::Cose
    );
    assert_eq!(
        config.projects[0].artifact_configurations[0].signature_formats(),
        1
    );
    let error = load_with("notary = \"jwt\"").unwrap_err();
    assert!(
        error.contains(
            "line 16, column 10, in [[projects.artifact_configurations]]: notary = \"jwt\": the Notary Project envelope is \"jws\", \"cose\" or \"none\""
        ),
        "{error}"
    );

    let config = load_text("hash_algorithms = [\"sha512\", \"Sha1\"]").unwrap();
    assert_eq!(
        config.projects[0].policies[0].hash_algorithms,
        [HashAlgorithm::Sha512, HashAlgorithm::Sha1]
    );
    assert_eq!(
        load_text("").unwrap().projects[0].policies[0].hash_algorithms,
        default_hash_algorithms()
    );
    let error = load_text("hash_algorithms = [\"Md5\"]").unwrap_err();
    assert!(
        error.contains(
            "line 20, column 19, in [[projects.policies]]: hash_algorithms: \"Md5\" is not Sha256, Sha384, Sha512 or Sha1"
        ),
        "{error}"
    );

    let hash = "Ab".repeat(32);
    let config = load_text(&format!(
        "[[tokens]]\nid = \"t\"\nname = \"ci\"\nsha256 = \"{hash}\""
    ))
    .unwrap();
    assert_eq!(config.tokens[0].sha256, TokenSha256([0xab; 32]));
    assert_eq!(config.tokens[0].sha256.to_string(), "ab".repeat(32));
    let error = load_text("[[tokens]]\nid = \"t\"\nname = \"ci\"\nsha256 = \"abc\"").unwrap_err();
    assert!(
        error.contains("line 23, column 10, in [[tokens]]: sha256 is not 64 hex digits"),
        "{error}"
    );
}

#[test]
fn typed_values_are_written_as_the_file_spells_them() {
    let mut config = load_text("hash_algorithms = [\"sha512\"]").unwrap();
    config.projects[0]
        .artifact_configurations
        .push(ArtifactConfigurationConfig {
            slug: "images".into(),
            notary: NotaryEnvelope::None,
            cosign: true,
            each_platform: false,
            signing_scheme: SigningScheme::X509,
        });
    let written = toml::to_string_pretty(&config).unwrap();
    assert!(written.contains("hash_algorithms = [\"Sha512\"]"), "{written}");
    assert!(written.contains("notary = \"none\""), "{written}");
}

#[test]
fn a_keyless_rules_approval_names_approvers_and_approval_true_is_refused_saying_what_to_write() {
    let rules = |approval: &str| {
        toml::from_str::<KeylessConfig>(&format!(
            "key_label = \"k\"\ncertificate_chain = []\n[[rules]]\nissuer = \"ci\"\nrepositories = [\"acme/app\"]\n{approval}"
        ))
        .map(|k| k.rules[0].approval.clone())
        .map_err(|e| e.to_string())
    };
    let named = rules("approval = { approvers = [\"alice\", \"bob\"], required = 1 }")
        .unwrap()
        .unwrap();
    assert_eq!(
        (named.approvers, named.required),
        (vec!["alice".to_owned(), "bob".to_owned()], 1)
    );
    assert!(rules("approval = false").unwrap().is_none());
    assert!(rules("").unwrap().is_none());
    let error = rules("approval = true").unwrap_err();
    assert!(
        error.contains("approval = true names no approvers")
            && error.contains("approval = { approvers = [\"alice\"], required = 1 }"),
        "{error}"
    );
    let error = rules("approval = { approvers = [\"alice\"], requierd = 1 }").unwrap_err();
    assert!(
        error.contains("approval is false or a table of approvers and required"),
        "{error}"
    );
}
