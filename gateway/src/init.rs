//! `signpath-gateway init --dir DIR`: a complete, self-contained setup with no global state — a SoftHSM2 token
//! with one key per Notary key spec, a PKI for them (its CA keys in the token too, its CRLs served over http), a TLS certificate, an organization, an API token,
//! `gateway.toml`, and `env` for clients.

use std::path::{Path, PathBuf};

use common::keys::KeySpec;

use crate::cli::access::new_token_config;
use crate::config::{
    ArtifactConfigurationConfig, CaConfig, GatewayConfig, HsmConfig, KeylessConfig, PkiConfig, PolicyConfig,
    ProjectConfig, TlsConfig,
};
use crate::fsutil::{random_token, write_private, write_public};
use crate::pki::hsm_key::HsmKey;
use crate::{hsm, pki};

pub type InitError = crate::error::BoxError;

pub const DEFAULT_SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const TOKEN_LABEL: &str = "signpath-gateway";
pub const PROJECT: &str = "demo";
/// CKA_LABEL of the keyless intermediate's key.
pub const KEYLESS_KEY_LABEL: &str = "ca/keyless";

/// The CRL port for `--port` and `--crl-port`: the one given, else the HTTPS port + 1. Never 0: the certificates
/// name the CRL URL, so its port must be known before anything listens.
pub fn crl_port(port: u16, crl_port: Option<u16>) -> Result<u16, InitError> {
    match crl_port {
        Some(0) => Err(
            "--crl-port 0: the certificates init issues name the CRL URL, so its port cannot be left to \
                        the system; give a free port"
                .into(),
        ),
        Some(crl_port) => Ok(crl_port),
        None if port == 0 || port == u16::MAX => {
            Err("with --port 0 (or 65535) there is no next port for the CRLs; give --crl-port".into())
        }
        None => Ok(port + 1),
    }
}

pub fn run(dir: &Path, port: u16, crl_port: u16, module: &Path) -> Result<(), InitError> {
    if dir.join("gateway.toml").exists() {
        return Err(format!(
            "{} already holds a gateway setup; refusing to overwrite it (use another --dir)",
            dir.display()
        )
        .into());
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(format!(
            "{} is not empty; init needs a new or empty directory",
            dir.display()
        )
        .into());
    }
    // Writable by the owner only, whatever the umask (a umask of 002 would make them group-writable): `serve`
    // refuses a gateway.toml, PIN file or database in a directory others can write.
    let mut owner_writes = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(owner_writes.recursive(true), 0o755);
    for sub in ["ca", "pki", "tls", "softhsm/tokens"] {
        owner_writes.create(dir.join(sub))?;
    }
    let dir = dir.canonicalize()?;

    // The HSM: SoftHSM2 with its own configuration inside DIR.
    let softhsm_conf = dir.join("softhsm2.conf");
    write_public(
        &softhsm_conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.join("softhsm/tokens").display()
        )
        .as_bytes(),
    )?;
    hsm::use_softhsm_conf(&softhsm_conf);
    let pkcs11 = hsm::open(module)?;
    let user_pin = random_token();
    hsm::init_token(&pkcs11, TOKEN_LABEL, &random_token(), &user_pin)?;
    write_private(&dir.join("hsm-pin"), user_pin.as_bytes())?;
    let signer = hsm::Signer::new(pkcs11, TOKEN_LABEL, &user_pin)?;

    // The PKI: every key in the HSM, the CAs' too; certificates name the CRL their issuer publishes.
    let pki_config = PkiConfig {
        crl_listen: format!("127.0.0.1:{crl_port}"),
        crl_url: format!("http://127.0.0.1:{crl_port}"),
        crl_validity_seconds: 24 * 3600,
        revocations: "ca/revocations.toml".into(),
        cas: vec![
            CaConfig {
                name: "root".into(),
                certificate: "ca/root.pem".into(),
                key_label: "ca/root".into(),
            },
            CaConfig {
                name: "intermediate".into(),
                certificate: "ca/intermediate.pem".into(),
                key_label: "ca/intermediate".into(),
            },
        ],
    };
    for ca in &pki_config.cas {
        signer.generate_key(KeySpec::Ec384, &ca.key_label)?;
    }
    // The transparency log's checkpoint key (`serve` makes it too, for a setup made before the log).
    signer.generate_key(KeySpec::Ec256, crate::tlog::KEY_LABEL)?;
    let root = pki::root("SignPath Gateway Demo Root", HsmKey::open(&signer, "ca/root")?)?;
    let intermediate = pki::intermediate(
        "SignPath Gateway Demo Intermediate",
        HsmKey::open(&signer, "ca/intermediate")?,
        &root,
        &pki_config.crl_url_of("root"),
    )?;
    write_public(&dir.join("ca/root.pem"), pki::pem(&root.cert)?.as_bytes())?;
    write_public(
        &dir.join("ca/intermediate.pem"),
        pki::pem(&intermediate.cert)?.as_bytes(),
    )?;
    let keyless = keyless_intermediate(&dir, &signer, &root, &pki_config)?;

    let (token_config, token) = new_token_config("demo");
    let mut policies = Vec::new();
    for spec in KeySpec::ALL {
        let slug = spec.policy_slug();
        let spki = signer.generate_key(spec, &slug)?;
        let leaf = pki::leaf(
            &format!("{PROJECT}/{slug}"),
            &spki,
            &intermediate,
            &pki_config.crl_url_of("intermediate"),
        )?;
        let leaf_path = PathBuf::from(format!("pki/{slug}.pem"));
        write_public(&dir.join(&leaf_path), pki::pem(&leaf)?.as_bytes())?;
        policies.push(PolicyConfig {
            slug: slug.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            key_label: slug,
            certificate_chain: vec![leaf_path, "ca/intermediate.pem".into(), "ca/root.pem".into()],
            submitters: vec![token_config.id.clone()],
            hash_algorithms: crate::config::default_hash_algorithms(),
            approval: None,
            origin: None,
        });
    }
    let timestamping = crate::init_tsa::setup(&dir, &signer)?;
    drop((root, intermediate));
    drop(signer);

    // TLS.
    let tls = pki::tls()?;
    write_public(&dir.join("tls-ca.pem"), tls.ca_pem.as_bytes())?;
    write_public(&dir.join("tls/server.pem"), tls.server_chain_pem.as_bytes())?;
    write_private(&dir.join("tls/server.key"), tls.server_key_pem.as_bytes())?;

    let public_url = format!("https://127.0.0.1:{port}");
    let organization_id = uuid::Uuid::new_v4().to_string();
    let config = GatewayConfig {
        listen: format!("127.0.0.1:{port}"),
        public_url: public_url.clone(),
        organization_id: organization_id.clone(),
        audit_db: "audit.db".into(),
        tls: TlsConfig {
            certificate: "tls/server.pem".into(),
            key: "tls/server.key".into(),
        },
        hsm: HsmConfig {
            module: module.to_path_buf(),
            softhsm2_conf: Some("softhsm2.conf".into()),
            token_label: TOKEN_LABEL.to_owned(),
            pin_file: "hsm-pin".into(),
        },
        tokens: vec![token_config],
        projects: vec![ProjectConfig {
            slug: PROJECT.to_owned(),
            policies,
            artifact_configurations: artifact_configurations(),
        }],
        approvers: Vec::new(),
        trusted_issuers: Vec::new(),
        server: Default::default(),
        pki: Some(pki_config),
        timestamping: Some(timestamping),
        artifacts: Default::default(),
        github: None,
        keyless: Some(keyless),
    };
    config.save(&dir.join("gateway.toml"))?;
    let env = format!(
        "# Settings for clients of this gateway: . {dir}/env\nexport SIGNPATH_API_URL='{public_url}'\nexport SIGNPATH_ORGANIZATION_ID='{organization_id}'\nexport SIGNPATH_API_TOKEN='{token}'\nexport SIGNPATH_TLS_CA_BUNDLE='{dir}/tls-ca.pem'\n",
        dir = dir.display()
    );
    write_private(&dir.join("env"), env.as_bytes())?;
    println!("initialized a gateway in {}", dir.display());
    if port == 0 {
        println!("  port 0: serve takes a free port and prints it; {public_url} in gateway.toml and env stands for it");
    }
    println!("  organization {organization_id}, project {PROJECT}, policies ec-256 ec-384 ec-521 rsa-2048 rsa-3072 rsa-4096");
    println!(
        "  start it:     signpath-gateway serve --config {}/gateway.toml",
        dir.display()
    );
    println!(
        "  client setup: . {}/env   (holds the API token; keep it private)",
        dir.display()
    );
    println!("  trust root:   {}/ca/root.pem", dir.display());
    println!(
        "  timestamps:   {public_url}/timestamp, TSA root {}/tsa/root.pem",
        dir.display()
    );
    Ok(())
}

/// The keyless CA (docs/keyless.md): an intermediate under the root, its P-384 key in the HSM like the other CAs'.
/// It admits no token until the operator adds `[[keyless.rules]]`. `keyless init` makes it for an older setup.
pub fn keyless_intermediate(
    dir: &Path,
    signer: &hsm::Signer,
    root: &pki::Ca<'_>,
    pki_config: &PkiConfig,
) -> Result<KeylessConfig, InitError> {
    signer.generate_key(KeySpec::Ec384, KEYLESS_KEY_LABEL)?;
    let keyless = pki::intermediate(
        "SignPath Gateway Demo Keyless",
        HsmKey::open(signer, KEYLESS_KEY_LABEL)?,
        root,
        &pki_config.crl_url_of("root"),
    )?;
    write_public(&dir.join("ca/keyless.pem"), pki::pem(&keyless.cert)?.as_bytes())?;
    Ok(KeylessConfig {
        key_label: KEYLESS_KEY_LABEL.to_owned(),
        certificate_chain: vec!["ca/keyless.pem".into(), "ca/root.pem".into()],
        rules: Vec::new(),
    })
}

/// The artifact configurations of the demo project, named as docs/oci.md uses them: `jws` first (the default, a
/// Notary Project JWS signature on each image, what a project without configurations gets) and `jws-cosign`
/// (also cosign's signature tag and each platform manifest).
fn artifact_configurations() -> Vec<ArtifactConfigurationConfig> {
    let configuration = |slug: &str, cosign: bool| ArtifactConfigurationConfig {
        slug: slug.to_owned(),
        notary: crate::config::NotaryEnvelope::Jws,
        cosign,
        each_platform: cosign,
        signing_scheme: Default::default(),
    };
    vec![configuration("jws", false), configuration("jws-cosign", true)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crl_port_is_never_left_to_the_system() {
        assert_eq!(crl_port(8443, None).unwrap(), 8444);
        assert_eq!(crl_port(0, Some(20001)).unwrap(), 20001);
        assert!(crl_port(0, None)
            .unwrap_err()
            .to_string()
            .contains("give --crl-port"));
        assert!(crl_port(8443, Some(0))
            .unwrap_err()
            .to_string()
            .contains("cannot be left to the system"));
    }

    #[test]
    fn the_demo_project_has_the_artifact_configurations_the_docs_name() {
        let configurations = artifact_configurations();
        let slugs: Vec<&str> = configurations.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(slugs, ["jws", "jws-cosign"]);
        for configuration in &configurations {
            assert_eq!(configuration.notary, crate::config::NotaryEnvelope::Jws);
        }
        // The first is the default: the same as a project without configurations.
        assert!(!configurations[0].cosign && !configurations[0].each_platform);
        assert!(configurations[1].cosign && configurations[1].each_platform);
    }
}
