//! The sample envelopes in events/: what each one means, and that a skip costs no AWS call.

use std::path::PathBuf;
use std::process::Command;

use ecr_platform_guard::config::Config;
use ecr_platform_guard::event::{self, Disposition, SkipReason};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name)
}

fn dispose(name: &str) -> Disposition {
    let bytes = std::fs::read(sample(name)).unwrap();
    event::parse(&bytes, &Config::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn pushes_are_validated() {
    for (name, tag) in [
        ("push-single-platform.json", Some("latest")),
        ("push-buildx-index.json", Some("v2")),
        ("push-untagged-child.json", None),
    ] {
        let Disposition::Validate(push) = dispose(name) else {
            panic!("{name} should be validated")
        };
        assert_eq!(push.image.tag.as_deref(), tag, "{name}");
        assert_eq!(push.image.repository, "shop/web");
        assert!(push.image.digest.is_some());
    }
}

#[test]
fn the_rest_are_skipped_with_their_reason() {
    let cases = [
        (
            "push-marker-tag.json",
            SkipReason::MarkerTag("incompatible-latest".into()),
        ),
        ("delete.json", SkipReason::NotAPush("DELETE".into())),
        ("push-failed.json", SkipReason::FailedPush("FAILURE".into())),
    ];
    for (name, expected) in cases {
        match dispose(name) {
            Disposition::Skip(_, reason) => assert_eq!(reason, expected, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// `check --event PATH --format json` with every AWS endpoint on a closed port and one attempt:
/// any AWS call would fail the command.
fn check_offline(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ecr-platform-guard"))
        .args(["check", "--event", path.to_str().unwrap(), "--format", "json"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap()
}

/// An event skipped by its envelope makes no AWS call: with every endpoint pointing at a closed
/// port, any call would fail the command with exit status 2.
#[test]
fn envelope_skips_need_no_aws() {
    for name in ["push-marker-tag.json", "delete.json", "push-failed.json"] {
        let output = check_offline(&sample(name));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{name}: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["verdict"], "skipped", "{name}");
        assert!(report["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
}

#[test]
fn malformed_event_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        b"{\"detail-type\": \"ECR Image Action\", \"source\": \"aws.ecr\", \"detail\": {\"action-type\": 7}}",
    )
    .unwrap();
    let output = check_offline(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid `detail`"), "{stderr}");
}
