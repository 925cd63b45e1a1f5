//! Time-bucket arithmetic in one place: the bucket sizes of the rollups
//! (minute, hour, day), rounding up, and the current minute. The rollup
//! writers, the metric queries and the chart handlers all count in these.

/// Seconds per minute, the finest rollup bucket.
pub const SECONDS_PER_MINUTE: i64 = 60;
/// Seconds per hour, the middle rollup bucket.
pub const SECONDS_PER_HOUR: i64 = 3_600;
/// Seconds per day, the coarsest rollup bucket.
pub const SECONDS_PER_DAY: i64 = 86_400;
/// Minutes per hour, for minute-numbered buckets.
pub const MINUTES_PER_HOUR: i64 = SECONDS_PER_HOUR / SECONDS_PER_MINUTE;
/// Hours per day, for hour-numbered buckets.
pub const HOURS_PER_DAY: i64 = SECONDS_PER_DAY / SECONDS_PER_HOUR;

/// `a / b` rounded up, for `b > 0`, correct for negative `a` too (a window may
/// start before 1970).
pub fn ceil_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b) + i64::from(a.rem_euclid(b) != 0)
}

/// The minute (minutes since the epoch) that epoch second `second` falls in.
pub fn minute_of(second: i64) -> i64 {
    second.div_euclid(SECONDS_PER_MINUTE)
}

/// The end of every window that has none (`2100-01-01T00:00:00Z`): later
/// than any event can be (they are at most minutes ahead of the clock), and
/// a whole day, so a window up to it ends in whole days.
pub const END_OF_TIME: i64 = 4_102_444_800;

/// A window of time: `[from, to)` in epoch seconds. Half-open, so windows
/// that meet share no second; one with no end ends at [`END_OF_TIME`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// Every second an event can have.
    pub const EVER: Window = Window {
        from: 0,
        to: END_OF_TIME,
    };

    /// From `from` on, with no end.
    pub fn since(from: i64) -> Window {
        Window {
            from,
            to: END_OF_TIME,
        }
    }

    /// Whether second `at` lies in the window.
    pub fn contains(self, at: i64) -> bool {
        self.from <= at && at < self.to
    }
}

/// Consecutive buckets of whole minutes: `count` buckets of `minutes` each,
/// the first starting at minute `first_minute` since the epoch (a timeline's
/// points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub first_minute: i64,
    pub minutes: i64,
    pub count: usize,
}

impl Buckets {
    /// The first bucket's start, in epoch seconds.
    pub fn start(self) -> i64 {
        self.first_minute * SECONDS_PER_MINUTE
    }

    /// A bucket's width, in seconds.
    pub fn seconds(self) -> i64 {
        self.minutes * SECONDS_PER_MINUTE
    }

    /// The seconds the buckets cover, first to last.
    pub fn window(self) -> Window {
        Window {
            from: self.start(),
            to: self.start() + self.seconds() * self.count as i64,
        }
    }

    /// The bucket second `at` falls in, if any.
    pub fn index_of(self, at: i64) -> Option<usize> {
        if !self.window().contains(at) {
            return None;
        }
        usize::try_from((at - self.start()) / self.seconds()).ok()
    }
}

/// Hours since the epoch, `first..=last`: the hours of archive files, or of
/// events' `created_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourRange {
    pub first: i64,
    pub last: i64,
}

impl HourRange {
    /// The one hour `hour`.
    pub fn one(hour: i64) -> HourRange {
        HourRange {
            first: hour,
            last: hour,
        }
    }

    /// The hours that the seconds `first..=last` fall in.
    pub fn of_seconds(first: i64, last: i64) -> HourRange {
        HourRange {
            first: first.div_euclid(SECONDS_PER_HOUR),
            last: last.div_euclid(SECONDS_PER_HOUR),
        }
    }

    pub fn hours(self) -> impl Iterator<Item = i64> {
        self.first..=self.last
    }

    pub fn len(self) -> i64 {
        self.last - self.first + 1
    }

    pub fn is_empty(self) -> bool {
        self.len() <= 0
    }
}

/// A window `[from, to)` of epoch seconds as the rollups read it: the seconds
/// before its first whole minute, the minutes before its first whole hour,
/// the hours before its first whole day, its whole days, then the same at
/// its end. Each is a half-open range in its own unit; they are disjoint,
/// some are empty, and together they are exactly the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowParts {
    pub head_seconds: (i64, i64),
    pub head_minutes: (i64, i64),
    pub head_hours: (i64, i64),
    pub days: (i64, i64),
    pub tail_hours: (i64, i64),
    pub tail_minutes: (i64, i64),
    pub tail_seconds: (i64, i64),
}

impl WindowParts {
    /// The parts of `[from, to)` (empty when `to <= from`).
    pub fn of(from: i64, to: i64) -> WindowParts {
        let mut parts = WindowParts::default();
        if to <= from {
            return parts;
        }
        let (m0, m1) = (
            ceil_div(from, SECONDS_PER_MINUTE),
            to.div_euclid(SECONDS_PER_MINUTE),
        );
        if m0 >= m1 {
            parts.head_seconds = (from, to);
            return parts;
        }
        parts.head_seconds = (from, m0 * SECONDS_PER_MINUTE);
        parts.tail_seconds = (m1 * SECONDS_PER_MINUTE, to);
        let (h0, h1) = (
            ceil_div(m0, MINUTES_PER_HOUR),
            m1.div_euclid(MINUTES_PER_HOUR),
        );
        if h0 >= h1 {
            parts.head_minutes = (m0, m1);
            return parts;
        }
        parts.head_minutes = (m0, h0 * MINUTES_PER_HOUR);
        parts.tail_minutes = (h1 * MINUTES_PER_HOUR, m1);
        let (d0, d1) = (ceil_div(h0, HOURS_PER_DAY), h1.div_euclid(HOURS_PER_DAY));
        if d0 >= d1 {
            parts.head_hours = (h0, h1);
            return parts;
        }
        parts.head_hours = (h0, d0 * HOURS_PER_DAY);
        parts.tail_hours = (d1 * HOURS_PER_DAY, h1);
        parts.days = (d0, d1);
        parts
    }

    /// Every part as seconds, in time order (empty ones included).
    pub fn as_seconds(&self) -> [(i64, i64); 7] {
        let scaled = |(a, b): (i64, i64), unit: i64| (a * unit, b * unit);
        [
            self.head_seconds,
            scaled(self.head_minutes, SECONDS_PER_MINUTE),
            scaled(self.head_hours, SECONDS_PER_HOUR),
            scaled(self.days, SECONDS_PER_DAY),
            scaled(self.tail_hours, SECONDS_PER_HOUR),
            scaled(self.tail_minutes, SECONDS_PER_MINUTE),
            self.tail_seconds,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of a window tile it exactly, in order, each in whole units
    /// of its level, whatever the boundaries (independently: by walking the
    /// parts and checking each second is covered once).
    #[test]
    fn window_parts_tile_the_window() {
        let day = SECONDS_PER_DAY;
        let windows = [
            (0, 0),
            (10, 5),
            (100, 130),
            (59, 61),
            (30, 3 * 3600 + 90),
            (
                1_420_070_400 + 1_800 + 7,
                1_420_070_400 + 3 * 3_600 + 1_800 - 3,
            ),
            (1_420_070_400 - 5, 1_420_070_400 + 3 * day + 17),
            (1_600_000_000, END_OF_TIME),
            (1_420_070_400, 1_420_070_400 + day),
        ];
        for (from, to) in windows {
            let parts = WindowParts::of(from, to);
            let mut at = from;
            for (start, end) in parts.as_seconds() {
                if start == end {
                    continue;
                }
                assert!(start < end, "{from}..{to}: {parts:?}");
                assert_eq!(start, at, "{from}..{to}: {parts:?}");
                at = end;
            }
            let end = if to > from { to } else { from };
            assert_eq!(at, end, "{from}..{to}");
            // Whole units where the level says so.
            let units = [
                1,
                SECONDS_PER_MINUTE,
                SECONDS_PER_HOUR,
                day,
                SECONDS_PER_HOUR,
                SECONDS_PER_MINUTE,
                1,
            ];
            for ((start, end), unit) in parts.as_seconds().into_iter().zip(units) {
                assert_eq!(
                    (start % unit, end % unit),
                    (0, 0),
                    "{from}..{to}: {parts:?}"
                );
            }
            // The coarse levels are used whenever the window holds them.
            if to - from >= 2 * day {
                assert!(parts.days.1 > parts.days.0, "{from}..{to}");
            }
        }
    }

    #[test]
    fn ceil_div_rounds_up_for_either_sign() {
        for (a, b) in [
            (0, 60),
            (1, 60),
            (59, 60),
            (60, 60),
            (61, 60),
            (-1, 60),
            (-60, 60),
            (-61, 60),
            (7, 3),
        ] {
            let exact = (a as f64 / b as f64).ceil() as i64;
            assert_eq!(ceil_div(a, b), exact, "{a} / {b}");
        }
    }

    #[test]
    fn minutes_floor_for_either_sign() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(59), 0);
        assert_eq!(minute_of(60), 1);
        assert_eq!(minute_of(-1), -1);
    }
}
