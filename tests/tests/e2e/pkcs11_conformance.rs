//! PKCS#11 conformance: OpenSC's p11test, built by `scripts/install-deps` from Debian's source package of the
//! installed opensc, run against the module and the real gateway. p11test is non-destructive: it lists mechanisms
//! and objects, checks that each public key matches its certificate, signs with every mechanism a key allows and
//! verifies with OpenSSL, signs multi-part, signs raw ECDSA input of lengths around the curve size, checks RSA-PSS
//! parameter combinations, and checks that the attributes say what the keys can and cannot do (no decrypt, derive,
//! wrap or secret-key use on a signing-only token).
//!
//! Which cases pass, which are skipped and why, is in docs/reliability.md; this test keeps that record true.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its location

use e2e_tests::gateway::Gateway;
use e2e_tests::{require_tool, tools};
use serde_json::Value;

#[test]
fn opensc_p11test_passes_every_case_that_applies_to_a_signing_token() {
    let p11test = require_tool!("p11test");
    // p11test signs CKM_RSA_PKCS over a SHA-1 DigestInfo, and policies sign SHA-1 only where they list it
    // (gateway_hardening.rs and pkcs11_module.rs prove the refusal): here every policy lists it.
    let gateway = Gateway::start_with(|setup| {
        let path = setup.join("gateway.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        for project in config["projects"].as_array_mut().unwrap() {
            for policy in project["policies"].as_array_mut().unwrap() {
                let all = ["Sha1", "Sha256", "Sha384", "Sha512"].map(toml::Value::from);
                policy
                    .as_table_mut()
                    .unwrap()
                    .insert("hash_algorithms".into(), toml::Value::Array(all.to_vec()));
            }
        }
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let output = gateway
        .command(&p11test)
        .env("SIGNPATH_LOG_FILE_DIRECTORY", dir.path().join("logs"))
        .arg("-m")
        .arg(tools::release_artifact("libsignpath_pkcs11.so"))
        // The PIN CONFIG: the module takes the token from the environment, so no secret is on the command line.
        .args(["-p", "CONFIG", "-o"])
        .arg(dir.path().join("p11test.json"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = tools::output_text(&output);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("p11test.json")).unwrap()).unwrap();
    let results: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["test_id"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        // Waits for a card to be inserted; only in p11test's interactive mode.
        ("wait_test", "skip"),
        ("supported_mechanisms_test", "pass"),
        // C_GetInterface is PKCS#11 3.0; the module implements v2.40.
        ("interface_test", "skip"),
        ("readonly_tests", "pass"),
        ("multipart_tests", "pass"),
        ("ec_sign_size_test", "pass"),
        ("usage_test", "pass"),
        ("pss_oaep_test", "pass"),
        ("derive_tests", "pass"),
        ("secret_tests", "pass"),
        ("wrap_tests", "pass"),
    ]
    .iter()
    .map(|(t, r)| ((*t).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(results, expected, "p11test:\n{text}");
    assert!(
        output.status.success(),
        "p11test exited with {}:\n{text}",
        output.status
    );

    // What the passes covered: every mechanism of the keys p11test could check signed and verified.
    let rows = |test: &str| -> Vec<Vec<String>> {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["test_id"] == test)
            .and_then(|r| r["data"].as_array())
            .map(|rows| {
                rows.iter()
                    .skip(1) // the header
                    .map(|row| {
                        row.as_array()
                            .unwrap()
                            .iter()
                            .map(|c| c.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let label = |id: &str| {
        String::from_utf8(
            id.split(':')
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect(),
        )
        .unwrap()
    };
    let signed: Vec<String> = rows("readonly_tests")
        .iter()
        .filter(|row| row[2] == "YES")
        .map(|row| format!("{} {}", label(&row[0]), row[1]))
        .collect();
    for key in ["demo/rsa-2048", "demo/rsa-3072", "demo/rsa-4096"] {
        for mechanism in [
            "RSA_PKCS",
            "SHA256_RSA_PKCS",
            "SHA384_RSA_PKCS",
            "SHA512_RSA_PKCS",
        ] {
            assert!(
                signed.contains(&format!("{key} {mechanism}")),
                "{key} {mechanism}: {signed:?}"
            );
        }
    }
    // p11test reads EC public keys into an 80-byte buffer, too small for P-384 and P-521 points, so it checks
    // ec-256 only; pkcs11_clients.rs signs with the other curves.
    for mechanism in ["ECDSA", "ECDSA_SHA256", "ECDSA_SHA384", "ECDSA_SHA512"] {
        assert!(
            signed.contains(&format!("demo/ec-256 {mechanism}")),
            "{mechanism}: {signed:?}"
        );
    }
    // RSA-PSS: the combinations the gateway signs (MGF1 with the same hash, salt as long as the hash) work, with
    // every hash and with SHA-1 for the raw mechanism; p11test's other combinations are refused at C_SignInit.
    let pss = rows("pss_oaep_test");
    let working: Vec<&Vec<String>> = pss.iter().filter(|row| row[5] == "YES").collect();
    assert_eq!(working.len(), 3 * 7, "7 per RSA key: {pss:?}");
    assert!(
        working
            .iter()
            .all(|row| row[4] == "-1" && row[3].ends_with(row[2].as_str())),
        "salt = hash length (-1), MGF1 of the same hash: {working:?}"
    );
}
