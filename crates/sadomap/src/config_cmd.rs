//! `sadomap config`: the configuration in effect, as the TOML of a complete `sadomap.toml`.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;

use crate::cli::Global;
use crate::settings::{redact_url, Settings, Source};

/// Parses `A`'s flags from the environment alone (no arguments), so `config` shows what the
/// short variables such as `SADOMAP_RATE_LIMIT` would do to `serve` and `up`.
fn flags_from_env<A: clap::Args + clap::FromArgMatches>(name: &'static str) -> Result<A> {
    let matches = A::augment_args(clap::Command::new(name).no_binary_name(true))
        .try_get_matches_from(std::iter::empty::<String>())
        .map_err(|e| anyhow!("reading the {name} variables: {e}"))?;
    A::from_arg_matches(&matches).map_err(|e| anyhow!("reading the {name} variables: {e}"))
}

/// `sadomap config`: the configuration in effect as TOML (or JSON with `--json`).
pub fn config(g: &Global, settings: &Settings) -> Result<ExitCode> {
    let serve = settings.serve(&sadomap_server::ServerConfig::default())?;
    let serve_args: crate::serve::ServeArgs = flags_from_env("serve")?;
    let serve_value = crate::serve::config(&serve_args, serve.value);
    serve_value.validate()?;
    let up = settings.up(&crate::up::UpFile::default())?;
    let up_args: crate::up::UpArgs = flags_from_env("up")?;
    let up_value = crate::up::with_flags(up.value, &up_args);
    up_value.memory_limits()?;

    let mut doc = toml::Table::new();
    doc.insert(
        "data_dir".into(),
        toml::Value::String(g.data_dir.display().to_string()),
    );
    for (key, url) in [("postgres_url", &g.postgres), ("redis_url", &g.redis)] {
        if let Some(u) = url {
            doc.insert(key.into(), toml::Value::String(redact_url(u)));
        }
    }
    doc.insert("serve".into(), toml::Value::try_from(&serve_value)?);
    doc.insert("up".into(), toml::Value::try_from(&up_value)?);
    if g.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let describe = |s: &Source| match s {
        Source::File => "the file".to_string(),
        Source::Env(v) => v.clone(),
    };
    println!("# sadomap configuration in effect");
    match settings.path() {
        Some(p) => println!("# file: {}", p.display()),
        None => println!(
            "# file: none (no --config or SADOMAP_CONFIG, and no ./{})",
            crate::settings::FILE_NAME
        ),
    }
    println!("# precedence: defaults < file < SADOMAP_* variables < command-line flags");
    for (key, source) in serve.sources.iter().chain(&up.sources) {
        println!("# {key}: from {}", describe(source));
    }
    for (table, flags) in [
        (
            "serve",
            crate::serve::ServeArgs::augment_args(clap::Command::new("serve")),
        ),
        (
            "up",
            crate::up::UpArgs::augment_args(clap::Command::new("up")),
        ),
    ] {
        for arg in flags.get_arguments() {
            let (Some(var), Some(flag)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if std::env::var_os(var).is_some() {
                println!("# {table} --{flag}: from {}", var.to_string_lossy());
            }
        }
    }
    print!("{}", toml::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}
