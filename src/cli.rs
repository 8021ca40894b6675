//! The command line: `check` (the Lambda's job on one event, or on an image already in ECR) and
//! `inspect` (offline: the platforms a manifest declares).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::manifest::{self, Manifest};
use crate::platform::Platform;
use crate::reference::{is_repository_name, is_tag, ImageId};
use crate::validate::Validator;
use crate::verdict::{Report, Verdict};

#[derive(Debug, Parser)]
#[command(
    name = "ecr-platform-guard",
    version,
    about = "Catches images pushed to Amazon ECR for a CPU architecture their consumers cannot run"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a push event, or an image already in ECR, against every service that runs it.
    Check(CheckArgs),
    /// Print the platforms a manifest, index or schema 1 manifest declares (no AWS access).
    Inspect(InspectArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// An EventBridge `ECR Image Action` envelope, as in events/.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repository", "tag", "registry_id"], required_unless_present = "repository")]
    pub event: Option<PathBuf>,
    /// Repository of an image already in ECR (what a pipeline runs after `docker push`).
    #[arg(long, requires = "tag")]
    pub repository: Option<String>,
    #[arg(long, requires = "repository")]
    pub tag: Option<String>,
    /// Account that owns the repository; default: the caller's.
    #[arg(long, requires = "repository")]
    pub registry_id: Option<String>,
    /// Read everything, act on nothing: no tag, no alert.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A manifest, manifest list, OCI index or schema 1 manifest.
    pub manifest: PathBuf,
    /// The image config blob, for a single-platform manifest (its platform lives there).
    #[arg(long, value_name = "CONFIG_FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Exit statuses of the contract: 0 nothing incompatible, 1 incompatible, 2 bad input or failure.
pub fn exit_code(verdict: Verdict) -> ExitCode {
    match verdict {
        Verdict::Incompatible => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Prints `error` as the one line the contract promises and returns exit status 2.
pub fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    let line = error.to_string().replace(['\n', '\r'], " ");
    eprintln!("ecr-platform-guard: error: {line}");
    ExitCode::from(2)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let limit = manifest::MAX_MANIFEST_BYTES as u64 + 1;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

/// `inspect`: pure, no AWS.
pub fn inspect(args: &InspectArgs) -> ExitCode {
    match inspect_output(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn inspect_output(args: &InspectArgs) -> Result<String, String> {
    let bytes = read_file(&args.manifest)?;
    let parsed = manifest::parse(&bytes, None).map_err(|e| format!("{}: {e}", args.manifest.display()))?;
    let mut platforms: Vec<Platform> = Vec::new();
    let mut note = None;
    match &parsed {
        Manifest::Index { platforms: p, .. } => platforms = p.clone(),
        Manifest::Schema1 { platform, .. } => platforms.push(platform.clone()),
        Manifest::Artifact { artifact_type, .. } => note = Some(format!("not an image: {artifact_type}")),
        Manifest::Image { config, .. } => match &args.config {
            Some(path) => {
                let blob = read_file(path)?;
                let actual = manifest::sha256_digest(&blob);
                if actual != config.digest {
                    return Err(format!(
                        "{} is not this manifest's config: its digest is {actual}, the manifest names {}",
                        path.display(),
                        config.digest
                    ));
                }
                platforms
                    .push(manifest::parse_config(&blob).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            None => {
                note = Some(format!(
                    "the platform is in config blob {}; pass it with --config",
                    config.digest
                ))
            }
        },
    }
    Ok(match args.format {
        Format::Json => {
            let mut doc =
                json!({"kind": parsed.kind(), "media_type": parsed.media_type(), "platforms": platforms});
            if let Some(note) = note {
                doc["note"] = json!(note);
            }
            format!("{doc}\n")
        }
        Format::Text => {
            let mut out = format!("{} ({})\n", parsed.kind(), parsed.media_type());
            for p in &platforms {
                let _ = writeln!(out, "  {p}");
            }
            if let Some(note) = note {
                let _ = writeln!(out, "  {note}");
            }
            out
        }
    })
}

/// `check`: the Lambda's job, run once from a shell or a pipeline.
pub async fn check(args: &CheckArgs, validator: &Validator, region: &str) -> ExitCode {
    let result = if let Some(path) = &args.event {
        match read_file(path).and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: event is not valid JSON: {e}", path.display()))
        }) {
            Ok(event) => validator.handle_event(event, args.dry_run).await,
            Err(e) => return fail(&e),
        }
    } else {
        let repository = args.repository.clone().unwrap_or_default();
        let tag = args.tag.clone().unwrap_or_default();
        if !is_repository_name(&repository) {
            return fail(&format!(
                "--repository {repository:?} is not a valid ECR repository name"
            ));
        }
        if !is_tag(&tag) {
            return fail(&format!("--tag {tag:?} is not a valid image tag"));
        }
        let image = ImageId {
            registry_id: args.registry_id.clone().unwrap_or_default(),
            region: region.to_string(),
            repository,
            tag: Some(tag),
            digest: None,
        };
        validator.check_image(image, args.dry_run).await
    };
    match result {
        Ok(report) => {
            match args.format {
                Format::Json => match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => return fail(&e),
                },
                Format::Text => print!("{}", render_text(&report)),
            }
            exit_code(report.verdict)
        }
        Err(e) => fail(&e),
    }
}

/// What a person reads in a CI log: one line per consumer, then the verdict.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.consumers {
        let cluster = c
            .cluster
            .as_deref()
            .map(|c| format!(" (cluster {c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<12} {} {}{cluster} [{}]: {}",
            c.verdict.to_string().to_ascii_uppercase(),
            serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            c.name,
            c.relation,
            c.reason
        );
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let image = report.image.as_ref().map(|i| {
        let names: Vec<String> = i.platforms.iter().map(ToString::to_string).collect();
        format!(" {} [{}]", i.id().display_name(), names.join(", "))
    });
    let _ = write!(out, "verdict: {}{}", report.verdict, image.unwrap_or_default());
    if let Some(severity) = report.severity {
        let _ = write!(out, " severity: {severity}");
    }
    if let Some(reason) = &report.reason {
        let _ = write!(out, " ({reason})");
    }
    out.push('\n');
    for a in &report.actions {
        let what = a.tag.as_deref().or(a.message_id.as_deref()).unwrap_or_default();
        let dry = if a.dry_run { " (dry run: not done)" } else { "" };
        let _ = writeln!(out, "action: {} {what}{dry}", a.kind);
    }
    out
}
