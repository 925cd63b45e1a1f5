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

#[cfg(test)]
mod tests {
    use super::*;

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
