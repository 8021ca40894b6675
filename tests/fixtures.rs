//! Every real manifest in tests/fixtures/manifests (copied from the shared set, see its SOURCES.md)
//! read by the library and by `inspect`, against the platforms SOURCES.md lists.

use std::path::PathBuf;
use std::process::Command;

use ecr_platform_guard::manifest::{self, Manifest};
use ecr_platform_guard::platform::Platform;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

/// (file, kind, platforms as SOURCES.md lists them; os.version in containerd's parentheses).
const EXPECTED: &[(&str, &str, &[&str])] = &[
    (
        "docker-manifest-list-hello-world-dockerhub-11platforms-windows.json",
        "index",
        &[
            "linux/amd64",
            "linux/arm/v5",
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/386",
            "linux/mips64le",
            "linux/ppc64le",
            "linux/riscv64",
            "linux/s390x",
            "windows(10.0.20348.469)/amd64",
            "windows(10.0.17763.2452)/amd64",
        ],
    ),
    (
        "docker-v2s2-manifest-hello-world-linux-amd64.json",
        "manifest",
        &[],
    ),
    (
        "docker-v2s1-signed-quay-biocontainers-fastqc.json",
        "schema1",
        &["linux/amd64"],
    ),
    (
        "oci-index-buildx-attestations-debug-tools-2platforms.json",
        "index",
        &["linux/amd64", "linux/arm64"],
    ),
    (
        "oci-manifest-regclient-testrepo-linux-arm-v7.json",
        "manifest",
        &[],
    ),
    ("oci-artifact-sbom-referrer-regclient.json", "artifact", &[]),
    (
        "oci-index-artifacts-children-without-platform-regclient.json",
        "artifact",
        &[],
    ),
];

/// (manifest, its config, the platform the config declares).
const CHAINS: &[(&str, &str, &str)] = &[
    (
        "docker-v2s2-manifest-hello-world-linux-amd64.json",
        "docker-config-hello-world-linux-amd64.json",
        "linux/amd64",
    ),
    (
        "oci-manifest-regclient-testrepo-linux-arm-v7.json",
        "oci-config-regclient-testrepo-linux-arm-v7.json",
        "linux/arm/v7",
    ),
];

fn platforms_of(parsed: &Manifest) -> Vec<String> {
    match parsed {
        Manifest::Index { platforms, .. } => platforms.iter().map(ToString::to_string).collect(),
        Manifest::Schema1 { platform, .. } => vec![platform.to_string()],
        _ => Vec::new(),
    }
}

#[test]
fn library_reads_every_fixture() {
    for (file, kind, platforms) in EXPECTED {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let parsed = manifest::parse(&bytes, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(parsed.kind(), *kind, "{file}");
        assert_eq!(platforms_of(&parsed), *platforms, "{file}");
    }
}

#[test]
fn configs_declare_the_platform_of_their_manifest() {
    for (manifest_file, config_file, platform) in CHAINS {
        let parsed = manifest::parse(&std::fs::read(fixture(manifest_file)).unwrap(), None).unwrap();
        let Manifest::Image { config, .. } = parsed else {
            panic!("{manifest_file} is not an image manifest")
        };
        let blob = std::fs::read(fixture(config_file)).unwrap();
        let digest = manifest::sha256_digest(&blob);
        assert_eq!(
            digest, config.digest,
            "{config_file} is the config of {manifest_file}"
        );
        assert_eq!(
            manifest::parse_config(&blob).unwrap(),
            Platform::parse(platform).unwrap()
        );
    }
}

#[test]
fn hello_world_list_serves_amd64_and_arm64_hosts_but_not_windows_only() {
    let bytes = std::fs::read(fixture(EXPECTED[0].0)).unwrap();
    let Manifest::Index { platforms, .. } = manifest::parse(&bytes, None).unwrap() else {
        panic!()
    };
    for host in ["linux/amd64", "linux/arm64", "windows(10.0.20348)/amd64"] {
        let host = Platform::parse(host).unwrap();
        assert!(platforms.iter().any(|p| host.can_run(p)), "{host}");
    }
    let graviton = Platform::linux("arm64");
    let arm_v7 = Platform::parse("linux/arm/v7").unwrap();
    assert!(!graviton.can_run(&arm_v7));
}

#[test]
fn invalid_fixture_is_refused() {
    let bytes = std::fs::read(fixture("invalid-unknown-schemaversion.json")).unwrap();
    let err = manifest::parse(&bytes, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown manifest schemaVersion 99999: expected 1 or 2"
    );
}

fn inspect(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ecr-platform-guard"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspect_json_prints_the_listed_platforms() {
    for (file, kind, platforms) in EXPECTED {
        let path = fixture(file);
        let (code, stdout, stderr) = inspect(&[path.to_str().unwrap(), "--format", "json"]);
        assert_eq!(code, 0, "{file}: {stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(doc["kind"], *kind, "{file}");
        assert_eq!(doc["platforms"], serde_json::json!(platforms), "{file}");
    }
    for (manifest_file, config_file, platform) in CHAINS {
        let (m, c) = (fixture(manifest_file), fixture(config_file));
        let (code, stdout, _) = inspect(&[
            m.to_str().unwrap(),
            "--config",
            c.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(code, 0);
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(doc["platforms"], serde_json::json!([platform]), "{manifest_file}");
    }
}

#[test]
fn inspect_refuses_invalid_documents_with_one_line() {
    let invalid = fixture("invalid-unknown-schemaversion.json");
    let config = fixture("docker-config-hello-world-linux-amd64.json");
    let wrong_config_for = fixture("oci-manifest-regclient-testrepo-linux-arm-v7.json");
    for args in [
        vec![invalid.to_str().unwrap()],
        vec![config.to_str().unwrap()],
        vec!["/nonexistent/manifest.json"],
        vec![
            wrong_config_for.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    ] {
        let (code, stdout, stderr) = inspect(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("ecr-platform-guard: error: "), "{stderr}");
    }
}
