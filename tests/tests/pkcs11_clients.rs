//! The module under the PKCS#11 clients people use, each as a real process against the real gateway:
//! OpenSC's pkcs11-tool, GnuTLS's p11tool (which forbids the module to create threads), OpenSSL through the libp11
//! engine, Java's SunPKCS11 (keytool, jarsigner), and p11-kit through `scripts/install`. Signatures are checked
//! by an independent verifier (openssl, jarsigner, p11tool's own verification).
//!
//! The PIN is `CONFIG` wherever a tool takes it on its command line, so the API token reaches the module through
//! the environment, not through `ps`; one pkcs11-tool call also uses `OrganizationId:ApiToken` to cover that form.
//!
//! A test binary of its own, not a module of `e2e/`: its gateway's settings are in the process environment, which
//! the client tools inherit and every other suite's processes would too.

mod pkcs11_clients_support;
mod pkcs11_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_tests::require_tool;

use pkcs11_clients_support::{
    export_public_key, key_id, openssl, pkcs11_tool, pkcs11_tool_sign, run, run_readable_by_others,
};
use pkcs11_support::{gateway, module_path};

#[test]
fn pkcs11_tool_lists_the_token_its_mechanisms_and_objects() {
    require_tool!("pkcs11-tool");
    let dir = tempfile::tempdir().unwrap();
    let slots = run(dir.path(), pkcs11_tool().arg("-L"));
    assert!(slots.contains("token label        : SignPath"), "{slots}");
    assert!(slots.contains("login required"), "{slots}");
    let mechanisms = run(dir.path(), pkcs11_tool().arg("-M"));
    for name in [
        "ECDSA,",
        "ECDSA-SHA256",
        "RSA-PKCS,",
        "SHA256-RSA-PKCS,",
        "RSA-PKCS-PSS",
        "SHA512-RSA-PKCS-PSS",
    ] {
        assert!(mechanisms.contains(name), "{name} in:\n{mechanisms}");
    }
    // The PIN as SignPath documents it, OrganizationId:ApiToken (here on the command line, as the tool needs).
    let objects = run(
        dir.path(),
        pkcs11_tool().args(["--login", "--pin", &gateway().pin, "-O"]),
    );
    let ec = key_id(dir.path(), "ec-256");
    for kind in [
        "Private Key Object; EC",
        "Public Key Object; EC",
        "Private Key Object; RSA",
        "Certificate Object",
    ] {
        assert!(objects.contains(kind), "{kind} in:\n{objects}");
    }
    assert!(objects.contains(&format!("label:      {ec}")), "{objects}");
}

#[test]
fn pkcs11_tool_signs_with_every_mechanism_and_openssl_verifies() {
    require_tool!("pkcs11-tool");
    require_tool!("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = key_id(d, "ec-256");
    let rsa = key_id(d, "rsa-2048");
    std::fs::write(d.join("data"), b"signed by pkcs11-tool").unwrap();
    for (id, file) in [(&ec, "ec"), (&rsa, "rsa")] {
        export_public_key(d, id, file);
    }
    run(
        d,
        openssl().args(["dgst", "-sha256", "-binary", "-out", "data.sha256", "data"]),
    );
    // DigestInfo(SHA-256) for CKM_RSA_PKCS: the prefix of RFC 8017 §9.2 note 1, then the digest.
    let mut digest_info = hex::decode("3031300d060960864801650304020105000420").unwrap();
    digest_info.extend(std::fs::read(d.join("data.sha256")).unwrap());
    std::fs::write(d.join("data.digestinfo"), digest_info).unwrap();

    let sign =
        |id: &str, mechanism: &[&str], input: &str, out: &str| pkcs11_tool_sign(d, id, mechanism, input, out);
    let verify = |args: &[&str]| run(d, openssl().args(args));

    sign(&ec, &["-m", "ECDSA", "-f", "openssl"], "data.sha256", "s1");
    verify(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "ec.pem",
        "-in",
        "data.sha256",
        "-sigfile",
        "s1",
    ]);
    for (mechanism, digest) in [
        ("ECDSA-SHA256", "-sha256"),
        ("ECDSA-SHA384", "-sha384"),
        ("ECDSA-SHA512", "-sha512"),
    ] {
        sign(&ec, &["-m", mechanism, "-f", "openssl"], "data", mechanism);
        verify(&[
            "dgst",
            digest,
            "-verify",
            "ec.pem",
            "-signature",
            mechanism,
            "data",
        ]);
    }
    sign(&rsa, &["-m", "RSA-PKCS"], "data.digestinfo", "s2");
    verify(&[
        "dgst",
        "-sha256",
        "-verify",
        "rsa.pem",
        "-signature",
        "s2",
        "data",
    ]);
    for (mechanism, digest) in [
        ("SHA256-RSA-PKCS", "-sha256"),
        ("SHA384-RSA-PKCS", "-sha384"),
        ("SHA512-RSA-PKCS", "-sha512"),
    ] {
        sign(&rsa, &["-m", mechanism], "data", mechanism);
        verify(&[
            "dgst",
            digest,
            "-verify",
            "rsa.pem",
            "-signature",
            mechanism,
            "data",
        ]);
    }
    sign(
        &rsa,
        &[
            "-m",
            "RSA-PKCS-PSS",
            "--hash-algorithm",
            "SHA256",
            "--mgf",
            "MGF1-SHA256",
        ],
        "data.sha256",
        "s3",
    );
    verify(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "rsa.pem",
        "-in",
        "data.sha256",
        "-sigfile",
        "s3",
        "-pkeyopt",
        "digest:sha256",
        "-pkeyopt",
        "rsa_padding_mode:pss",
        "-pkeyopt",
        "rsa_pss_saltlen:-1",
    ]);
    for (mechanism, digest) in [
        ("SHA256-RSA-PKCS-PSS", "-sha256"),
        ("SHA384-RSA-PKCS-PSS", "-sha384"),
        ("SHA512-RSA-PKCS-PSS", "-sha512"),
    ] {
        sign(&rsa, &["-m", mechanism], "data", mechanism);
        verify(&[
            "dgst",
            digest,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1",
            "-verify",
            "rsa.pem",
            "-signature",
            mechanism,
            "data",
        ]);
    }
}

#[test]
fn pkcs11_tool_self_test_and_fork_test_pass() {
    require_tool!("pkcs11-tool");
    let dir = tempfile::tempdir().unwrap();
    let report = run(
        dir.path(),
        pkcs11_tool().args(["--login", "--pin", "CONFIG", "--test"]),
    );
    assert!(report.contains("No errors"), "{report}");
    assert!(report.contains("RSA-PKCS: OK"), "{report}");
    // A child forked after C_Initialize calls C_Initialize again and must succeed.
    let report = run(dir.path(), pkcs11_tool().args(["--test-fork", "-L"]));
    assert!(report.contains("C_Initialize in forked child"), "{report}");
}

#[test]
fn p11tool_lists_exports_and_test_signs_without_threads() {
    let p11tool_path = require_tool!("p11tool");
    require_tool!("pkcs11-tool");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p11tool = || {
        let mut command = Command::new(&p11tool_path);
        command
            .env("GNUTLS_PIN", "CONFIG")
            .arg("--provider")
            .arg(module_path());
        command
    };
    let tokens = run(d, p11tool().arg("--list-tokens"));
    assert!(tokens.contains("Label: SignPath"), "{tokens}");
    let all = run(
        d,
        p11tool().args(["--login", "--list-all", "pkcs11:token=SignPath"]),
    );
    assert!(all.contains("Private key (EC/ECDSA-SECP256R1)"), "{all}");
    assert!(all.contains("X.509 Certificate"), "{all}");
    let ec = key_id(d, "ec-256").replace('/', "%2F");
    let rsa = key_id(d, "rsa-2048").replace('/', "%2F");
    let exported = run(
        d,
        p11tool()
            .args(["--login", "--export-pubkey"])
            .arg(format!("pkcs11:token=SignPath;object={ec}")),
    );
    assert!(exported.contains("-----BEGIN PUBLIC KEY-----"), "{exported}");
    // GnuTLS initializes with CKF_LIBRARY_CANT_CREATE_OS_THREADS; --test-sign signs and verifies twice.
    for (object, extra) in [(&ec, None), (&rsa, None), (&rsa, Some("rsa-pss"))] {
        let mut command = p11tool();
        command.args(["--login", "--test-sign"]);
        if let Some(params) = extra {
            command.args(["--sign-params", params]);
        }
        let report = run(
            d,
            command.arg(format!("pkcs11:token=SignPath;object={object};type=private")),
        );
        assert!(
            report.contains("Verifying against public key in the token... ok"),
            "{report}"
        );
    }
}

#[test]
fn openssl_signs_digests_and_certificate_requests_through_the_pkcs11_engine() {
    require_tool!("openssl");
    require_tool!("pkcs11-tool");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        Path::new("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so").exists()
            || Path::new("/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so").exists(),
        "the pkcs11 engine is not installed: apt-get install libengine-pkcs11-openssl"
    );
    let ec = key_id(d, "ec-256").replace('/', "%2F");
    let rsa = key_id(d, "rsa-2048").replace('/', "%2F");
    let engine = || {
        let mut command = openssl();
        command.env("PKCS11_MODULE_PATH", module_path());
        command
    };
    std::fs::write(d.join("data"), b"signed by openssl").unwrap();
    run(
        d,
        openssl().args(["dgst", "-sha256", "-binary", "-out", "data.sha256", "data"]),
    );
    for (object, name) in [(&ec, "ec"), (&rsa, "rsa")] {
        run(
            d,
            engine()
                .args([
                    "pkey", "-engine", "pkcs11", "-inform", "engine", "-pubout", "-out",
                ])
                .arg(format!("{name}.pem"))
                .arg("-in")
                .arg(format!("pkcs11:object={object};type=public;pin-value=CONFIG")),
        );
    }
    let ec_key = format!("pkcs11:object={ec};type=private;pin-value=CONFIG");
    let rsa_key = format!("pkcs11:id={rsa};type=private;pin-value=CONFIG");

    run(
        d,
        engine().args([
            "pkeyutl",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-sign",
            "-in",
            "data.sha256",
            "-out",
            "ec.sig",
            "-inkey",
            &ec_key,
        ]),
    );
    run(
        d,
        openssl().args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ec.pem",
            "-in",
            "data.sha256",
            "-sigfile",
            "ec.sig",
        ]),
    );
    run(
        d,
        engine().args([
            "dgst",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-sha256",
            "-out",
            "ec.dgst.sig",
            "-sign",
            &ec_key,
            "data",
        ]),
    );
    run(
        d,
        openssl().args([
            "dgst",
            "-sha256",
            "-verify",
            "ec.pem",
            "-signature",
            "ec.dgst.sig",
            "data",
        ]),
    );
    run(
        d,
        engine().args([
            "pkeyutl",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-sign",
            "-in",
            "data.sha256",
            "-out",
            "rsa.sig",
            "-inkey",
            &rsa_key,
            "-pkeyopt",
            "digest:sha256",
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
        ]),
    );
    run(
        d,
        openssl().args([
            "dgst",
            "-sha256",
            "-verify",
            "rsa.pem",
            "-signature",
            "rsa.sig",
            "data",
        ]),
    );
    let pss = [
        "-pkeyopt",
        "digest:sha256",
        "-pkeyopt",
        "rsa_padding_mode:pss",
        "-pkeyopt",
        "rsa_pss_saltlen:-1",
    ];
    run(
        d,
        engine()
            .args([
                "pkeyutl",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-sign",
                "-in",
                "data.sha256",
                "-out",
                "pss.sig",
                "-inkey",
                &rsa_key,
            ])
            .args(pss),
    );
    run(
        d,
        openssl()
            .args([
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "rsa.pem",
                "-in",
                "data.sha256",
                "-sigfile",
                "pss.sig",
            ])
            .args(pss),
    );
    for (key, name) in [(&ec_key, "ec.csr"), (&rsa_key, "rsa.csr")] {
        run(
            d,
            engine().args([
                "req",
                "-new",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-subj",
                "/CN=pkcs11 test",
                "-out",
                name,
                "-key",
                key,
            ]),
        );
        let verified = run(d, openssl().args(["req", "-verify", "-noout", "-in", name]));
        assert!(verified.contains("verify OK"), "{verified}");
    }
}

#[test]
fn keytool_lists_and_jarsigner_signs_through_sunpkcs11() {
    let keytool_path = require_tool!("keytool");
    let jarsigner_path = require_tool!("jarsigner");
    let jar_path = require_tool!("jar");
    require_tool!("pkcs11-tool");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("signpath.cfg");
    std::fs::write(
        &config,
        format!("name=SignPath\nlibrary={}\nslot=1\n", module_path().display()),
    )
    .unwrap();
    let pkcs11_store = |command: &mut Command| {
        command
            .args([
                "-keystore",
                "NONE",
                "-storetype",
                "PKCS11",
                "-providerClass",
                "sun.security.pkcs11.SunPKCS11",
            ])
            .arg("-providerArg")
            .arg(&config)
            .args(["-storepass", "CONFIG"]);
    };
    let ec = key_id(d, "ec-256");
    let rsa = key_id(d, "rsa-2048");

    let mut keytool = Command::new(&keytool_path);
    keytool.arg("-list");
    pkcs11_store(&mut keytool);
    let listing = run(d, &mut keytool);
    assert!(listing.contains(&format!("{ec}, PrivateKeyEntry")), "{listing}");
    assert!(listing.contains(&format!("{rsa}, PrivateKeyEntry")), "{listing}");

    std::fs::write(d.join("hello.txt"), b"hello").unwrap();
    run(d, Command::new(&jar_path).args(["cf", "app.jar", "hello.txt"]));
    std::fs::write(d.join("root.der"), gateway().root_ca_der()).unwrap();
    run(
        d,
        Command::new(&keytool_path).args([
            "-importcert",
            "-noprompt",
            "-keystore",
            "trust.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
            "-alias",
            "root",
            "-file",
            "root.der",
        ]),
    );
    for (alias, sigalg, jar) in [
        (&ec, "SHA256withECDSA", "ec.jar"),
        (&rsa, "SHA256withRSA", "rsa.jar"),
    ] {
        let mut jarsigner = Command::new(&jarsigner_path);
        pkcs11_store(&mut jarsigner);
        run(
            d,
            jarsigner.args(["-sigalg", sigalg, "-signedjar", jar, "app.jar", alias]),
        );
        // -strict with the gateway's root as the only trust anchor: the chain the token served must be complete.
        let verified = run(
            d,
            Command::new(&jarsigner_path).args([
                "-verify",
                "-strict",
                "-keystore",
                "trust.p12",
                "-storepass",
                "changeit",
                jar,
            ]),
        );
        assert!(verified.contains("jar verified."), "{verified}");
    }
}

#[test]
fn scripts_install_registers_the_module_with_p11_kit() {
    let p11_kit = require_tool!("p11-kit");
    let home = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let installed = run(
        home.path(),
        Command::new(root.join("scripts/install"))
            .env("HOME", home.path())
            .args(["--user", "--from"])
            .arg(module_path()),
    );
    let library = home.path().join(".local/lib/signpath/libsignpath_pkcs11.so");
    let module_file = home.path().join(".config/pkcs11/modules/signpath.module");
    assert!(installed.contains("registered"), "{installed}");
    let text = std::fs::read_to_string(&module_file).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("module: {}", library.display())),
        "{text}"
    );

    // p11-kit ignores user configuration for root; ask it as an unprivileged user where we can.
    let setpriv = Path::new("/usr/bin/setpriv");
    // The effective user, from /proc/self/status's "Uid:" line (real, effective, ...).
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let as_user = |program: &Path| {
        let mut command = if is_root && setpriv.exists() {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        command.env("HOME", home.path());
        command
    };
    if is_root && !setpriv.exists() {
        eprintln!("skipping the p11-kit listing: running as root without setpriv");
        return;
    }
    run_readable_by_others(home.path());
    let listing = run(home.path(), as_user(&p11_kit).arg("list-modules"));
    assert!(
        listing.contains(&format!("signpath: {}", library.display())),
        "{listing}"
    );
    assert!(listing.contains("token: SignPath"), "{listing}");

    let removed = run(
        home.path(),
        Command::new(root.join("scripts/install"))
            .env("HOME", home.path())
            .args(["--user", "--uninstall"]),
    );
    assert!(removed.contains("removed"), "{removed}");
    assert!(!module_file.exists() && !library.exists());
}
