//! Thin: tracing, configuration, clients built once, then the Lambda runtime or the CLI.

use std::process::ExitCode;

use clap::Parser;
use ecr_platform_guard::cli::{self, Cli, Command};
use ecr_platform_guard::config::Config;
use ecr_platform_guard::validate::Validator;
use ecr_platform_guard::{aws, handler};
use lambda_runtime::{service_fn, LambdaEvent};

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
    lambda_runtime::tracing::init_default_subscriber();
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

/// Logs go to stderr so `--format json` output on stdout stays machine-readable.
fn init_cli_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
