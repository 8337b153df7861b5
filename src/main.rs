//! The `perfect-order` command line: load settings, set up logging, run.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use perfect_order::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

/// Perfect-order KPIs from a shop's order events.
///
/// Consumes CloudEvents (order.created, order.confirmed, order.shipped, order.delivered,
/// order.cancelled, claim.filed, claim.resolved) from Kafka, folds every order into a
/// perfect-order projection, and keeps KPI tables in PostgreSQL and metrics for Prometheus.
///
/// Settings: built-in defaults, then the --config file (YAML or TOML), then environment
/// variables such as PERFECT_ORDER__KAFKA__BROKERS=host:9092 (double underscores between
/// levels). See README.md, "Configuration".
#[derive(Parser)]
#[command(name = "perfect-order", version, about, long_about)]
struct Cli {
    /// Configuration file (YAML or TOML); environment variables override it.
    #[arg(long, short, global = true, env = "PERFECT_ORDER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume events and keep the tables and metrics up to date (until Ctrl-C or SIGTERM).
    Run,
    /// Create or upgrade the PostgreSQL tables and views, then exit.
    Migrate,
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.log_level)
        .with_context(|| format!("log.level `{}` is not a valid filter", settings.log_level))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match settings.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds at startup");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("invalid configuration")?;
    init_logging(&settings)?;
    match cli.command {
        Command::Migrate => {
            perfect_order::migrate(&settings).await?;
        }
        Command::Run => {
            let service = perfect_order::Service::start(settings).await?;
            shutdown_signal().await;
            tracing::info!("shutting down: committing the batch in flight");
            service.stop().await;
        }
    }
    Ok(())
}
