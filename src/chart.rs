//! The event-count bar chart: counts in, PNG bytes out, rendered in memory with
//! an embedded font so it works on machines without system fonts.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::db::EventCounts;

/// Chart size in pixels: readable on a laptop screen, a few tens of KB as PNG.
const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// The family name under which the embedded DejaVu Sans is registered.
const FONT_FAMILY: &str = "sans-serif";

/// Bar colours per type: Watch, PullRequest, Issues.
const BAR_COLOURS: [RGBColor; 3] = [
    RGBColor(0xf2, 0xa9, 0x00),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
];

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("embedded font rejected: {0}")]
    Font(String),
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
}

fn ensure_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT_FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "DejaVu Sans".to_owned())
        })
        .clone()
        .map_err(ChartError::Font)
}

/// "the last 90 minutes", "the last 2 hours", "the last 3 days".
pub fn describe_window(offset_minutes: i64) -> String {
    const HOUR: i64 = 60;
    const DAY: i64 = 24 * HOUR;
    let (amount, unit) = if offset_minutes % DAY == 0 {
        (offset_minutes / DAY, "day")
    } else if offset_minutes % HOUR == 0 {
        (offset_minutes / HOUR, "hour")
    } else {
        (offset_minutes, "minute")
    };
    let plural = if amount == 1 { "" } else { "s" };
    if amount == 1 {
        format!("the last {unit}")
    } else {
        format!("the last {amount} {unit}{plural}")
    }
}

/// Charts kept by [`ChartCache`]: one per window a dashboard or client polls.
const CACHED_CHARTS: usize = 16;

/// Recently rendered charts. The same counts and window always give the same
/// PNG, so a chart is rendered once per change of the data rather than once per
/// request (rendering costs milliseconds; a cache hit, microseconds).
#[derive(Debug, Default)]
pub struct ChartCache(Mutex<VecDeque<(EventCounts, String, Bytes)>>);

impl ChartCache {
    /// The chart for `counts` and `window`, rendered only if not cached.
    pub fn get_or_render(&self, counts: &EventCounts, window: &str) -> Result<Bytes, ChartError> {
        if let Some(png) = self
            .lock()
            .iter()
            .find(|(c, w, _)| c == counts && w == window)
        {
            return Ok(png.2.clone());
        }
        let png = Bytes::from(render_event_counts(counts, window)?);
        let mut cache = self.lock();
        if cache.len() == CACHED_CHARTS {
            cache.pop_front();
        }
        cache.push_back((*counts, window.to_owned(), png.clone()));
        Ok(png)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(EventCounts, String, Bytes)>> {
        // Plain data: a cache written by a panicking thread is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A bar chart of `counts` titled with `window` (e.g. "the last 60 minutes"), as PNG.
pub fn render_event_counts(counts: &EventCounts, window: &str) -> Result<Vec<u8>, ChartError> {
    ensure_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw_bars(&mut pixels, counts, window).map_err(|e| ChartError::Draw(e.to_string()))?;
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Flat colours compress well even at the fastest setting.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(png_bytes)
}

fn draw_bars(
    pixels: &mut [u8],
    counts: &EventCounts,
    window: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let bars = counts.by_type();
    let tallest = bars.iter().map(|(_, n)| *n).max().unwrap_or(0);
    // Headroom above the tallest bar for its value label.
    let y_max = (tallest + tallest / 8).max(tallest + 1);
    // A segmented range over 0..n has n + 1 segments: one per bar needs n - 1.
    let last_bar = bars.len() - 1;

    let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("GitHub events in {window}"), (FONT_FAMILY, 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((0..last_bar).into_segmented(), 0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("Event type")
        .y_desc("Events")
        .axis_desc_style((FONT_FAMILY, 18))
        .label_style((FONT_FAMILY, 15))
        .x_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |(t, _)| t.to_string()),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0),
                (SegmentValue::Exact(i + 1), *count),
            ],
            BAR_COLOURS[i % BAR_COLOURS.len()].filled(),
        );
        bar.set_margin(0, 0, 30, 30);
        bar
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
        Text::new(
            count.to_string(),
            (SegmentValue::CenterOf(i), *count),
            (FONT_FAMILY, 18)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(info.buffer_size());
        (info, pixels)
    }

    fn pixels_of(pixels: &[u8], colour: RGBColor) -> usize {
        pixels
            .chunks_exact(3)
            .filter(|p| p[0] == colour.0 && p[1] == colour.1 && p[2] == colour.2)
            .count()
    }

    #[test]
    fn bars_are_drawn_in_proportion_to_the_counts() {
        let counts = EventCounts {
            watch: 30,
            pull_request: 10,
            issues: 0,
        };
        let (info, pixels) = decode(&render_event_counts(&counts, "the last hour").unwrap());
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let areas = BAR_COLOURS.map(|colour| pixels_of(&pixels, colour));
        assert_eq!(areas[2], 0, "an empty type has no bar");
        let ratio = areas[0] as f64 / areas[1] as f64;
        assert!((2.8..3.2).contains(&ratio), "bar areas {areas:?}");
        // The title was rendered: the band above the plot (no axes there) has ink.
        let title_band = &pixels[..(WIDTH * 45 * 3) as usize];
        let dark = title_band
            .chunks_exact(3)
            .filter(|p| p.iter().all(|c| *c < 80))
            .count();
        assert!(
            dark > 200,
            "only {dark} dark pixels in the title band: no text?"
        );
    }

    #[test]
    fn the_cache_renders_once_per_counts_and_window() {
        let cache = ChartCache::default();
        let counts = EventCounts {
            watch: 3,
            pull_request: 1,
            issues: 2,
        };
        let first = cache.get_or_render(&counts, "the last hour").unwrap();
        let again = cache.get_or_render(&counts, "the last hour").unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "served from the cache");
        let other = cache
            .get_or_render(&EventCounts { watch: 4, ..counts }, "the last hour")
            .unwrap();
        assert_ne!(first, other, "new counts, new chart");
        let other_window = cache.get_or_render(&counts, "the last day").unwrap();
        assert_ne!(first, other_window);
        for watch in 0..CACHED_CHARTS as u64 * 2 {
            cache
                .get_or_render(&EventCounts { watch, ..counts }, "x")
                .unwrap();
        }
        assert_eq!(cache.lock().len(), CACHED_CHARTS);
    }

    #[test]
    fn windows_read_naturally() {
        assert_eq!(describe_window(1), "the last minute");
        assert_eq!(describe_window(90), "the last 90 minutes");
        assert_eq!(describe_window(60), "the last hour");
        assert_eq!(describe_window(120), "the last 2 hours");
        assert_eq!(describe_window(2 * 1440), "the last 2 days");
    }
}
