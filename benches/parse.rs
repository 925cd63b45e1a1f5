//! The event parser on real recorded events: the share of the import that is ours.

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ghmetrics::core::event::parse_event;

fn lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_owned).collect()
}

fn parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_event");
    for name in [
        "events-2015-01-01-first1000.json.gz",
        "events-2021-07-21-sample.json.gz",
    ] {
        let lines = lines(name);
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|line| parse_event(black_box(line.as_str())).unwrap().is_some())
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parser);
criterion_main!(benches);
