//! Bad input: a table of malformed events and manifests, each of which must end as a one-line
//! error or a `skipped` disposition, never a panic; and property tests over the parsers.

use ecr_platform_guard::config::Config;
use ecr_platform_guard::event::{self, Disposition};
use ecr_platform_guard::manifest;
use ecr_platform_guard::platform::Platform;
use ecr_platform_guard::reference::EcrReference;
use proptest::prelude::*;
use serde_json::{json, Value};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn envelope(detail: Value) -> Value {
    json!({"version": "0", "id": "x", "detail-type": "ECR Image Action", "source": "aws.ecr",
           "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
           "resources": [], "detail": detail})
}

fn push(overrides: Value) -> Value {
    let mut detail = json!({"result": "SUCCESS", "repository-name": "web", "image-digest": DIGEST,
                            "action-type": "PUSH", "image-tag": "latest"});
    if let (Some(d), Some(o)) = (detail.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            d.insert(k.clone(), v.clone());
        }
    }
    envelope(detail)
}

fn bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn nested(depth: usize) -> Vec<u8> {
    let mut text = "[".repeat(depth);
    text.push_str(&"]".repeat(depth));
    text.into_bytes()
}

/// What an input must come to.
#[derive(Debug)]
enum Expect {
    /// An error whose one-line message contains this.
    Error(&'static str),
    Skipped,
}

fn event_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let mut no_detail = push(json!({}));
    no_detail.as_object_mut().unwrap().remove("detail");
    let mut no_account = push(json!({}));
    no_account.as_object_mut().unwrap().remove("account");
    let mut unknown_type = push(json!({}));
    unknown_type["detail-type"] = json!("ECR Image Scan");
    let mut wrong_source = push(json!({}));
    wrong_source["source"] = json!("aws.s3");
    let mut numeric_detail_type = push(json!({}));
    numeric_detail_type["detail-type"] = json!(42);
    let mut bad_region = push(json!({}));
    bad_region["region"] = json!("us-east-1/../../x");
    vec![
        ("empty input", b"".to_vec(), Expect::Error("not valid JSON")),
        (
            "truncated JSON",
            br#"{"detail-type": "ECR Image Action", "detail": {"#.to_vec(),
            Expect::Error("not valid JSON"),
        ),
        (
            "not UTF-8",
            vec![0xff, 0xfe, b'{', 0x80, b'}'],
            Expect::Error("not valid JSON"),
        ),
        (
            "a JSON array",
            b"[1, 2, 3]".to_vec(),
            Expect::Error("not an EventBridge envelope"),
        ),
        (
            "a JSON string",
            br#""ECR Image Action""#.to_vec(),
            Expect::Error("not an EventBridge envelope"),
        ),
        (
            "deeply nested JSON",
            nested(100_000),
            Expect::Error("not valid JSON"),
        ),
        (
            "missing detail",
            bytes(no_detail),
            Expect::Error("not an EventBridge envelope"),
        ),
        (
            "detail-type of the wrong type",
            bytes(numeric_detail_type),
            Expect::Error("not an EventBridge envelope"),
        ),
        (
            "detail is a string",
            bytes(envelope(json!("PUSH"))),
            Expect::Error("invalid `detail`"),
        ),
        (
            "action-type is a number",
            bytes(push(json!({"action-type": 7}))),
            Expect::Error("invalid `detail`"),
        ),
        (
            "image-tag is a list",
            bytes(push(json!({"image-tag": ["a"]}))),
            Expect::Error("invalid `detail`"),
        ),
        ("unknown detail-type", bytes(unknown_type), Expect::Skipped),
        ("another source", bytes(wrong_source), Expect::Skipped),
        (
            "missing repository",
            bytes(push(json!({"repository-name": null}))),
            Expect::Error("repository-name"),
        ),
        (
            "repository with path tricks",
            bytes(push(json!({"repository-name": "../../etc/passwd"}))),
            Expect::Error("repository-name"),
        ),
        (
            "repository with uppercase",
            bytes(push(json!({"repository-name": "Web"}))),
            Expect::Error("repository-name"),
        ),
        (
            "repository over 256 characters",
            bytes(push(json!({"repository-name": "a".repeat(257)}))),
            Expect::Error("repository-name"),
        ),
        (
            "invalid digest",
            bytes(push(json!({"image-digest": "sha256:xyz"}))),
            Expect::Error("image-digest"),
        ),
        (
            "digest of another algorithm",
            bytes(push(
                json!({"image-digest": format!("sha512:{}", "a".repeat(128))}),
            )),
            Expect::Error("image-digest"),
        ),
        (
            "tag over the 300-character limit",
            bytes(push(json!({"image-tag": "t".repeat(301)}))),
            Expect::Error("image-tag"),
        ),
        (
            "tag with a newline",
            bytes(push(json!({"image-tag": "v1\nv2"}))),
            Expect::Error("image-tag"),
        ),
        ("missing account", bytes(no_account), Expect::Error("account")),
        (
            "region with path tricks",
            bytes(bad_region),
            Expect::Error("region"),
        ),
        (
            "untagged push without digest",
            bytes(push(json!({"image-tag": "", "image-digest": null}))),
            Expect::Error("image-digest"),
        ),
        (
            "DELETE of an untagged image",
            bytes(push(json!({"action-type": "DELETE", "image-tag": null}))),
            Expect::Skipped,
        ),
    ]
}

#[test]
fn malformed_events_end_as_one_line_errors_or_skips() {
    for (name, input, expected) in event_cases() {
        let outcome = event::parse(&input, &Config::default());
        match (&outcome, &expected) {
            (Err(e), Expect::Error(fragment)) => {
                let message = e.to_string();
                assert!(message.contains(fragment), "{name}: {message}");
                assert!(!message.contains('\n'), "{name}: {message}");
                assert!(message.len() < 400, "{name}: {} characters", message.len());
            }
            (Ok(Disposition::Skip(..)), Expect::Skipped) => {}
            _ => panic!("{name}: expected {expected:?}, got {outcome:?}"),
        }
    }
}

#[test]
fn a_tag_at_the_limit_is_accepted() {
    let event = bytes(push(json!({"image-tag": "t".repeat(300)})));
    assert!(matches!(
        event::parse(&event, &Config::default()),
        Ok(Disposition::Validate(_))
    ));
}

#[test]
fn malformed_manifests_are_one_line_errors() {
    let five_mb = {
        let mut doc = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"x":""#.to_vec();
        doc.extend(std::iter::repeat_n(b'a', 5 * 1024 * 1024));
        doc.extend(br#""}"#);
        doc
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("5 MB manifest", five_mb, "larger than the 4 MiB"),
        ("deeply nested", nested(10_000), "not valid JSON"),
        ("not UTF-8", vec![b'{', 0xc3, 0x28, b'}'], "not valid JSON"),
        (
            "truncated",
            br#"{"schemaVersion": 2, "config": {"#.to_vec(),
            "not valid JSON",
        ),
        (
            "schemaVersion 3",
            br#"{"schemaVersion": 3}"#.to_vec(),
            "schemaVersion 3",
        ),
        (
            "schemaVersion as a string",
            br#"{"schemaVersion": "2"}"#.to_vec(),
            "schemaVersion",
        ),
        (
            "unknown media type",
            br#"{"schemaVersion": 2, "mediaType": "text/html"}"#.to_vec(),
            "unknown manifest media type",
        ),
        (
            "manifests is an object",
            br#"{"schemaVersion": 2, "manifests": {}}"#.to_vec(),
            "`manifests`",
        ),
        (
            "config without digest",
            br#"{"schemaVersion": 2, "config": {"size": 3}}"#.to_vec(),
            "`config`",
        ),
        (
            "neither config nor manifests",
            br#"{"schemaVersion": 2}"#.to_vec(),
            "neither",
        ),
        (
            "schema 1 without architecture",
            br#"{"schemaVersion": 1, "name": "x"}"#.to_vec(),
            "architecture",
        ),
        (
            "mediaType of the wrong type",
            br#"{"schemaVersion": 2, "mediaType": 5}"#.to_vec(),
            "`mediaType`",
        ),
    ];
    for (name, input, fragment) in cases {
        let message = manifest::parse(&input, None).unwrap_err().to_string();
        assert!(message.contains(fragment), "{name}: {message}");
        assert!(!message.contains('\n'), "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = manifest::parse(&input, None);
        let _ = manifest::parse_config(&input);
    }

    #[test]
    fn manifest_parser_never_panics_on_json_shapes(
        schema in prop_oneof![Just(json!(1)), Just(json!(2)), any::<i64>().prop_map(|n| json!(n))],
        media in proptest::option::of("[a-z./+-]{0,40}"),
        arch in "[a-z0-9_]{0,10}",
        variant in proptest::option::of("v?[0-9]{0,2}"),
    ) {
        let doc = json!({"schemaVersion": schema, "mediaType": media,
            "manifests": [{"digest": DIGEST, "platform": {"os": "linux", "architecture": arch, "variant": variant}}]});
        let _ = manifest::parse(&bytes(doc), None);
    }

    #[test]
    fn event_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = event::parse(&input, &Config::default());
    }

    #[test]
    fn event_parser_never_panics_on_envelope_shapes(
        repo in "[a-zA-Z0-9./_-]{0,40}",
        tag in proptest::option::of("[a-zA-Z0-9._-]{0,20}"),
        digest in proptest::option::of("[a-z0-9:]{0,80}"),
        action in "[A-Z]{0,8}",
    ) {
        let event = push(json!({"repository-name": repo, "image-tag": tag, "image-digest": digest, "action-type": action}));
        let _ = event::parse(&bytes(event), &Config::default());
    }

    #[test]
    fn reference_parser_never_panics(text in "\\PC{0,120}") {
        let _ = EcrReference::parse(&text);
    }

    #[test]
    fn ecr_references_round_trip(
        account in "[0-9]{12}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        repo in "[a-z0-9]{1,10}(/[a-z0-9][a-z0-9._-]{0,10}){0,2}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9._-]{0,20}"),
        digest in proptest::option::of("[0-9a-f]{64}"),
    ) {
        let mut text = format!("{account}.dkr.ecr.{region}.amazonaws.com/{repo}");
        if let Some(tag) = &tag { text.push(':'); text.push_str(tag); }
        if let Some(digest) = &digest { text.push_str("@sha256:"); text.push_str(digest); }
        let parsed = EcrReference::parse(&text).expect("a valid reference parses");
        prop_assert_eq!(parsed.to_string(), text);
        prop_assert_eq!(EcrReference::parse(&parsed.to_string()), Some(parsed));
    }

    #[test]
    fn platforms_round_trip(
        os in "[a-z]{1,8}",
        arch in "[a-z0-9_]{1,8}",
        variant in proptest::option::of("v[0-9]"),
        version in proptest::option::of("[0-9]{1,2}\\.[0-9]\\.[0-9]{1,5}"),
    ) {
        let platform = Platform::new(&os, &arch, variant.as_deref()).with_os_version(version.as_deref());
        prop_assert_eq!(Platform::parse(&platform.to_string()), Some(platform.clone()));
        // Normalising is idempotent: a normalised platform is its own normal form.
        prop_assert_eq!(platform.normalized().normalized(), platform.normalized());
        prop_assert!(platform.can_run(&platform));
    }
}
