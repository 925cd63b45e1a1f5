//! The charts: the event-count bar chart and the timeline (events per time
//! bucket per type). Data in, PNG or SVG bytes out, rendered in memory; PNG
//! text uses an embedded font so it works on machines without system fonts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::core::event::{EventType, PerType};
use crate::store::EventCounts;

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

/// The image formats a chart can be served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    /// Scalable, and text stays text (searchable, sharp at any zoom).
    Svg,
}

impl ImageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Svg => "image/svg+xml",
        }
    }

    /// The values of the `format` query parameter.
    pub const NAMES: [&'static str; 2] = ["png", "svg"];

    /// `png` or `svg`, the values of the `format` query parameter.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "png" => Some(ImageFormat::Png),
            "svg" => Some(ImageFormat::Svg),
            _ => None,
        }
    }
}

/// Events per type in consecutive time buckets: the timeline chart's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// Start of the first bucket, epoch seconds.
    pub start: i64,
    pub bucket_seconds: i64,
    /// Per bucket, the counts per type.
    pub buckets: Vec<PerType<u64>>,
}

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
    let (amount, unit) = in_largest_unit(offset_minutes);
    if amount == 1 {
        format!("the last {unit}")
    } else {
        format!("the last {amount} {unit}s")
    }
}

/// `minutes` as a whole number of days, hours or minutes, the largest that fits.
fn in_largest_unit(minutes: i64) -> (i64, &'static str) {
    const HOUR: i64 = 60;
    const DAY: i64 = 24 * HOUR;
    if minutes % DAY == 0 {
        (minutes / DAY, "day")
    } else if minutes % HOUR == 0 {
        (minutes / HOUR, "hour")
    } else {
        (minutes, "minute")
    }
}

/// A timeline bucket of `minutes` in words, with its number always: "1
/// minute", "10 minutes", "2 hours".
fn describe_bucket(minutes: i64) -> String {
    let (amount, unit) = in_largest_unit(minutes);
    let plural = if amount == 1 { "" } else { "s" };
    format!("{amount} {unit}{plural}")
}

/// A window `[from, to)` of epoch seconds in words (UTC): "2015-01-01 03:00
/// to 04:00", with the end's date when it is another day's and seconds when
/// either end has them.
pub fn describe_range(from: i64, to: i64) -> String {
    let at = |second: i64| chrono::DateTime::from_timestamp(second, 0).unwrap_or_default();
    let (start, end) = (at(from), at(to));
    let time = if from % 60 == 0 && to % 60 == 0 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let end_format = if start.date_naive() == end.date_naive() {
        time.to_owned()
    } else {
        format!("%Y-%m-%d {time}")
    };
    format!(
        "{} to {}",
        start.format(&format!("%Y-%m-%d {time}")),
        end.format(&end_format)
    )
}

/// Charts kept by [`ChartCache`]: one per window a dashboard or client polls.
const CACHED_CHARTS: usize = 16;

/// What identifies a rendered bar chart.
type ChartKey = (EventCounts, String, ImageFormat);

/// Recently rendered bar charts. The same counts and window always give the
/// same image, so a chart is rendered once per change of the data rather than
/// once per request (rendering costs milliseconds; a cache hit, microseconds).
#[derive(Debug, Default)]
pub struct ChartCache(Mutex<VecDeque<(ChartKey, Bytes)>>);

impl ChartCache {
    /// The chart for `counts` and `window`, rendered only if not cached.
    pub fn get_or_render(
        &self,
        counts: &EventCounts,
        window: &str,
        format: ImageFormat,
    ) -> Result<Bytes, ChartError> {
        if let Some((_, image)) = self
            .lock()
            .iter()
            .find(|((c, w, f), _)| c == counts && w == window && *f == format)
        {
            return Ok(image.clone());
        }
        let image = Bytes::from(render(&BarChart { counts, window }, format)?);
        let mut cache = self.lock();
        if cache.len() == CACHED_CHARTS {
            cache.pop_front();
        }
        cache.push_back(((*counts, window.to_owned(), format), image.clone()));
        Ok(image)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(ChartKey, Bytes)>> {
        // Plain data: a cache written by a panicking thread is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A bar chart of `counts` titled with `window` (e.g. "the last 60 minutes").
pub fn render_event_counts(
    counts: &EventCounts,
    window: &str,
    format: ImageFormat,
) -> Result<Vec<u8>, ChartError> {
    render(&BarChart { counts, window }, format)
}

/// A line per event type over the buckets of `timeline`, titled with `window`.
pub fn render_timeline(
    timeline: &Timeline,
    window: &str,
    format: ImageFormat,
) -> Result<Vec<u8>, ChartError> {
    render(&TimelineChart { timeline, window }, format)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A chart that can be drawn on any plotters backend (bitmap or SVG).
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

fn render(chart: &impl Chart, format: ImageFormat) -> Result<Vec<u8>, ChartError> {
    let draw_error = |e: Box<dyn std::error::Error>| ChartError::Draw(e.to_string());
    // SVG needs the font too: plotters measures text to lay the chart out.
    ensure_font()?;
    match format {
        ImageFormat::Png => {
            let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
            {
                let root =
                    BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
                chart.draw(&root).map_err(draw_error)?;
            }
            encode_png(&pixels)
        }
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
                chart.draw(&root).map_err(draw_error)?;
            }
            // plotters spells out SVG's default opacity on every element:
            // 6-9% of a chart's bytes, sent with every answer.
            Ok(svg.replace(" opacity=\"1\"", "").into_bytes())
        }
    }
}

fn encode_png(pixels: &[u8]) -> Result<Vec<u8>, ChartError> {
    let (palette, indices) = to_palette(pixels);
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette);
    // Answers are cached while their data and clock are unchanged, so a chart
    // is encoded at most about once a second while it is sent thousands of
    // times: zlib's default level is fast (the best level saves a few percent
    // for several times the CPU, which a client asking for many windows could
    // turn into load). No row filter, as the PNG spec advises for palette
    // images: smaller than adaptive filtering here, as fast.
    encoder.set_compression(png::Compression::Default);
    encoder.set_filter(png::FilterType::NoFilter);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&indices)?;
    writer.finish()?;
    Ok(png_bytes)
}

/// The RGB `pixels` as a palette of at most 256 colours and one index per
/// pixel: a third of the bytes to compress, and half the PNG. A chart has
/// a few flat colours and the text's anti-aliasing shades, about 250 in all;
/// past 256, the rarest shades take the nearest kept colour (a few hundred
/// pixels of the 400,000 moved by a shade of grey).
fn to_palette(pixels: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut uses: HashMap<[u8; 3], u32> = HashMap::new();
    let mut last = None;
    for rgb in pixels.chunks_exact(3) {
        let rgb = [rgb[0], rgb[1], rgb[2]];
        // Runs of one colour are most of a chart: count them without hashing.
        match &mut last {
            Some((colour, run)) if *colour == rgb => *run += 1,
            _ => {
                if let Some((colour, run)) = last.replace((rgb, 1)) {
                    *uses.entry(colour).or_default() += run;
                }
            }
        }
    }
    if let Some((colour, run)) = last {
        *uses.entry(colour).or_default() += run;
    }
    let mut colours: Vec<([u8; 3], u32)> = uses.into_iter().collect();
    // Most used first; ties by colour, so a chart always encodes alike.
    colours.sort_unstable_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    let kept = colours.len().min(256);
    let index: HashMap<[u8; 3], u8> = colours
        .iter()
        .enumerate()
        .map(|(i, &(colour, _))| {
            let nearest = if i < kept {
                i
            } else {
                (0..kept)
                    .min_by_key(|&j| distance(colour, colours[j].0))
                    .unwrap_or(0)
            };
            (colour, nearest as u8)
        })
        .collect();
    let palette = colours[..kept].iter().flat_map(|(c, _)| *c).collect();
    let mut indices = Vec::with_capacity(pixels.len() / 3);
    let mut last = ([0; 3], 0);
    for (i, rgb) in pixels.chunks_exact(3).enumerate() {
        let rgb = [rgb[0], rgb[1], rgb[2]];
        if i == 0 || rgb != last.0 {
            last = (rgb, index[&rgb]);
        }
        indices.push(last.1);
    }
    (palette, indices)
}

/// Squared distance between two colours.
fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| (i32::from(x) - i32::from(y)).pow(2) as u32)
        .sum()
}

struct BarChart<'a> {
    counts: &'a EventCounts,
    window: &'a str,
}

impl Chart for BarChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let window = self.window;
        let bars = self.counts.by_type();
        let tallest = bars.iter().map(|(_, n)| *n).max().unwrap_or(0);
        // Headroom above the tallest bar for its value label.
        let y_max = (tallest + tallest / 8).max(tallest + 1);
        // A segmented range over 0..n has n + 1 segments: one per bar needs n - 1.
        let last_bar = bars.len() - 1;

        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("GitHub events in {window}"), (FONT_FAMILY, 26))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((0..last_bar).into_segmented(), 0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("Event type")
            .y_desc("Events")
            .axis_desc_style((FONT_FAMILY, 18))
            .label_style((FONT_FAMILY, 15))
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(i) => {
                    bars.get(*i).map_or(String::new(), |(t, _)| t.to_string())
                }
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
}

struct TimelineChart<'a> {
    timeline: &'a Timeline,
    window: &'a str,
}

impl Chart for TimelineChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let timeline = self.timeline;
        let buckets = timeline.buckets.len();
        let tallest = timeline
            .buckets
            .iter()
            .flat_map(|counts| counts.0)
            .max()
            .unwrap_or(0);
        // A quarter of headroom keeps the legend (top left) clear of the lines.
        let y_max = tallest + tallest / 4 + 1;
        // Times on the axis: hours and minutes, with the date when the window
        // spans days, only the date (with the year) when it spans most of a year.
        let span = timeline.bucket_seconds * buckets as i64;
        let label_format = if span > 300 * 86_400 {
            "%Y-%m-%d"
        } else if span > 86_400 {
            "%m-%d %H:%M"
        } else {
            "%H:%M"
        };
        let bucket_start = |i: usize| timeline.start + i as i64 * timeline.bucket_seconds;
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("GitHub events in {} (UTC)", self.window),
                (FONT_FAMILY, 26),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            // One point per bucket, at its start; a single bucket still needs a range.
            .build_cartesian_2d(0..buckets.saturating_sub(1).max(1), 0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "{} per point",
                describe_bucket(timeline.bucket_seconds / 60)
            ))
            .y_desc("Events")
            .axis_desc_style((FONT_FAMILY, 18))
            .label_style((FONT_FAMILY, 15))
            .x_labels(8)
            // Only the main grid: the fine one makes the PNG five times larger.
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|i| {
                chrono::DateTime::from_timestamp(bucket_start(*i), 0)
                    .map_or(String::new(), |at| at.format(label_format).to_string())
            })
            .draw()?;
        for (type_index, &event_type) in EventType::ALL.iter().enumerate() {
            let colour = BAR_COLOURS[type_index % BAR_COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    timeline
                        .buckets
                        .iter()
                        .enumerate()
                        .map(|(i, counts)| (i, counts[event_type])),
                    colour.stroke_width(2),
                ))?
                .label(event_type.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT_FAMILY, 15))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
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
        let (info, pixels) =
            decode(&render_event_counts(&counts, "the last hour", ImageFormat::Png).unwrap());
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
        let first = cache
            .get_or_render(&counts, "the last hour", ImageFormat::Png)
            .unwrap();
        let again = cache
            .get_or_render(&counts, "the last hour", ImageFormat::Png)
            .unwrap();
        assert_eq!(first.as_ptr(), again.as_ptr(), "served from the cache");
        let other = cache
            .get_or_render(
                &EventCounts { watch: 4, ..counts },
                "the last hour",
                ImageFormat::Png,
            )
            .unwrap();
        assert_ne!(first, other, "new counts, new chart");
        let other_window = cache
            .get_or_render(&counts, "the last day", ImageFormat::Png)
            .unwrap();
        assert_ne!(first, other_window);
        for watch in 0..CACHED_CHARTS as u64 * 2 {
            cache
                .get_or_render(&EventCounts { watch, ..counts }, "x", ImageFormat::Png)
                .unwrap();
        }
        assert_eq!(cache.lock().len(), CACHED_CHARTS);
    }

    /// `points="x,y x,y "` of every SVG polyline drawn in `colour` at `width`.
    fn polylines(svg: &str, colour: RGBColor, width: u32) -> Vec<Vec<(f64, f64)>> {
        let stroke = format!(
            r##"stroke="#{:02X}{:02X}{:02X}" stroke-width="{width}""##,
            colour.0, colour.1, colour.2
        );
        svg.lines()
            .filter(|line| line.starts_with("<polyline") && line.contains(&stroke))
            .map(|line| {
                let points = line.split("points=\"").nth(1).unwrap();
                points
                    .split('"')
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(|pair| {
                        let (x, y) = pair.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn svg_bars_have_heights_in_proportion_to_the_counts() {
        let counts = EventCounts {
            watch: 30,
            pull_request: 10,
            issues: 0,
        };
        let svg = String::from_utf8(
            render_event_counts(&counts, "the last hour", ImageFormat::Svg).unwrap(),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("GitHub events in the last hour"));
        let height = |colour: RGBColor| -> f64 {
            let fill = format!(
                r##"fill="#{:02X}{:02X}{:02X}""##,
                colour.0, colour.1, colour.2
            );
            let rect = svg
                .lines()
                .find(|line| line.starts_with("<rect") && line.contains(&fill))
                .unwrap_or_else(|| panic!("no bar in {fill}"));
            rect.split("height=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let heights = BAR_COLOURS.map(height);
        assert_eq!(heights[2], 0.0);
        let ratio = heights[0] / heights[1];
        assert!((2.9..3.1).contains(&ratio), "{heights:?}");
    }

    #[test]
    fn timeline_draws_one_line_per_type_through_every_bucket() {
        let buckets = vec![[1, 2, 3], [4, 5, 6], [0, 0, 9], [2, 2, 2], [7, 1, 0]];
        let timeline = Timeline {
            start: 1_700_000_000,
            bucket_seconds: 600,
            buckets: buckets.iter().copied().map(PerType).collect(),
        };
        let svg = String::from_utf8(
            render_timeline(&timeline, "the last 50 minutes", ImageFormat::Svg).unwrap(),
        )
        .unwrap();
        assert!(svg.contains("GitHub events in the last 50 minutes (UTC)"));
        assert!(svg.contains("10 minutes per point"));
        assert_eq!(describe_bucket(1), "1 minute");
        assert_eq!(describe_bucket(120), "2 hours");
        assert_eq!(describe_bucket(1440), "1 day");
        // Every point of every line lies on one axis: y = base - scale * count,
        // and x advances by the same step per bucket.
        let mut samples = Vec::new();
        for (type_index, colour) in BAR_COLOURS.iter().enumerate() {
            let lines = polylines(&svg, *colour, 2);
            assert_eq!(lines.len(), 1, "one line per type");
            let line = &lines[0];
            assert_eq!(line.len(), buckets.len());
            for (point, counts) in line.iter().zip(&buckets) {
                samples.push((point.1, counts[type_index] as f64));
            }
            let steps: Vec<f64> = line.windows(2).map(|w| w[1].0 - w[0].0).collect();
            assert!(
                steps.iter().all(|s| (s - steps[0]).abs() <= 1.0),
                "{steps:?}"
            );
        }
        let (y_at_zero, _) = samples.iter().find(|(_, c)| *c == 0.0).copied().unwrap();
        let (y_at_nine, _) = samples.iter().find(|(_, c)| *c == 9.0).copied().unwrap();
        let per_event = (y_at_zero - y_at_nine) / 9.0;
        assert!(per_event > 10.0, "{per_event}");
        for (y, count) in samples {
            assert!(
                (y - (y_at_zero - per_event * count)).abs() <= 1.0,
                "count {count} drawn at y {y}"
            );
        }

        let (info, pixels) =
            decode(&render_timeline(&timeline, "the last 50 minutes", ImageFormat::Png).unwrap());
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        for colour in BAR_COLOURS {
            assert!(pixels_of(&pixels, colour) > 100, "{colour:?} line drawn");
        }
    }

    #[test]
    fn a_palette_keeps_every_colour_up_to_256_and_the_nearest_past_that() {
        // 300 colours, colour g used 1000 - g times: the 44 rarest are dropped.
        let rgb_of = |g: u32| [(g * 255 / 299) as u8, (g % 7) as u8, 9];
        let used: Vec<u32> = (0..300)
            .flat_map(|g| std::iter::repeat_n(g, 1000 - g as usize))
            .collect();
        let pixels: Vec<u8> = used.iter().flat_map(|&g| rgb_of(g)).collect();
        let (palette, indices) = to_palette(&pixels);
        assert_eq!(palette.len(), 256 * 3);
        assert_eq!(indices.len(), used.len());
        let colour = |i: u8| {
            let at = usize::from(i) * 3;
            [palette[at], palette[at + 1], palette[at + 2]]
        };
        for (&g, &i) in used.iter().zip(&indices) {
            if g < 256 {
                assert_eq!(colour(i), rgb_of(g), "a kept colour is exact");
            } else {
                let nearest = (0..=255).map(|j| distance(rgb_of(g), colour(j))).min();
                assert_eq!(Some(distance(rgb_of(g), colour(i))), nearest, "colour {g}");
            }
        }
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
