//! `synchro-synth`: writes synthetic operator exports, their mapping profiles and a truth file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use synchro_synth::{Config, Dirtiness, Scenario};

/// Generate realistic synthetic French exports for several operators and months
#[derive(Parser)]
#[command(name = "synchro-synth", version)]
struct Cli {
    /// Output directory (one folder per operator, profiles, truth.csv)
    #[arg(long)]
    out: PathBuf,
    /// People in the population
    #[arg(long, default_value_t = 400)]
    persons: usize,
    /// Operators
    #[arg(long, default_value_t = 4)]
    operators: usize,
    /// Months
    #[arg(long, default_value_t = 3)]
    months: u32,
    /// First month, YYYY-MM
    #[arg(long, default_value = "2026-08")]
    first_period: String,
    /// Identity dirtiness
    #[arg(long, value_enum, default_value_t = Dirtiness::Moderate)]
    dirtiness: Dirtiness,
    /// Random seed
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (y, m) = cli
        .first_period
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse().ok()?, m.parse().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--first-period must be YYYY-MM"))?;
    let scenario = Scenario::generate(Config {
        seed: cli.seed,
        persons: cli.persons,
        operators: cli.operators,
        months: cli.months,
        first_period: (y, m),
        dirtiness: cli.dirtiness,
    });
    std::fs::create_dir_all(&cli.out)?;
    let files = scenario.write_exports(&cli.out)?;
    for (i, op) in scenario.operators.iter().enumerate() {
        std::fs::write(
            cli.out.join(&op.id).join("profile.toml"),
            scenario.profile(i),
        )?;
    }
    scenario.write_truth(&cli.out.join("truth.csv"))?;
    for f in &files {
        println!(
            "{}\t{}\t{}\t{} rows",
            f.operator_id,
            f.period,
            f.path.display(),
            f.rows
        );
    }
    println!(
        "{} distinct people seen; truth in {}",
        scenario.persons_seen(),
        cli.out.join("truth.csv").display()
    );
    Ok(())
}
