//! What the benchmarks run against: the end-to-end tests' real gateway and registry, a notation with our plugin
//! and with local keys of the same specs, cosign with a key file, and the commands each figure times.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_tests::gateway::Gateway;
use e2e_tests::registry::{ImageRef, Registry};
use e2e_tests::tools;

use crate::csign::Outcome;
use crate::load::Target;
use crate::p11kit::P11KitServer;
use crate::procs::Cmd;
use crate::Result;

const PROJECT: &str = "demo";
const SOFTHSM_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

#[derive(Debug)]
pub struct Bench {
    gateway: Gateway,
    _registry: Registry,
    image: ImageRef,
    dir: tempfile::TempDir,
    hsm_pin: String,
    softhsm_module: PathBuf,
    module: PathBuf,
    plugin: PathBuf,
    notation: PathBuf,
    cosign: PathBuf,
}

/// Runs `cmd` to its end; its stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn existing(path: PathBuf, what: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{what} not found at {}; build it first (scripts/bench does)",
            path.display()
        )
        .into())
    }
}

impl Bench {
    pub fn start() -> Result<Self> {
        let notation = tools::find_tool("notation").ok_or("notation not found; run scripts/install-deps")?;
        let cosign = tools::find_tool("cosign").ok_or("cosign not found; run scripts/install-deps")?;
        let module = existing(
            tools::release_artifact("libsignpath_pkcs11.so"),
            "the PKCS#11 module",
        )?;
        let plugin = existing(
            tools::release_artifact("notation-signpath"),
            "the notation plugin",
        )?;
        let softhsm_module = SOFTHSM_MODULES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("libsofthsm2.so not found; install softhsm2")?;
        let gateway = Gateway::start_with(crate::tsa::without_the_query_limit);
        let registry = Registry::start();
        let image = registry.push_small_image("bench/app", "v1");
        let hsm_pin = std::fs::read_to_string(gateway.dir().join("hsm-pin"))?
            .trim()
            .to_owned();
        let dir = tempfile::Builder::new().prefix("signpath-bench-").tempdir()?;
        let bench = Self {
            gateway,
            _registry: registry,
            image,
            dir,
            hsm_pin,
            softhsm_module,
            module,
            plugin,
            notation,
            cosign,
        };
        bench.install_plugin()?;
        bench.local_keys()?;
        Ok(bench)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn gateway_pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// The gateway's directory, which holds its audit database.
    pub fn gateway_dir(&self) -> PathBuf {
        self.gateway.dir()
    }

    /// The gateway's `/metrics`, as text.
    pub fn gateway_metrics(&self) -> Result<String> {
        let url = format!("{}/metrics", self.gateway.api_url());
        Ok(self
            .gateway
            .https_client()
            .get(url)
            .send()?
            .error_for_status()?
            .text()?)
    }

    /// The gateway's client settings (URL, organization, token, TLS CA).
    pub fn gateway_env(&self) -> Vec<(String, String)> {
        self.gateway.env_vars()
    }

    /// What notation and the plugin see: the gateway settings, a notation of its own, the plugin's cache and log.
    fn notation_env(&self) -> Vec<(String, String)> {
        let mut env = self.gateway_env();
        for (k, v) in [
            ("HOME", "home"),
            ("NOTATION_CONFIG", "notation/config"),
            ("NOTATION_LIBEXEC", "notation/libexec"),
            ("NOTATION_CACHE", "notation/cache"),
            ("XDG_CACHE_HOME", "xdg-cache"),
            ("SIGNPATH_LOG_FILE_DIRECTORY", "plugin-logs"),
        ] {
            env.push((k.to_owned(), self.path(v).display().to_string()));
        }
        env
    }

    fn install_plugin(&self) -> Result<()> {
        let dir = self.path("notation/libexec/plugins/signpath");
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&self.plugin, dir.join("notation-signpath"))?;
        std::fs::create_dir_all(self.path("notation/config"))?;
        std::fs::create_dir_all(self.path("home"))?;
        Ok(())
    }

    /// A local root → intermediate → leaf chain per key spec, made with openssl as a user would, and
    /// signingkeys.json naming both the local keys and the plugin's keys.
    fn local_keys(&self) -> Result<()> {
        let pki = self.path("pki");
        std::fs::create_dir_all(&pki)?;
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(&pki).args(args));
        let ext = |name: &str, text: &str| std::fs::write(pki.join(name), text);
        ext(
            "ca.ext",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )?;
        ext("leaf.ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n")?;
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "root.key",
        ])?;
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/C=AT/ST=Vienna/O=Bench/CN=Bench Root",
            "-days",
            "7",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root.pem",
        ])?;
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "int.key",
        ])?;
        openssl(&[
            "req",
            "-new",
            "-key",
            "int.key",
            "-subj",
            "/C=AT/ST=Vienna/O=Bench/CN=Bench Intermediate",
            "-out",
            "int.csr",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "ca.ext",
            "-out",
            "int.pem",
        ])?;
        let mut keys = Vec::new();
        for (policy, keygen) in [
            (
                "ec-256",
                ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
            (
                "rsa-3072",
                ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            ),
        ] {
            let key = format!("{policy}.key");
            openssl(&[&["genpkey"][..], &keygen[..], &["-out", &key]].concat())?;
            openssl(&[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/C=AT/ST=Vienna/O=Bench/CN=Bench {policy}"),
                "-out",
                "leaf.csr",
            ])?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "int.pem",
                "-CAkey",
                "int.key",
                "-CAcreateserial",
                "-days",
                "7",
                "-extfile",
                "leaf.ext",
                "-out",
                &format!("{policy}.pem"),
            ])?;
            let chain = [format!("{policy}.pem"), "int.pem".into(), "root.pem".into()]
                .iter()
                .map(|f| std::fs::read_to_string(pki.join(f)))
                .collect::<std::io::Result<Vec<_>>>()?
                .concat();
            std::fs::write(pki.join(format!("{policy}.chain.pem")), chain)?;
            keys.push(serde_json::json!({
                "name": format!("local-{policy}"),
                "keyPath": pki.join(&key),
                "certPath": pki.join(format!("{policy}.chain.pem")),
            }));
            keys.push(serde_json::json!({
                "name": format!("signpath-{policy}"),
                "id": format!("{PROJECT}/{policy}"),
                "pluginName": "signpath",
            }));
        }
        std::fs::write(
            self.path("notation/config/signingkeys.json"),
            serde_json::to_vec_pretty(&serde_json::json!({ "keys": keys }))?,
        )?;
        Ok(())
    }

    /// `notation sign --key NAME` of the benchmark image (each run adds one signature to it).
    pub fn notation_sign(&self, key: &str) -> Cmd {
        Cmd::new(
            &self.notation,
            &[
                "sign",
                "--key",
                key,
                "--signature-format",
                "jws",
                &self.image.reference,
            ],
            &self.notation_env(),
        )
    }

    fn cosign_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("HOME".to_owned(), self.path("home").display().to_string()),
            // cosign must not reach out to the public Sigstore services; nothing listens on port 9.
            ("HTTPS_PROXY".to_owned(), "http://127.0.0.1:9".to_owned()),
            ("HTTP_PROXY".to_owned(), "http://127.0.0.1:9".to_owned()),
            ("NO_PROXY".to_owned(), "localhost,127.0.0.1".to_owned()),
        ];
        env.extend(self.gateway_env());
        env
    }

    fn cosign_sign(&self, key: &str, extra_env: &[(&str, &str)]) -> Cmd {
        self.cosign_sign_with(&self.cosign, key, extra_env)
    }

    fn cosign_sign_with(&self, cosign: &Path, key: &str, extra_env: &[(&str, &str)]) -> Cmd {
        let mut env = self.cosign_env();
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Cmd::new(
            cosign,
            &[
                "sign",
                "--yes",
                "--tlog-upload=false",
                "--allow-http-registry",
                "--key",
                key,
                &self.image.reference,
            ],
            &env,
        )
        .in_dir(self.path("home"))
    }

    /// cosign through our module; the module takes the gateway credentials from the environment (PIN `CONFIG`).
    pub fn cosign_sign_module(&self) -> Cmd {
        let uri = format!(
            "pkcs11:token=SignPath;object={PROJECT}%2Fec-256?module-path={}&pin-value=CONFIG",
            self.module.display()
        );
        self.cosign_sign(&uri, &[])
    }

    /// cosign as released (`cosign-release`: no cgo, no build tags) through the KMS plugin, `--key
    /// signpath://demo/ec-256`; cosign finds the plugin first on its PATH.
    pub fn cosign_sign_kms_plugin(&self) -> Result<Cmd> {
        let cosign =
            tools::find_tool("cosign-release").ok_or("cosign-release not found; run scripts/install-deps")?;
        let plugin = existing(
            tools::release_artifact("sigstore-kms-signpath"),
            "the cosign KMS plugin",
        )?;
        let bin = self.path("kms-plugin-bin");
        if !bin.exists() {
            std::fs::create_dir(&bin)?;
            std::os::unix::fs::symlink(plugin, bin.join("sigstore-kms-signpath"))?;
        }
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
        Ok(self.cosign_sign_with(
            &cosign,
            &format!("signpath://{PROJECT}/ec-256"),
            &[("PATH", &path)],
        ))
    }

    /// cosign with an EC-256 key file (`cosign generate-key-pair`, empty password).
    pub fn cosign_sign_key_file(&self) -> Result<Cmd> {
        let key = self.path("home/cosign.key");
        if !key.exists() {
            run(Command::new(&self.cosign)
                .current_dir(self.path("home"))
                .env("COSIGN_PASSWORD", "")
                .arg("generate-key-pair"))?;
        }
        Ok(self.cosign_sign(&key.display().to_string(), &[("COSIGN_PASSWORD", "")]))
    }

    /// cosign through SoftHSM2 itself, on the gateway's token and key; the PIN from cosign's variable.
    pub fn cosign_sign_softhsm(&self) -> Cmd {
        let uri = format!(
            "pkcs11:token=signpath-gateway;object=ec-256?module-path={}",
            self.softhsm_module.display()
        );
        let conf = self.gateway.dir().join("softhsm2.conf").display().to_string();
        self.cosign_sign(
            &uri,
            &[("COSIGN_PKCS11_PIN", &self.hsm_pin), ("SOFTHSM2_CONF", &conf)],
        )
    }

    /// Runs `signpath-bench csign` in a process of its own with exactly `env`.
    fn csign(&self, args: &crate::csign::Args, env: &[(String, String)]) -> Result<Outcome> {
        let out = run(Command::new(std::env::current_exe()?)
            .env_clear()
            .envs(env.iter().cloned())
            .args([
                "csign",
                "--module",
                &args.module,
                "--token",
                &args.token,
                "--key",
                &args.key,
            ])
            .args(["--kind", &args.kind, "--pin-env", &args.pin_env])
            .args([
                "--threads",
                &args.threads.to_string(),
                "--seconds",
                &args.seconds.to_string(),
            ]))?;
        let o = Outcome::parse(out.lines().last().unwrap_or_default())?;
        if o.errors > 0 {
            return Err(format!("C_Sign through {} failed {} times", args.module, o.errors).into());
        }
        Ok(o)
    }

    fn csign_args(
        module: &Path,
        token: &str,
        key: String,
        kind: &str,
        threads: usize,
        seconds: f64,
    ) -> crate::csign::Args {
        crate::csign::Args {
            module: module.display().to_string(),
            token: token.to_owned(),
            key,
            kind: kind.to_owned(),
            threads,
            seconds,
            pin_env: "BENCH_PKCS11_PIN".to_owned(),
        }
    }

    /// C_Sign through our module (→ gateway → SoftHSM2).
    pub fn csign_module(&self, kind: &str, policy: &str, threads: usize, seconds: f64) -> Result<Outcome> {
        self.csign_module_file(&self.module, kind, policy, threads, seconds)
    }

    /// C_Sign through the module at `module` (another build of ours, for an A/B) → gateway → SoftHSM2.
    pub fn csign_module_file(
        &self,
        module: &Path,
        kind: &str,
        policy: &str,
        threads: usize,
        seconds: f64,
    ) -> Result<Outcome> {
        let mut env = self.gateway_env();
        env.push(("BENCH_PKCS11_PIN".into(), "CONFIG".into()));
        env.push((
            "SIGNPATH_LOG_FILE_DIRECTORY".into(),
            self.path("module-logs").display().to_string(),
        ));
        let key = format!("{PROJECT}/{policy}");
        self.csign(
            &Self::csign_args(module, "SignPath", key, kind, threads, seconds),
            &env,
        )
    }

    /// C_Sign on SoftHSM2 itself, the gateway's token and key.
    pub fn csign_softhsm(&self, kind: &str, policy: &str, threads: usize, seconds: f64) -> Result<Outcome> {
        let env = vec![
            ("BENCH_PKCS11_PIN".into(), self.hsm_pin.clone()),
            (
                "SOFTHSM2_CONF".into(),
                self.gateway.dir().join("softhsm2.conf").display().to_string(),
            ),
        ];
        let args = Self::csign_args(
            &self.softhsm_module,
            "signpath-gateway",
            policy.to_owned(),
            kind,
            threads,
            seconds,
        );
        self.csign(&args, &env)
    }

    /// A `p11-kit server` exporting the gateway's SoftHSM2 token on a unix socket in the bench directory.
    pub fn p11kit_server(&self) -> Result<P11KitServer> {
        let conf = self.gateway.dir().join("softhsm2.conf");
        P11KitServer::start(&self.softhsm_module, &conf, "signpath-gateway", self.dir.path())
    }

    /// C_Sign through p11-kit's remoting: p11-kit-client.so → unix socket → `p11-kit server` → SoftHSM2, the
    /// gateway's token and key.
    pub fn csign_p11kit(
        &self,
        server: &P11KitServer,
        kind: &str,
        policy: &str,
        threads: usize,
        seconds: f64,
    ) -> Result<Outcome> {
        let env = vec![
            ("BENCH_PKCS11_PIN".into(), self.hsm_pin.clone()),
            server.client_env(),
        ];
        let args = Self::csign_args(
            server.client_module(),
            "signpath-gateway",
            policy.to_owned(),
            kind,
            threads,
            seconds,
        );
        self.csign(&args, &env)
    }

    pub fn load_target(&self, policy: &str) -> Result<Target> {
        Ok(Target {
            api_url: self.gateway.api_url().to_owned(),
            organization_id: self.gateway.organization_id().to_owned(),
            api_token: self.gateway.api_token().to_owned(),
            tls_ca_pem: std::fs::read(self.gateway.tls_ca())?,
            project: PROJECT.to_owned(),
            policy: policy.to_owned(),
            operation: crate::load::Operation::SignHash,
        })
    }

    /// The plugin's three commands as notation runs them, the key description already cached.
    pub fn plugin_commands(&self) -> Result<Vec<(&'static str, Cmd)>> {
        use base64::Engine as _;
        let env = self.notation_env();
        let key_id = format!("{PROJECT}/ec-256");
        let metadata = Cmd::new(&self.plugin, &["get-plugin-metadata"], &env);
        let describe = Cmd::new(&self.plugin, &["describe-key"], &env)
            .stdin(serde_json::json!({"contractVersion": "1.0", "keyId": key_id}).to_string());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(r#"{"alg":"ES256","cty":"application/vnd.cncf.notary.payload.v1+json"}"#),
            b64.encode(format!(
                r#"{{"targetArtifact":{{"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":528}}}}"#,
                self.image.digest
            ))
        );
        let generate = Cmd::new(&self.plugin, &["generate-signature"], &env).stdin(
            serde_json::json!({
                "contractVersion": "1.0",
                "keyId": key_id,
                "keySpec": "EC-256",
                "hashAlgorithm": "SHA-256",
                "payload": base64::engine::general_purpose::STANDARD.encode(signing_input),
            })
            .to_string(),
        );
        describe.wall_ms()?; // fills the key cache
        Ok(vec![
            ("get-plugin-metadata", metadata),
            ("describe-key (cached)", describe),
            ("generate-signature EC-256", generate),
        ])
    }

    fn gateway_calls(&self) -> usize {
        self.gateway
            .audit_json()
            .iter()
            .filter(|r| {
                let route = r["route"].as_str().unwrap_or_default().to_ascii_lowercase();
                route.contains("signhash") || route.contains("mysigningpolicies")
            })
            .count()
    }

    /// Gateway requests per `notation sign`: over `n` signs with the plugin's key cache warm, and for one sign with
    /// an empty cache.
    pub fn round_trips_per_notation_sign(&self, n: usize) -> Result<(f64, f64)> {
        let sign = self.notation_sign("signpath-ec-256");
        sign.wall_ms()?;
        let before = self.gateway_calls();
        for _ in 0..n {
            sign.wall_ms()?;
        }
        let warm = (self.gateway_calls() - before) as f64 / n as f64;
        std::fs::remove_dir_all(self.path("xdg-cache")).ok();
        let before = self.gateway_calls();
        sign.wall_ms()?;
        let cold = (self.gateway_calls() - before) as f64;
        Ok((warm, cold))
    }
}
