//! The sadomap command line. It parses arguments, opens what a command needs and calls the
//! library crates; the logic lives there.

mod cli;
mod config_cmd;
mod data;
mod lookup;
mod ops;
mod output;
mod query;
mod queue_cmd;
mod queue_signals;
mod serve;
mod settings;
mod supervision;
mod up;
mod up_docker;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use sadomap_store::{PostgresStore, SqliteStore, Store};

use crate::cli::{Cli, Command, Global};

// Import and index building allocate millions of small strings from two threads; mimalloc
// measured faster than the system allocator for that (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let data_dir_given = matches.value_source("data_dir") != Some(ValueSource::DefaultValue);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SADOMAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli, data_dir_given) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli, data_dir_given: bool) -> Result<ExitCode> {
    let settings = settings::Settings::load(cli.global.config.as_deref())?;
    // The file's top-level keys stand in for flags and variables that were not given.
    let g = &mut cli.global;
    if let (false, Some(d)) = (data_dir_given, settings.data_dir()) {
        g.data_dir = d.to_path_buf();
    }
    if g.postgres.is_none() {
        g.postgres = settings.postgres_url().map(str::to_owned);
    }
    if g.redis.is_none() {
        g.redis = settings.redis_url().map(str::to_owned);
    }
    // Children of `up` read the same file.
    g.config = settings.path().map(Path::to_path_buf);
    let g = &cli.global;
    // A child of `sadomap up` must not outlive it (it would hold the port and the queue).
    if std::env::var_os(sadomap_supervisor::SUPERVISOR_PID_ENV).is_some()
        && !sadomap_supervisor::exit_with_supervisor().context("watching the supervisor")?
    {
        eprintln!("sadomap: the supervisor that started this process is gone; exiting");
        return Ok(ExitCode::FAILURE);
    }
    // Under `up` each worker instance gets its id from the supervisor, which probes its
    // heartbeat and releases its leases by that id.
    let supervised_id = || std::env::var("SADOMAP_WORKER_ID").ok();
    match cli.command {
        Command::Import(args) => data::import(g, &args),
        Command::Check(args) => data::check(g, &args),
        Command::Export(args) => data::export(g, &args),
        Command::Demo(args) => data::demo(g, &args),
        Command::Places(args) => query::places(g, &args),
        Command::Stats => query::stats(g),
        Command::Due(args) => query::due(g, &args),
        Command::Serve(args) => serve::serve(g, &args, &settings),
        Command::District(args) => lookup::district(g, &args),
        Command::Placeid(args) => lookup::placeid(g, &args),
        Command::Worker(mut args) => {
            if args.id.is_none() {
                args.id = supervised_id();
            }
            queue_cmd::worker(g, &args)
        }
        Command::Queue(args) => queue_cmd::queue(g, &args),
        Command::Up(args) => up::up(g, &args, &settings),
        Command::Status => ops::status(g),
        Command::Restart(args) => ops::restart(g, &args),
        Command::Deploy(args) => ops::deploy(g, &args),
        Command::Probe(args) => ops::probe(&args),
        Command::Scheduler(args) => ops::scheduler(g, &args, supervised_id()),
        Command::Config => config_cmd::config(g, &settings),
    }
}

/// Opens the store the global options name: PostgreSQL when a URL is given, else SQLite in the
/// data directory (created when missing).
pub(crate) fn open_store(g: &Global) -> Result<Box<dyn Store>> {
    match &g.postgres {
        Some(url) => Ok(Box::new(
            PostgresStore::connect(url).context("opening the PostgreSQL store")?,
        )),
        None => {
            std::fs::create_dir_all(&g.data_dir)
                .with_context(|| format!("creating data directory {}", g.data_dir.display()))?;
            Ok(Box::new(SqliteStore::open(&g.data_dir).with_context(
                || format!("opening the store in {}", g.data_dir.display()),
            )?))
        }
    }
}
