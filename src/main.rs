//! Thin: tracing, configuration, clients built once, then the Lambda runtime or the CLI.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ecr_platform_guard::cli::{self, Cli, Command};
use ecr_platform_guard::config::Config;
use ecr_platform_guard::validate::Validator;
use ecr_platform_guard::{aws, handler};
use lambda_runtime::{service_fn, LambdaEvent};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return cli::fail(&format!("cannot start the async runtime: {e}")),
    };
    let lambda_mode = std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if lambda_mode {
        runtime.block_on(run_lambda())
    } else {
        let cli = Cli::parse();
        init_cli_tracing();
        match cli.command {
            Command::Inspect(args) => cli::inspect(&args),
            Command::Check(args) => runtime.block_on(async {
                let config = match Config::from_env() {
                    Ok(config) => config,
                    Err(e) => return cli::fail(&e),
                };
                let sdk = aws::load_sdk_config().await;
                let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
                if region.is_empty() {
                    return cli::fail(&"no AWS region configured: set AWS_REGION or a profile region");
                }
                let validator = Validator::new(config.clone(), aws::ports(&sdk, &config));
                cli::check(&args, &validator, &region).await
            }),
        }
    }
}

async fn run_lambda() -> ExitCode {
    init_lambda_tracing();
    // A bad setting fails the cold start, so the deploy shows it instead of every push.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let sdk = aws::load_sdk_config().await;
    let validator = Validator::new(config.clone(), aws::ports(&sdk, &config));
    let validator = &validator;
    let result = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handler::handle(validator, event).await },
    ))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The SDK logs whole response bodies at trace level, and GetDownloadUrlForLayer's body is a
/// presigned URL: a credential. Trace events from its crates are dropped whatever the level.
fn credential_safe(meta: &tracing::Metadata<'_>) -> bool {
    const BODY_LOGGERS: [&str; 3] = ["aws_smithy_runtime", "aws_smithy_http", "aws_sdk_ecr"];
    *meta.level() != tracing::Level::TRACE || !BODY_LOGGERS.iter().any(|t| meta.target().starts_with(t))
}

/// The first of `variables` that is set, else `default`.
fn filter(variables: &[&str], default: &str) -> EnvFilter {
    let configured = variables
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.trim().is_empty()));
    EnvFilter::try_new(configured.as_deref().unwrap_or(default)).unwrap_or_else(|_| EnvFilter::new(default))
}

/// Logs go to stderr so `--format json` output on stdout stays machine-readable.
fn init_cli_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(filter(&["RUST_LOG"], "warn"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .finish()
        .with(filter_fn(credential_safe))
        .init();
}

/// What lambda_runtime's default subscriber does (JSON when the function's LoggingConfig asks for
/// it; level from AWS_LAMBDA_LOG_LEVEL, then RUST_LOG), without SDK trace bodies.
fn init_lambda_tracing() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"], "info"))
        .with_ansi(false)
        .without_time()
        .with_target(false);
    if json {
        builder.json().finish().with(filter_fn(credential_safe)).init();
    } else {
        builder.finish().with(filter_fn(credential_safe)).init();
    }
}
