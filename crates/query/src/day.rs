//! UTC calendar dates (`2026-01-31`) to and from the store's [`Day`], for reports.

use switchboard_store::report::Day;

/// `YYYY-MM-DD` of a day (days since 1970-01-01), by Howard Hinnant's civil-from-days.
pub fn format(day: Day) -> String {
    let z = i64::from(day.0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day of `YYYY-MM-DD`, `None` when it is not a valid date.
pub fn parse(text: &str) -> Option<Day> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = Day((era * 146_097 + doe - 719_468) as i32);
    // 2026-02-31 would land in March: refuse what does not round-trip.
    (format(day) == text).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_invalid_ones_are_refused() {
        assert_eq!(format(Day(0)), "1970-01-01");
        assert_eq!(format(Day(20_454)), "2026-01-01");
        assert_eq!(parse("2026-01-01"), Some(Day(20_454)));
        assert_eq!(
            parse("2024-02-29").map(format).as_deref(),
            Some("2024-02-29")
        );
        for bad in ["2026-02-31", "2026-13-01", "yesterday", "2026-1-1", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
