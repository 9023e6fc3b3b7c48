//! `--config FILE`: settings from a TOML file, as if given as flags before the command line's own.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, bail};
use clap::CommandFactory;

use crate::args::Cli;

/// Flags a config file may not set: the file itself, and what only makes sense per invocation.
const NOT_IN_FILE: &[&str] = &["config", "help", "version"];

/// The command line with the file's settings inserted right after `opendo run`, so that flags
/// given on the command line come later and win.
pub fn with_config_file(args: Vec<OsString>, file: &Path) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the config file {}", file.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", file.display()))?;
    let command = Cli::command();
    let run = command.find_subcommand("run").context("the run command")?;
    let flags: Vec<String> = run.get_arguments().filter_map(|a| a.get_long().map(String::from)).collect();
    let mut settings = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if !flags.contains(&flag) || NOT_IN_FILE.contains(&flag.as_str()) {
            bail!(
                "{}: unknown setting `{key}` (settings are the flags of `opendo run --help`, without `--`)",
                file.display()
            );
        }
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            other => {
                bail!("{}: `{key}` must be a string or a number, not {}", file.display(), other.type_str())
            }
        };
        settings.push(OsString::from(format!("--{flag}")));
        settings.push(OsString::from(value));
    }
    let position = args.iter().position(|a| a == "run").context("the run command")? + 1;
    let mut merged = args[..position].to_vec();
    merged.extend(settings);
    merged.extend(args[position..].iter().cloned());
    Ok(merged)
}
