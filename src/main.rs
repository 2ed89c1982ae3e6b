//! The `log-panel-collector` binary: CLI, logging and signals around the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use log_panel_collector::collector::Collector;
use log_panel_collector::config::{Config, ConfigError};
use log_panel_collector::loadgen::{Format, Framing, Protocol};
use log_panel_collector::service::log;
use log_panel_collector::storage::{AnyBackend, Backend};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Syslog and OTLP collector writing django-log-panel records"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (TOML); without it the embedded default runs (SQLite, 127.0.0.1:5514).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check a config file and list every error.
    Validate,
    /// Create the panel schema (and record it in django_migrations), then exit.
    Migrate,
    /// Delete rows older than the retention period now (as the daemon does on its schedule).
    Retention {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Days to keep (default: [retention] days of the config).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Load generator: send OTLP/gRPC or syslog (TCP, UDP) to a collector and report the rate it
    /// accepted records and the rate it stored them (from its /metrics).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// What to send: OTLP log batches over gRPC, or syslog messages over TCP or UDP.
    #[arg(long, value_enum, default_value_t = Protocol::OtlpGrpc)]
    protocol: Protocol,
    /// Where to send: http://HOST:PORT for otlp-grpc, HOST:PORT for tcp and udp (default: the
    /// config's listener of that protocol; embedded default 127.0.0.1:4317 or 127.0.0.1:5514).
    #[arg(long)]
    endpoint: Option<String>,
    /// Records to send in all.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Records per Export request (otlp-grpc) or messages per write (tcp).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Characters per record body.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Parallel connections (otlp-grpc, tcp) or sockets (udp).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Records per second over all connections (default: as fast as accepted).
    #[arg(long)]
    rate: Option<u64>,
    /// Distinct logger names (OTLP scope names, syslog app names).
    #[arg(long, default_value_t = 8)]
    loggers: usize,
    /// Syslog message format (tcp, udp).
    #[arg(long, value_enum, default_value_t = Format::Rfc3164)]
    format: Format,
    /// Syslog framing on TCP (RFC 6587): a line feed after each message, or its length before it.
    #[arg(long, value_enum, default_value_t = Framing::Lf)]
    framing: Framing,
    /// The daemon's metrics endpoint, read before and after to report what reached the database
    /// (default: the config's [service] metrics, embedded default http://127.0.0.1:9598/metrics);
    /// `off` reports only the accepted rate.
    #[arg(long)]
    metrics: Option<String>,
    /// Longest wait after the last record was sent for the stored count to reach what was sent.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    wait: Duration,
}

fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            log::say(log::ERR, &e);
            return ExitCode::from(2);
        }
    };
    // The daemon's own log: stderr (journald under systemd), level from RUST_LOG or [service] log_level.
    // Colour only on a terminal; under the journal `<N>` priorities instead of timestamps.
    log::init(
        log::target(),
        // (A non-ASCII RUST_LOG can panic tracing-subscriber's parser: the config's level then.)
        std::env::var("RUST_LOG")
            .ok()
            .filter(|v| v.is_ascii())
            .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| {
                tracing_subscriber::EnvFilter::new(format!("{},sqlx=warn", cfg.service.log_level))
            }),
    );
    match cli.command.unwrap_or(Command::Run) {
        Command::Bench(b) => bench(b, &cfg),
        Command::Validate => {
            // The config's keys are checked; now the files it names (certificates, keys, tokens).
            let errors = log_panel_collector::security::check_files(&cfg);
            if errors.is_empty() {
                println!("config OK");
                ExitCode::SUCCESS
            } else {
                let shown = cli
                    .config
                    .as_deref()
                    .map_or("<default>".into(), |p| p.display().to_string());
                log::say(
                    log::ERR,
                    format_args!("config file {shown} has {} error(s):", errors.len()),
                );
                for e in errors {
                    log::say(log::ERR, format_args!("  {e}"));
                }
                ExitCode::from(2)
            }
        }
        command => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result = match command {
                Command::Migrate => rt.block_on(migrate(&cfg)),
                Command::Retention { dry_run, days } => rt.block_on(retention(&cfg, dry_run, days)),
                _ => rt.block_on(run(&cfg, cli.config.as_deref())),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::say(log::ERR, format_args!("error: {e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `bench`: sends the load, prints the summary line on stdout and what it means on stderr.
fn bench(b: BenchArgs, cfg: &Config) -> ExitCode {
    use log_panel_collector::loadgen::{self, LoadSpec, Watch};
    use std::io::IsTerminal;
    let metrics = match b.metrics.as_deref() {
        None => loadgen::default_metrics(cfg),
        Some("off" | "") => None,
        Some(url) => match url.parse() {
            Ok(u) => Some(u),
            Err(e) => {
                log::say(log::ERR, format_args!("error: --metrics {e}"));
                return ExitCode::from(2);
            }
        },
    };
    let spec = LoadSpec {
        protocol: b.protocol,
        endpoint: b
            .endpoint
            .unwrap_or_else(|| loadgen::default_endpoint(b.protocol, cfg)),
        records: b.records,
        batch: b.batch,
        size: b.size,
        concurrency: b.concurrency,
        rate: b.rate.filter(|r| *r > 0),
        loggers: b.loggers,
        format: b.format,
        framing: b.framing,
    };
    let watch = Watch {
        metrics,
        wait: b.wait,
        progress: std::io::stderr().is_terminal(),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(loadgen::bench(&spec, &watch)) {
        Ok(r) => {
            println!("{}", r.summary());
            for note in r.notes(watch.wait) {
                log::say(log::INFO, note);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::say(log::ERR, format_args!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Opens the configured storage for a one-shot command, runs `work` on it, and closes it before the
/// exit, so SQLite removes its `-wal` file (as a daemon's stop does), whether `work` failed or not.
async fn with_storage<T>(
    cfg: &Config,
    work: impl AsyncFnOnce(&AnyBackend) -> Result<T>,
) -> Result<T> {
    let backend = AnyBackend::from_config(&cfg.storage, 1)?;
    let done = work(&backend).await;
    backend.close().await;
    done
}

async fn migrate(cfg: &Config) -> Result<()> {
    with_storage(cfg, async |backend| {
        let report = backend
            .migrate()
            .await
            .with_context(|| format!("migrating {}", backend.describe()))?;
        if report.applied.is_empty() {
            println!("{}: schema already up to date", backend.describe());
        } else {
            println!(
                "{}: applied {}",
                backend.describe(),
                report.applied.join(", ")
            );
        }
        Ok(())
    })
    .await
}

async fn retention(cfg: &Config, dry_run: bool, days: Option<u32>) -> Result<()> {
    use log_panel_collector::retention::{cutoff, run_pass};
    let days = days.unwrap_or(cfg.retention.days);
    if days == 0 {
        println!("retention is off (days = 0): nothing to delete");
        return Ok(());
    }
    let cut = cutoff(chrono::Utc::now(), days);
    with_storage(cfg, async |backend| {
        if dry_run {
            let n = backend
                .count_older_than(cut)
                .await
                .context("counting old rows")?;
            println!(
                "{}: would delete {n} row(s) older than {cut} ({days} days)",
                backend.describe()
            );
        } else {
            let n = run_pass(backend, cut, cfg.retention.batch, cfg.storage.time_zone)
                .await
                .context("deleting old rows")?;
            println!(
                "{}: deleted {n} row(s) older than {cut} ({days} days)",
                backend.describe()
            );
        }
        Ok(())
    })
    .await
}

async fn run(cfg: &Config, path: Option<&Path>) -> Result<()> {
    use log_panel_collector::service::{activation::Activated, notify};
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let activated = Activated::from_env().context("reading the sockets handed over by systemd")?;
    let handed = activated.sockets.len();
    let mut collector = Collector::start_activated(cfg, activated).await?;
    if path.is_none() {
        log::say(
            log::INFO,
            "no --config given: running on the embedded default",
        );
    }
    if handed > 0 {
        log::say(
            log::INFO,
            format_args!("socket activation: {handed} socket(s) handed over by systemd"),
        );
    }
    print_addresses(&collector);
    log::say(
        log::INFO,
        format_args!("writing to {}", collector.storage()),
    );

    // READY=1 once storage is migrated and reachable (listeners are bound already).
    let health = collector.health();
    let mut waited = std::time::Instant::now();
    loop {
        if let Some(why) = collector.fatal() {
            let _ = stop(collector, cfg).await;
            anyhow::bail!("{why}");
        }
        if health.ready() {
            notify::ready(&format!("writing to {}", collector.storage()));
            break;
        }
        if waited.elapsed() > Duration::from_secs(10) {
            tracing::warn!(
                "still waiting for storage ({}) before reporting ready",
                collector.storage()
            );
            waited = std::time::Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = term.recv() => return stop(collector, cfg).await,
            _ = int.recv() => return stop(collector, cfg).await,
        }
    }
    let _watchdog = notify::spawn_watchdog(health.clone());
    let mut current = cfg.clone();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = check.tick() => {
                // Delivery gave up for good (a schema conflict): stop with its message, exit 1.
                if let Some(why) = collector.fatal() {
                    let _ = stop(collector, &current).await;
                    anyhow::bail!("{why}");
                }
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = hup.recv() => {
                notify::reloading();
                match path.map(Config::load) {
                    None => tracing::warn!("SIGHUP: no config file to read again (running on the embedded default)"),
                    Some(Err(e)) => tracing::error!("SIGHUP: the new config is invalid; keeping the old one.\n{e}"),
                    Some(Ok(new)) => match collector.reload(new.clone()).await {
                        Ok(kept) => {
                            for k in kept {
                                tracing::warn!("SIGHUP: {k}");
                            }
                            tracing::info!("SIGHUP: configuration reloaded");
                            print_addresses(&collector);
                            current = new;
                        }
                        Err(e) => tracing::error!("SIGHUP: cannot apply the new config ({e}); keeping the old one"),
                    },
                }
                notify::ready("configuration reloaded");
            }
        }
    }
    stop(collector, &current).await
}

fn print_addresses(collector: &Collector) {
    let tls = if collector.otlp_tls() {
        " over TLS"
    } else {
        ""
    };
    // (listener, address, what follows the address); scripts read these lines for the ports.
    let mut lines: Vec<(&str, std::net::SocketAddr, String)> = Vec::new();
    lines.extend(
        collector
            .udp_addrs()
            .into_iter()
            .map(|a| ("syslog udp", a, String::new())),
    );
    lines.extend(
        collector
            .tcp_addrs()
            .into_iter()
            .map(|a| ("syslog tcp", a, String::new())),
    );
    lines.extend(
        collector
            .tls_addrs()
            .into_iter()
            .map(|a| ("syslog tls", a, String::new())),
    );
    lines.extend(
        collector
            .grpc_addr()
            .map(|a| ("otlp grpc", a, tls.to_string())),
    );
    lines.extend(
        collector
            .http_addr()
            .map(|a| ("otlp http", a, format!(" (POST /v1/logs){tls}"))),
    );
    for (what, a, rest) in lines {
        log::say(log::INFO, format_args!("listening on {what} {a}{rest}"));
    }
    if let Some(f) = collector.tls_fingerprint() {
        log::say(log::INFO, format_args!("TLS certificate SHA-256 {f}"));
    }
    if let Some(a) = collector.metrics_addr() {
        log::say(
            log::INFO,
            format_args!("listening on metrics http {a} (/metrics, /health, /ready)"),
        );
    }
}

async fn stop(collector: Collector, cfg: &Config) -> Result<()> {
    log_panel_collector::service::notify::stopping();
    let stats = collector
        .shutdown(cfg.service.shutdown_timeout)
        .await
        .context("flushing the queue on shutdown")?;
    tracing::info!(
        received = stats.received,
        written = stats.rows_written,
        filtered = stats.filtered,
        udp_dropped = stats.udp_dropped,
        "stopped"
    );
    Ok(())
}
