//! The gateway's CRLs as a verifier sees them: the URL of a CA's CRL (`[pki] crl_url`), and the CRL fetched over
//! plain HTTP and converted to PEM with openssl, for `openssl crl -text` and `openssl verify -crl_check`.

#![allow(clippy::unwrap_used)] // test scaffolding: a failure here should stop the test loudly

use std::path::Path;
use std::process::Command;

use crate::gateway::Gateway;
use crate::tools;

/// The URL the gateway publishes the CRL of its CA `ca` (`intermediate`, `root`) at.
pub fn crl_url(gateway: &Gateway, ca: &str) -> String {
    let config: toml::Value = toml::from_str(&std::fs::read_to_string(gateway.config()).unwrap()).unwrap();
    format!("{}/crl/{ca}.crl", config["pki"]["crl_url"].as_str().unwrap())
}

/// Fetches the CRL at `url` (served as `application/pkix-crl`, DER) and writes it as PEM to `out`.
pub fn fetch_crl(url: &str, out: &Path) {
    let response = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(response.headers()["content-type"], "application/pkix-crl");
    let der = out.with_extension("der");
    std::fs::write(&der, response.bytes().unwrap()).unwrap();
    let converted = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        converted.status.success(),
        "openssl crl: {}",
        tools::output_text(&converted)
    );
}
