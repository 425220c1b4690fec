//! Business hours: a weekly schedule in the tenant's local time, given as a fixed offset from
//! UTC, and holidays (local dates closed all day). (A fixed offset does not follow daylight
//! saving time; the tenant updates it twice a year, or a time-zone database can compute it
//! later without changing this type.)

use switchboard_events::Timestamp;

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;
const WEEK: i64 = 7 * DAY;

pub use switchboard_events::tenant::Day;

/// How many days `day` comes after Monday.
fn index(day: Day) -> i64 {
    day as i64
}

/// Open on `day` from `open` to `close`, in minutes after local midnight (`close` ≤ 1440;
/// `open` < `close`: a shift past midnight is two openings).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Opening {
    pub day: Day,
    pub open: u16,
    pub close: u16,
}

/// A weekly schedule, the offset of its local time from UTC, and the holidays.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BusinessHours {
    /// Local time minus UTC, in minutes (e.g. 60 for CET, -300 for EST).
    pub utc_offset_minutes: i32,
    pub openings: Vec<Opening>,
    /// Local days closed all day, as days since 1970-01-01.
    pub holidays: Vec<i64>,
}

impl BusinessHours {
    /// Monday to Friday, `open` to `close` local time, in minutes after midnight.
    pub fn weekdays(open: u16, close: u16, utc_offset_minutes: i32) -> Self {
        Self {
            utc_offset_minutes,
            openings: Day::ALL[..5]
                .iter()
                .map(|&day| Opening { day, open, close })
                .collect(),
            holidays: Vec::new(),
        }
    }

    fn offset(&self) -> i64 {
        i64::from(self.utc_offset_minutes) * MINUTE
    }

    /// Whether `at` falls on a holiday, in local time.
    fn is_holiday(&self, at: Timestamp) -> bool {
        let day = (at.as_micros() + self.offset()).div_euclid(DAY);
        self.holidays.contains(&day)
    }

    /// Micros since the start of the local week (Monday 00:00) and the start of that week,
    /// in UTC micros.
    fn week_position(&self, at: Timestamp) -> (i64, i64) {
        let local = at.as_micros() + self.offset();
        // 1970-01-01 was a Thursday: Monday 1969-12-29 starts the first week.
        let since_monday = local + 3 * DAY;
        let into_week = since_monday.rem_euclid(WEEK);
        (into_week, at.as_micros() - into_week)
    }

    /// The openings as micros since the local week's start.
    fn spans(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.openings.iter().map(|o| {
            let day = index(o.day) * DAY;
            (
                day + i64::from(o.open) * MINUTE,
                day + i64::from(o.close.min(1440)) * MINUTE,
            )
        })
    }

    /// Whether support is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        if self.is_holiday(at) {
            return false;
        }
        let (into_week, _) = self.week_position(at);
        self.spans()
            .any(|(open, close)| open <= into_week && into_week < close)
    }

    /// The next time after `at` when support opens or closes; `None` for an empty schedule.
    pub fn next_change(&self, at: Timestamp) -> Option<Timestamp> {
        let (into_week, week_start) = self.week_position(at);
        let mut next: Option<i64> = None;
        for week in [0, WEEK] {
            for (open, close) in self.spans() {
                for edge in [open + week, close + week] {
                    if edge > into_week && next.is_none_or(|n| edge < n) {
                        next = Some(edge);
                    }
                }
            }
        }
        // A holiday starts and ends at local midnight.
        let holiday_edges = self.holidays.iter().flat_map(|day| {
            let start = day * DAY - self.offset();
            [start, start + DAY]
        });
        let mut next = next.map(|edge| week_start + edge);
        for edge in holiday_edges {
            if edge > at.as_micros() && next.is_none_or(|n| edge < n) {
                next = Some(edge);
            }
        }
        next.map(Timestamp)
    }

    /// The next time at or after `at` when support is open; `None` for an empty schedule.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let mut t = at;
        // At most two edges per opening per week separate `at` from the next opening, and two
        // per holiday; holidays in a row can close whole weeks.
        let weeks = self.holidays.len() / 7 + 2;
        for _ in 0..=(2 * self.openings.len() + 2) * weeks + 2 * self.holidays.len() {
            t = self.next_change(t)?;
            if self.is_open(t) {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-05, a Monday, 00:00 UTC.
    const MONDAY: i64 = 1_767_571_200_000_000;

    fn at(day: i64, hour: i64, minute: i64) -> Timestamp {
        Timestamp(MONDAY + day * DAY + hour * 60 * MINUTE + minute * MINUTE)
    }

    #[test]
    fn weekdays_nine_to_five_in_utc() {
        let hours = BusinessHours::weekdays(9 * 60, 17 * 60, 0);
        assert!(!hours.is_open(at(0, 8, 59)));
        assert!(hours.is_open(at(0, 9, 0)));
        assert!(hours.is_open(at(4, 16, 59)));
        assert!(!hours.is_open(at(4, 17, 0)));
        assert!(!hours.is_open(at(5, 12, 0)), "saturday is closed");
        assert_eq!(hours.next_change(at(0, 8, 0)), Some(at(0, 9, 0)));
        assert_eq!(hours.next_change(at(0, 9, 0)), Some(at(0, 17, 0)));
        assert_eq!(
            hours.next_open(at(4, 18, 0)),
            Some(at(7, 9, 0)),
            "friday evening waits for monday"
        );
    }

    #[test]
    fn the_offset_shifts_local_time() {
        // 09:00-17:00 at UTC+2 is 07:00-15:00 UTC.
        let hours = BusinessHours::weekdays(9 * 60, 17 * 60, 120);
        assert!(hours.is_open(at(0, 7, 0)));
        assert!(!hours.is_open(at(0, 15, 0)));
        // Sunday 23:00 UTC is Monday 01:00 local: still closed; Monday opens at 07:00 UTC.
        assert_eq!(hours.next_open(at(-1, 23, 0)), Some(at(0, 7, 0)));
        // At UTC-5, Friday 21:00 UTC is 16:00 local: open.
        assert!(BusinessHours::weekdays(9 * 60, 17 * 60, -300).is_open(at(4, 21, 0)));
    }

    #[test]
    fn holidays_close_whole_local_days() {
        // Monday 2026-01-05 (day 20458) is a holiday at UTC+1.
        let mut hours = BusinessHours::weekdays(9 * 60, 17 * 60, 60);
        hours.holidays = vec![MONDAY / DAY];
        assert!(!hours.is_open(at(0, 12, 0)));
        assert!(hours.is_open(at(1, 12, 0)), "tuesday is open");
        // Sunday 23:00 UTC is Monday 00:00 local: the holiday starts.
        assert_eq!(hours.next_change(at(-1, 22, 0)), Some(at(-1, 23, 0)));
        assert_eq!(hours.next_open(at(0, 7, 0)), Some(at(1, 8, 0)));
        // A fortnight of holidays waits it out.
        hours.holidays = (0..14).map(|d| MONDAY / DAY + d).collect();
        assert_eq!(hours.next_open(at(0, 7, 0)), Some(at(14, 8, 0)));
    }

    #[test]
    fn an_empty_schedule_never_opens() {
        let hours = BusinessHours {
            utc_offset_minutes: 0,
            openings: vec![],
            holidays: vec![],
        };
        assert!(!hours.is_open(at(0, 12, 0)));
        assert_eq!(hours.next_change(at(0, 12, 0)), None);
        assert_eq!(hours.next_open(at(0, 12, 0)), None);
    }
}
