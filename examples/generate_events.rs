//! Grows the real events of `tests/fixtures/` into N synthetic ones, either as a
//! GH Archive-style file (for import benchmarks) or straight into a database
//! (for query and HTTP benchmarks). See BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example generate_events -- --events 250000 --out /tmp/hour.json.gz
//! cargo run --release --example generate_events -- --events 10000000 --db /tmp/10m.db --days 30
//! ```

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use clap::Parser;
use ghmetrics::config::{SqliteLocation, StoreLocation};
use ghmetrics::ingest::synthetic::{Generator, SyntheticSettings};
use ghmetrics::store::Store;

#[derive(Parser)]
struct Args {
    /// How many events to make.
    #[arg(long)]
    events: u64,
    /// Write GH Archive lines here (gzipped when the name ends in .gz).
    #[arg(long, conflicts_with = "db", required_unless_present = "db")]
    out: Option<PathBuf>,
    /// Insert tracked events straight into this database instead.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Days the events span, ending now.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Instead of days ending now: this one UTC hour (`YYYY-MM-DDTHH`), as
    /// GH Archive's file of that hour would hold it (ids of its own).
    #[arg(long, conflicts_with = "days")]
    hour: Option<ghmetrics::ingest::gharchive::HourRange>,
    /// Distinct repositories.
    #[arg(long, default_value_t = 1_000_000)]
    repositories: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn fixture_lines() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut lines = Vec::new();
    for name in [
        "events-2015-01-01-first1000.json.gz",
        "events-2019-11-27-first100.json.gz",
        "events-2021-07-21-sample.json.gz",
    ] {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(name)).expect("fixture"))
            .read_to_string(&mut text)
            .expect("gzip fixture");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (start, span_seconds, first_id) = match args.hour {
        Some(hour) => (
            hour.first * 3600,
            3599,
            40_000_000_000 + hour.first * 10_000_000,
        ),
        None => (
            chrono::Utc::now().timestamp() - args.days * 86_400,
            args.days * 86_400,
            40_000_000_000,
        ),
    };
    let settings = SyntheticSettings {
        events: args.events,
        start,
        span_seconds,
        repositories: args.repositories,
        actors: args.repositories,
        first_id,
        seed: args.seed,
    };
    let mut generator = Generator::new(fixture_lines(), settings).expect("fixtures hold events");
    let started = std::time::Instant::now();
    if let Some(path) = args.db {
        let location = StoreLocation::Sqlite(SqliteLocation::File(path.clone()));
        let store = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(Store::open(&location))?;
        // The store's bulk load, as `ghmetrics import` writes: batches from
        // the generator on this thread, written on another.
        let (batches, received) = std::sync::mpsc::sync_channel(4);
        let settling = ghmetrics::store::Settling {
            lag_hours: ghmetrics::config::DEFAULT_ARCHIVE_LAG_HOURS,
            sources: Vec::new(),
        };
        let writer = std::thread::spawn(move || store.bulk_load(received, settling));
        let mut batch = Vec::with_capacity(100_000);
        while let Some(event) = generator.next_event() {
            batch.push(event);
            if batch.len() == batch.capacity() {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(100_000));
                batches.send(ghmetrics::store::Load::Events {
                    file: 1,
                    events: full,
                    archive: None,
                })?;
            }
        }
        batches.send(ghmetrics::store::Load::Events {
            file: 1,
            events: batch,
            archive: None,
        })?;
        drop(batches);
        writer.join().expect("the writer thread")?;
        println!(
            "{} events into {} in {:.1?}",
            args.events,
            path.display(),
            started.elapsed()
        );
    } else if let Some(path) = args.out {
        let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let mut out: Box<dyn Write> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        } else {
            Box::new(file)
        };
        while let Some(line) = generator.next_line() {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        println!(
            "{} events into {} in {:.1?}",
            args.events,
            path.display(),
            started.elapsed()
        );
    }
    Ok(())
}
