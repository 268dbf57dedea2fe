//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sadomap keeps an accurate, fresh dataset of Sado Island's restaurants, parking lots and public
/// toilets, and serves it to a map.
#[derive(Debug, Parser)]
#[command(name = "sadomap", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Directory of the embedded store.
    #[arg(
        long,
        global = true,
        env = "SADOMAP_DATA_DIR",
        default_value = "sadomap-data"
    )]
    pub data_dir: PathBuf,
    /// Use this PostgreSQL database as the store instead of the embedded SQLite one.
    #[arg(
        long,
        global = true,
        env = "SADOMAP_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres: Option<String>,
    /// Use this Redis (redis://host:port/db) for the task queue instead of the embedded SQLite
    /// queue file in the data directory.
    #[arg(long, global = true, env = "SADOMAP_REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,
    /// The configuration file [default: ./sadomap.toml when it exists]; `sadomap config` prints
    /// what it and the SADOMAP_* environment variables amount to.
    #[arg(long, global = true, env = "SADOMAP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output (JSON) wherever a command prints results.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import places from files (one transaction per run: a bad file imports nothing).
    Import(ImportArgs),
    /// Validate files without importing; report every problem. Also reads the curated query
    /// lists (`*.txt`): malformed lines, duplicate CIDs and similar names.
    Check(ImportArgs),
    /// Export the store.
    Export(ExportArgs),
    /// Generate deterministic synthetic demo places (marked `source = demo`).
    Demo(DemoArgs),
    /// Query places with the same filters as the API.
    Places(Box<PlacesArgs>),
    /// Counts per kind and district.
    Stats,
    /// Places whose details or place ID are due for a refresh under the refresh policy.
    Due(DueArgs),
    /// Serve the HTTP API (and the map page) until SIGTERM or Ctrl-C.
    Serve(Box<crate::serve::ServeArgs>),
    /// Assign addresses to districts: `district<TAB>town<TAB>step` per line.
    District(LinesArgs),
    /// Decode Google place IDs to Maps CIDs: `place_id<TAB>cid` per line.
    Placeid(LinesArgs),
    /// Run queued jobs until SIGTERM or SIGINT (then finish or give back running jobs).
    Worker(crate::queue_cmd::WorkerArgs),
    /// Inspect and operate the task queue: stats, list, dead, retry, purge, enqueue, …
    Queue(crate::queue_cmd::QueueArgs),
    /// Run everything on this machine, supervised: api-primary and api-backup on one socket,
    /// workers, a scheduler; until SIGTERM or Ctrl-C.
    Up(crate::up::UpArgs),
    /// The health table of the processes a running `up` supervises (`--json`: as JSON).
    Status,
    /// Restart a service of a running `up` without downtime (`api`: one side at a time).
    Restart(crate::ops::RestartArgs),
    /// Write deployment manifests for existing engines.
    Deploy(crate::ops::DeployArgs),
    /// Exit 0 if a URL answers HTTP 2xx in time (a health check for containers).
    Probe(crate::ops::ProbeArgs),
    /// Fire the cron schedules (and run the maintenance queue) until SIGTERM or SIGINT.
    Scheduler(crate::ops::SchedulerArgs),
    /// Print the configuration in effect (defaults, sadomap.toml, SADOMAP_* variables) as TOML,
    /// with where each key that is not a default came from; passwords are masked.
    Config,
}

/// File formats on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The original sheet layouts or collector output (CSV).
    Csv,
    /// GeoJSON FeatureCollection.
    Geojson,
    /// OpenStreetMap PBF.
    Pbf,
    /// Overpass API JSON.
    Overpass,
    /// sadomap JSON lines.
    Jsonl,
}

/// Place kinds on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Restaurants, cafés and other places to eat.
    Restaurant,
    /// Parking lots.
    Parking,
    /// Public toilets.
    Toilet,
}

impl From<KindArg> for sadomap_core::Kind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Restaurant => sadomap_core::Kind::Restaurant,
            KindArg::Parking => sadomap_core::Kind::Parking,
            KindArg::Toilet => sadomap_core::Kind::Toilet,
        }
    }
}

/// Arguments of `import` and `check`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to read.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Format (default: from the file name and content).
    #[arg(long)]
    pub format: Option<FormatArg>,
    /// Kind of every place in the files, where the format does not say.
    #[arg(long)]
    pub kind: Option<KindArg>,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Format.
    #[arg(long, default_value = "geojson")]
    pub format: FormatArg,
    /// Only this kind (required for CSV: one sheet layout per kind).
    #[arg(long)]
    pub kind: Option<KindArg>,
    /// Output file (written atomically); standard output when absent.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many places.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Seed: the same count and seed always give the same places.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write JSON lines to this file instead of importing into the store.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Arguments of commands that read lines from arguments or standard input.
#[derive(Debug, Args)]
pub struct LinesArgs {
    /// Inputs; one per line on standard input when none are given.
    pub inputs: Vec<String>,
}

/// Filters of `places` (the same as the API's).
#[derive(Debug, Args)]
pub struct PlacesArgs {
    /// Kinds (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<KindArg>,
    /// Districts by name (両津, 相川, …; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub district: Vec<String>,
    /// Cuisines by machine name or Japanese label (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cuisine: Vec<String>,
    /// Price range as ranks `1-2`, or one rank `3`.
    #[arg(long)]
    pub price: Option<String>,
    /// Minimum rating (stars).
    #[arg(long)]
    pub min_rating: Option<f32>,
    /// Only places open now (Asia/Tokyo).
    #[arg(long, conflicts_with = "open_at")]
    pub open_now: bool,
    /// Only places open at this time: RFC 3339, or `YYYY-MM-DDTHH:MM` in Tokyo time.
    #[arg(long)]
    pub open_at: Option<String>,
    /// Required features (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub feature: Vec<String>,
    /// Text search in names and addresses.
    #[arg(long)]
    pub q: Option<String>,
    /// Bounding box `south,west,north,east`.
    #[arg(long)]
    pub bbox: Option<String>,
    /// Centre `lat,lng` for distance sort and radius.
    #[arg(long)]
    pub near: Option<String>,
    /// Radius in metres around `--near`.
    #[arg(long, requires = "near")]
    pub radius: Option<f64>,
    /// Sort: distance, name, rating, price.
    #[arg(long)]
    pub sort: Option<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Continue after this cursor (printed by the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// Arguments of `due`: the refresh policy and how many to list.
#[derive(Debug, Args)]
pub struct DueArgs {
    /// Details older than this many days are due.
    #[arg(long, env = "SADOMAP_REFRESH_DETAILS_DAYS", default_value_t = 7)]
    pub details_days: u32,
    /// Place IDs not re-checked for this many days are due.
    #[arg(long, env = "SADOMAP_REFRESH_ID_DAYS", default_value_t = 365)]
    pub id_days: u32,
    /// At most this many places.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}
