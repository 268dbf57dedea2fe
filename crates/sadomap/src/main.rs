//! The sadomap command line. It parses arguments, opens what a command needs and calls the
//! library crates; the logic lives there.

mod cli;
mod data;
mod lookup;
mod ops;
mod output;
mod query;
mod queue_cmd;
mod queue_signals;
mod serve;
mod supervision;
mod up;
mod up_docker;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use sadomap_store::{PostgresStore, SqliteStore, Store};

use crate::cli::{Cli, Command, Global};

// Import and index building allocate millions of small strings from two threads; mimalloc
// measured faster than the system allocator for that (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SADOMAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
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
        Command::Serve(args) => serve::serve(g, &args),
        Command::District(args) => lookup::district(g, &args),
        Command::Placeid(args) => lookup::placeid(g, &args),
        Command::Worker(mut args) => {
            if args.id.is_none() {
                args.id = supervised_id();
            }
            queue_cmd::worker(g, &args)
        }
        Command::Queue(args) => queue_cmd::queue(g, &args),
        Command::Up(args) => up::up(g, &args),
        Command::Status => ops::status(g),
        Command::Restart(args) => ops::restart(g, &args),
        Command::Deploy(args) => ops::deploy(g, &args),
        Command::Probe(args) => ops::probe(&args),
        Command::Scheduler(args) => ops::scheduler(g, &args, supervised_id()),
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
