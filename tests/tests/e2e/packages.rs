//! The four Debian packages on this machine, as an operator and a user get them: `scripts/package --deb` builds
//! them, `apt-get install ./….deb` installs them, `signpath-gateway-setup` sets the gateway up in
//! /etc/signpath-gateway and /var/lib/signpath-gateway, the gateway serves as its packaged system user (directly,
//! with the unit's command line: CI runs no systemd), notation signs through the installed plugin, p11-kit finds the
//! installed module, cosign signs through it, cosign as released signs through the installed KMS plugin, and
//! `apt-get purge` removes every file, directory and the user.
//!
//! It changes the machine, so it needs root and is one test function (the steps share the installed state). A
//! guard stops the gateway and purges the packages when the test ends, passed or failed, and the test starts by
//! purging what an interrupted earlier run may have left.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use e2e_tests::notation::Notation;
use e2e_tests::registry::Registry;
use e2e_tests::{require_tool, tools};

const PACKAGES: [&str; 4] = [
    "notation-signpath",
    "sigstore-kms-signpath",
    "signpath-pkcs11",
    "signpath-gateway",
];
const KMS_PLUGIN: &str = "/usr/bin/sigstore-kms-signpath";
const USER: &str = "signpath-gateway";
const CONFIG_DIR: &str = "/etc/signpath-gateway";
const STATE_DIR: &str = "/var/lib/signpath-gateway";
const PLUGIN_DIR: &str = "/usr/lib/notation";
const P11_KIT_MODULE: &str = "/usr/share/p11-kit/modules/signpath.module";
const UNIT: &str = "/usr/lib/systemd/system/signpath-gateway.service";

/// Purges the packages and stops the gateway when dropped, so a failed assertion leaves the machine as it was.
struct Installed {
    gateway: Option<Child>,
}

impl Installed {
    fn new() -> Self {
        purge_installed();
        Installed { gateway: None }
    }

    fn stop_gateway(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.stop_gateway();
        purge_installed();
    }
}

/// `apt-get purge` of whichever of our packages dpkg knows (installed or only configured files left).
fn purge_installed() {
    let known: Vec<&str> = PACKAGES
        .into_iter()
        .filter(|p| {
            Command::new("dpkg-query")
                .args(["-W", "-f=${db:Status-Abbrev}", p])
                .output()
                .map(|o| o.status.success() && !o.stdout.starts_with(b"un"))
                .unwrap_or(false)
        })
        .collect();
    if known.is_empty() {
        return;
    }
    let output = apt().args(["purge", "-y", "-q"]).args(&known).output();
    if let Ok(output) = output {
        if !output.status.success() {
            eprintln!("apt-get purge failed:\n{}", tools::output_text(&output));
        }
    }
}

fn apt() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Runs a command that must succeed; its stdout and stderr.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = tools::output_text(&output);
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn mode(path: &str) -> (u32, String, String) {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |flag: &str, id: u32| {
        let out = run(Command::new("getent").args([flag, &id.to_string()]));
        out.split(':').next().unwrap_or_default().to_owned()
    };
    (
        metadata.permissions().mode() & 0o7777,
        name("passwd", metadata.uid()),
        name("group", metadata.gid()),
    )
}

/// The client settings `init` wrote to STATE_DIR/env (`export NAME='value'` lines).
fn client_settings() -> Vec<(String, String)> {
    std::fs::read_to_string(Path::new(STATE_DIR).join("env"))
        .expect("the setup's env file")
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

/// Builds the four .deb files from the release build into `dir`.
fn build_packages(dir: &Path) -> Vec<PathBuf> {
    run(Command::new(tools::workspace_root().join("scripts/package"))
        .args(["--deb", "--no-build"])
        .env(
            "NOTATION_SIGNPATH_BIN",
            tools::release_artifact("notation-signpath"),
        )
        .env(
            "SIGNPATH_KMS_PLUGIN_BIN",
            tools::release_artifact("sigstore-kms-signpath"),
        )
        .env("NOTATION_SIGNPATH_PACKAGE_DIR", dir)
        .env("PATH", path_with_tools()));
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("package directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    assert_eq!(debs.len(), PACKAGES.len(), "{debs:?}");
    debs
}

/// PATH with the tools directory first (cargo-deb, cosign, notation).
fn path_with_tools() -> String {
    format!(
        "{}:{}",
        tools::tools_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Starts the gateway as the packaged user with the unit's command line; waits for its "listening" line.
fn serve_as_packaged_user(log: &Path) -> Child {
    let stderr = std::fs::File::create(log).expect("create the gateway's log");
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
            "/usr/bin/signpath-gateway",
            "serve",
            "--config",
            &format!("{CONFIG_DIR}/gateway.toml"),
        ])
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the installed gateway");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    if !line.starts_with("signpath-gateway listening on https://") {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the installed gateway did not start ({line}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    child
}

#[test]
fn the_debian_packages_install_sign_and_purge_cleanly() {
    if !is_root() {
        assert!(!tools::in_ci(), "CI=true: the package test needs root");
        eprintln!("SKIPPED: installing Debian packages needs root");
        return;
    }
    require_tool!("cargo-deb");
    let notation_bin = require_tool!("notation");
    let cosign = require_tool!("cosign");
    let cosign_release = require_tool!("cosign-release");
    require_tool!("docker-registry");
    require_tool!("p11-kit");
    let out = tempfile::Builder::new()
        .prefix("signpath-debs-")
        .tempdir()
        .expect("temporary directory");
    let debs = build_packages(out.path());

    let mut installed = Installed::new();
    run(apt()
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&debs));
    for package in PACKAGES {
        let status = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
        assert_eq!(status, "install ok installed", "{package}");
    }

    // What the packages put where, with which modes.
    assert_eq!(mode(CONFIG_DIR), (0o750, "root".into(), USER.into()));
    assert_eq!(mode(STATE_DIR), (0o700, USER.into(), USER.into()));
    assert_eq!(mode("/usr/bin/signpath-gateway").0, 0o755);
    let unit = std::fs::read_to_string(UNIT).expect("the systemd unit");
    assert!(unit.contains(&format!("\nUser={USER}\n")), "{unit}");
    assert!(
        unit.contains(
            "\nExecStart=/usr/bin/signpath-gateway serve --config /etc/signpath-gateway/gateway.toml\n"
        ),
        "{unit}"
    );
    let plugin = format!("{PLUGIN_DIR}/plugins/signpath/notation-signpath");
    assert_eq!(mode(&plugin).0, 0o755);
    assert_eq!(mode(KMS_PLUGIN).0, 0o755);
    let module_file = run(Command::new("dpkg-query").args(["-L", "signpath-pkcs11"]));
    let module = module_file
        .lines()
        .find(|l| l.ends_with("/pkcs11/libsignpath_pkcs11.so"))
        .unwrap_or_else(|| panic!("no module in signpath-pkcs11:\n{module_file}"))
        .to_owned();
    assert!(Path::new(P11_KIT_MODULE).is_file());

    // The operator's setup: init as the packaged user, the configuration moved to /etc with absolute paths.
    let port = e2e_tests::gateway::free_port().to_string();
    run(Command::new("/usr/sbin/signpath-gateway-setup").args(["--port", &port]));
    let config = format!("{CONFIG_DIR}/gateway.toml");
    assert_eq!(mode(&config), (0o640, "root".into(), USER.into()));
    assert_eq!(mode(&format!("{STATE_DIR}/hsm-pin")).1, USER);
    let config_text = std::fs::read_to_string(&config).expect("gateway.toml");
    // Every path is absolute; HSM key labels (`key_label = "ca/root"`) are names, not paths.
    let paths: String = config_text
        .lines()
        .filter(|line| !line.starts_with("key_label"))
        .collect::<Vec<_>>()
        .join("\n");
    for relative in [
        "\"audit.db\"",
        "\"hsm-pin\"",
        "\"pki/",
        "\"ca/",
        "\"tls/",
        "\"tsa/",
        "\"artifacts\"",
    ] {
        assert!(
            !paths.contains(relative),
            "{relative} left relative:\n{config_text}"
        );
    }
    assert!(!Path::new(STATE_DIR).join("gateway.toml").exists());
    installed.gateway = Some(serve_as_packaged_user(&out.path().join("gateway.log")));
    let settings = client_settings();
    let root = PathBuf::from(STATE_DIR).join("ca/root.pem");

    // p11-kit finds the installed module from its module file alone, and the token through it.
    let listing = run(Command::new("p11-kit").arg("list-modules").envs(settings.clone()));
    // The module file names the library without a directory; p11-kit takes it from its module directory.
    assert!(listing.contains("signpath: libsignpath_pkcs11.so\n"), "{listing}");
    assert!(listing.contains("token: SignPath"), "{listing}");

    // notation signs through the installed plugin and verifies against the setup's root.
    let registry = Registry::start();
    let image = registry.push_small_image("packaged/app", "v1");
    let notation = Notation::with_libexec(&notation_bin, settings.clone(), Some(Path::new(PLUGIN_DIR)));
    notation.trust(&root);
    notation.ok(&[
        "sign",
        "--plugin",
        "signpath",
        "--id",
        "demo/ec-256",
        &image.reference,
    ]);
    let verified = notation.ok(&["verify", &image.reference]);
    assert!(
        verified.contains(&format!(
            "Successfully verified signature for {}",
            image.reference
        )),
        "{verified}"
    );

    // cosign signs a file through the installed module; verify-blob accepts it with the exported key.
    let work = tempfile::tempdir().expect("temporary directory");
    let file = work.path().join("artifact.txt");
    std::fs::write(&file, b"signed through the packaged module").expect("write the file");
    let key = format!("pkcs11:token=SignPath;object=demo%2Fec-256?module-path={module}&pin-value=CONFIG");
    let cosign_command = || {
        let mut command = Command::new(&cosign);
        command
            .current_dir(work.path())
            .env("HOME", work.path())
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .envs(settings.clone());
        command
    };
    run(cosign_command().args([
        "sign-blob",
        "--yes",
        "--tlog-upload=false",
        "--key",
        &key,
        "--output-signature",
        "artifact.sig",
        "artifact.txt",
    ]));
    let public_key = run(cosign_command().args(["public-key", "--key", &key]));
    std::fs::write(work.path().join("cosign.pub"), public_key).expect("write the key");
    let verified = run(cosign_command().args([
        "verify-blob",
        "--insecure-ignore-tlog=true",
        "--key",
        "cosign.pub",
        "--signature",
        "artifact.sig",
        "artifact.txt",
    ]));
    assert!(verified.contains("Verified OK"), "{verified}");

    // cosign as released signs through the installed KMS plugin, found on PATH in /usr/bin; the key the module
    // exported verifies it: one policy, one key, whichever route signed.
    let signed = run(Command::new(&cosign_release)
        .args([
            "sign-blob",
            "--yes",
            "--tlog-upload=false",
            "--key",
            "signpath://demo/ec-256",
            "--output-signature",
            "plugin.sig",
            "artifact.txt",
        ])
        .current_dir(work.path())
        .env("HOME", work.path())
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("PATH", "/usr/bin:/bin")
        .envs(settings.clone()));
    assert!(!signed.contains("unimplemented"), "{signed}");
    let verified = run(cosign_command().args([
        "verify-blob",
        "--insecure-ignore-tlog=true",
        "--key",
        "cosign.pub",
        "--signature",
        "plugin.sig",
        "artifact.txt",
    ]));
    assert!(verified.contains("Verified OK"), "{verified}");

    // Purge leaves nothing: files, directories, the p11-kit registration, the user and its group.
    installed.stop_gateway();
    run(apt().args(["purge", "-y", "-q"]).args(PACKAGES));
    for path in [
        "/usr/bin/signpath-gateway",
        "/usr/sbin/signpath-gateway-setup",
        UNIT,
        CONFIG_DIR,
        STATE_DIR,
        PLUGIN_DIR,
        P11_KIT_MODULE,
        KMS_PLUGIN,
        module.as_str(),
    ] {
        assert!(!Path::new(path).exists(), "{path} is left after purge");
    }
    for database in ["passwd", "group"] {
        let found = Command::new("getent")
            .args([database, USER])
            .output()
            .expect("getent");
        assert!(!found.status.success(), "{USER} is left in {database}");
    }
    for package in PACKAGES {
        let known = Command::new("dpkg-query")
            .args(["-W", "-f=${db:Status-Abbrev}", package])
            .output()
            .expect("dpkg-query");
        assert!(
            !known.status.success() || known.stdout.starts_with(b"un"),
            "{package} is still known to dpkg"
        );
    }
}
