//! The registry fixture itself: the image it pushes is served back byte for byte under the right digest, the OCI
//! layout it writes is one notation can read, and two registries started at once do not collide.

use std::fs;
use std::process::Command;

use e2e_tests::registry::{self, sha256_digest, Registry, SmallImage, OCI_MANIFEST};
use e2e_tests::require_tool;
use serde_json::Value;

#[test]
fn pushed_image_is_served_with_its_digest() {
    require_tool!("docker-registry");
    let registry = Registry::start();
    let image = registry.push_small_image("demo/hello", "v1");

    let expected = SmallImage::default();
    assert_eq!(image.digest, expected.digest());
    assert_eq!(
        image.reference,
        format!("localhost:{}/demo/hello@{}", registry.port(), image.digest)
    );
    assert_eq!(
        image.tagged(),
        format!("localhost:{}/demo/hello:v1", registry.port())
    );

    for reference in [image.digest.as_str(), "v1"] {
        let manifest = registry
            .manifest("demo/hello", reference)
            .unwrap_or_else(|| panic!("manifest {reference} not served"));
        assert_eq!(manifest.media_type, OCI_MANIFEST);
        assert_eq!(manifest.digest, image.digest);
        assert_eq!(sha256_digest(&manifest.body), image.digest);
        assert_eq!(manifest.body, expected.manifest);
    }

    let manifest: Value = serde_json::from_slice(&expected.manifest).expect("manifest JSON");
    for descriptor in [&manifest["config"], &manifest["layers"][0]] {
        let digest = descriptor["digest"].as_str().expect("descriptor digest");
        let blob = registry.blob("demo/hello", digest).expect("blob served");
        assert_eq!(sha256_digest(&blob), digest);
    }

    assert_eq!(registry.tags("demo/hello"), ["v1"]);
    assert!(registry.tags_for_digest("demo/hello", &image.digest).is_empty());
    assert!(registry.referrers_by_tag("demo/hello", &image.digest).is_empty());
    assert!(registry.tags("demo/absent").is_empty());
    assert!(!registry.manifest_exists("demo/hello", &SmallImage::with_content(b"x").digest()));
    assert!(registry.blob("demo/hello", &sha256_digest(b"absent")).is_none());
}

#[test]
fn tags_for_digest_finds_tag_schema_signatures() {
    require_tool!("docker-registry");
    let registry = Registry::start();
    let image = registry.push_small_image("demo/sig", "v1");
    // Stand-ins for what cosign and notation push on a registry without the Referrers API.
    let hex_tag = image.digest.replace(':', "-");
    let other = SmallImage::with_content(b"signature stand-in");
    registry.push_image("demo/sig", &format!("{hex_tag}.sig"), &other);
    registry.push_image("demo/sig", "unrelated", &other);

    assert_eq!(
        registry.tags_for_digest("demo/sig", &image.digest),
        [format!("{hex_tag}.sig")]
    );
}

#[test]
fn oci_layout_has_the_image_under_its_tag() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let layout = dir.path().join("layout");
    let digest = registry::write_oci_layout(&layout, "v1");
    assert_eq!(digest, SmallImage::default().digest());

    let oci_layout: Value =
        serde_json::from_slice(&fs::read(layout.join("oci-layout")).expect("oci-layout")).expect("JSON");
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");

    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index.json")).expect("JSON");
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().expect("manifests array");
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], digest.as_str());
    assert_eq!(manifests[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );

    let manifest_bytes = fs::read(registry::blob_path(&layout, &digest)).expect("manifest blob");
    assert_eq!(sha256_digest(&manifest_bytes), digest);
    assert_eq!(manifests[0]["size"], manifest_bytes.len());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest JSON");
    for descriptor in [&manifest["config"], &manifest["layers"][0]] {
        let digest = descriptor["digest"].as_str().expect("descriptor digest");
        let blob = fs::read(registry::blob_path(&layout, digest)).expect("blob in the layout");
        assert_eq!(sha256_digest(&blob), digest);
        assert_eq!(descriptor["size"], blob.len());
    }
}

#[test]
fn registries_started_together_get_their_own_ports() {
    require_tool!("docker-registry");
    let registries: Vec<Registry> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(Registry::start)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("registry start"))
            .collect()
    });
    let mut ports: Vec<u16> = registries.iter().map(Registry::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), registries.len());
    for (i, registry) in registries.iter().enumerate() {
        let image = registry.push_small_image("demo/parallel", &format!("r{i}"));
        assert!(registry.manifest_exists("demo/parallel", &image.digest));
    }
}

/// notation reaches the registry as `localhost:PORT` over plain HTTP and reads the layout, so the fixture's
/// references are usable as they are.
#[test]
fn notation_lists_no_signatures_for_a_fresh_image() {
    require_tool!("docker-registry");
    let notation = require_tool!("notation");
    let registry = Registry::start();
    let image = registry.push_small_image("demo/notation", "v1");
    let home = tempfile::tempdir().expect("temporary directory");

    let output = Command::new(&notation)
        .args(["list", &image.reference])
        .env("NOTATION_CONFIG", home.path().join("config"))
        .env("NOTATION_CACHE", home.path().join("cache"))
        .output()
        .expect("run notation list");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "notation list failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        registry.log()
    );
    assert!(stdout.contains("has no associated signature"), "stdout: {stdout}");

    let layout = home.path().join("layout");
    let digest = registry::write_oci_layout(&layout, "v1");
    let output = Command::new(&notation)
        .args(["list", "--oci-layout", &format!("{}@{digest}", layout.display())])
        .env("NOTATION_EXPERIMENTAL", "1")
        .env("NOTATION_CONFIG", home.path().join("config"))
        .env("NOTATION_CACHE", home.path().join("cache"))
        .output()
        .expect("run notation list --oci-layout");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "notation list --oci-layout failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("has no associated signature"), "stdout: {stdout}");
}
