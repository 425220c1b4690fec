//! Tenants as records: a tenant's settings are events of record on the agent topic (keyed by
//! tenant, so the router that owns the tenant reads them in order with its agents). Each change
//! is a [`TenantSettingsChanged`] on the tenant's own chain, the reserved stream
//! [`TENANT_STREAM`]: the envelope says who changed the settings and when, `changed` names what
//! changed, and `settings` holds the whole document after the change, so the latest event of a
//! tenant is its settings. The first event of the chain creates the tenant.
//!
//! The document ([`TenantSettings`]) is JSON inside the Avro record: its own shape evolves by
//! serde defaults (every field has one), so an event written by an older build reads in a newer
//! one.

use serde::{Deserialize, Serialize};

use crate::avro::wire::record;
use crate::id::{AgentId, Label, TeamId};

/// The stream id, in the agent envelope, of a tenant's settings chain. No agent may have it.
pub const TENANT_STREAM: &str = ":tenant";

/// [`TENANT_STREAM`] as the agent id the envelope carries.
pub fn tenant_stream() -> AgentId {
    AgentId::new(TENANT_STREAM).expect("a valid id")
}

/// A change of a tenant's settings: the whole document after it, and the names of the
/// top-level settings that changed (on creation, those that differ from the defaults).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TenantSettingsChanged {
    pub changed: Vec<String>,
    /// A [`TenantSettings`] document, as JSON.
    pub settings: String,
}

record!(TenantSettingsChanged { changed, settings });

impl TenantSettingsChanged {
    /// The settings this event sets.
    pub fn document(&self) -> Result<TenantSettings, serde_json::Error> {
        serde_json::from_str(&self.settings)
    }
}

/// How the router spreads conversations over the agents who can take them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Each conversation goes to the agent who was given one least recently, so agents take
    /// turns. Ties (agents never given one) go by agent id.
    #[default]
    RoundRobin,
    /// Each conversation goes to the agent with the fewest open conversations; ties go to the
    /// agent given one least recently, then by agent id.
    LeastBusy,
}

/// The routing policy of a tenant.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingPolicy {
    pub distribution: Distribution,
    /// How long an assigned agent has to answer before the conversation moves on.
    pub no_answer_timeout_seconds: u32,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self {
            distribution: Distribution::RoundRobin,
            no_answer_timeout_seconds: 120,
        }
    }
}

/// A team of the tenant, which conversations can be queued for.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
}

/// A day of the week.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    /// Monday to Sunday.
    pub const ALL: [Day; 7] = [
        Day::Monday,
        Day::Tuesday,
        Day::Wednesday,
        Day::Thursday,
        Day::Friday,
        Day::Saturday,
        Day::Sunday,
    ];
}

/// Open on `day` from `open` to `close`, local time `"HH:MM"` (`close` may be `"24:00"`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    pub day: Day,
    pub open: String,
    pub close: String,
}

impl OpeningHours {
    /// `open` and `close` in minutes after local midnight.
    pub fn minutes(&self) -> Result<(u16, u16), SettingsError> {
        let open = clock_minutes(&self.open)?;
        let close = clock_minutes(&self.close)?;
        if open >= close {
            return Err(SettingsError::new(
                "business_hours.openings",
                format!(
                    "{} to {} is empty; a shift past midnight is two openings",
                    self.open, self.close
                ),
            ));
        }
        Ok((open, close))
    }
}

/// When support is open: a weekly schedule in the tenant's local time and the holidays it is
/// closed on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursSettings {
    /// The name of the tenant's time zone, for people (`"Europe/Berlin"`); the router counts
    /// in `utc_offset_minutes`.
    #[serde(default)]
    pub time_zone: String,
    /// Local time minus UTC, in minutes (60 for CET, -300 for EST).
    pub utc_offset_minutes: i32,
    pub openings: Vec<OpeningHours>,
    /// Local dates (`"YYYY-MM-DD"`) closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

impl BusinessHoursSettings {
    /// The holidays as days since 1970-01-01.
    pub fn holiday_days(&self) -> Result<Vec<i64>, SettingsError> {
        self.holidays.iter().map(|d| civil_day(d)).collect()
    }
}

/// How many conversations one customer may have at a time.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerLimits {
    /// Conversations not resolved.
    pub max_open: u32,
    /// Conversations waiting for an agent.
    pub max_waiting: u32,
}

impl Default for CustomerLimits {
    fn default() -> Self {
        Self {
            max_open: 10,
            max_waiting: 3,
        }
    }
}

/// What a pre-chat field asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    #[default]
    Text,
    Email,
}

/// A field the widget asks the visitor to fill in before the chat starts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreChatField {
    pub name: Label,
    pub label: String,
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
}

/// A tenant's settings: the document every [`TenantSettingsChanged`] carries.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// The business's name, shown in the widget.
    pub name: String,
    /// The public key the widget starts visitor sessions with (`wk_…`).
    pub widget_key: String,
    /// Origins (`https://shop.example`, `"*"` for any) the widget may run on.
    pub allowed_origins: Vec<String>,
    pub routing: RoutingPolicy,
    pub teams: Vec<Team>,
    /// `None`: always open.
    pub business_hours: Option<BusinessHoursSettings>,
    /// What a customer who writes outside business hours is told.
    pub offline_message: String,
    /// The most conversations that may wait in the tenant's queue.
    pub queue_limit: u32,
    pub customer_limits: CustomerLimits,
    pub pre_chat_fields: Vec<PreChatField>,
    /// Whether customers are asked to rate a resolved conversation.
    pub csat: bool,
    /// Bumped to rotate the identity-verification secret: the old one stops verifying.
    pub identity_secret_generation: u32,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            widget_key: String::new(),
            allowed_origins: Vec::new(),
            routing: RoutingPolicy::default(),
            teams: Vec::new(),
            business_hours: None,
            offline_message: "Thanks for your message! We are closed right now; an agent will \
                              answer as soon as we open."
                .to_owned(),
            queue_limit: 200,
            customer_limits: CustomerLimits::default(),
            pre_chat_fields: Vec::new(),
            csat: true,
            identity_secret_generation: 1,
        }
    }
}

/// The most of each list a tenant's settings may hold, and the longest texts.
const MAX_ITEMS: usize = 64;
const MAX_TEXT: usize = 2048;

impl TenantSettings {
    /// Checks every setting; the first that is wrong is the error.
    pub fn validate(&self) -> Result<(), SettingsError> {
        text("name", &self.name, 200)?;
        if self.name.trim().is_empty() {
            return Err(SettingsError::new("name", "is empty"));
        }
        if !self.widget_key.starts_with("wk_")
            || self.widget_key.len() > 64
            || !self.widget_key[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err(SettingsError::new(
                "widget_key",
                "is not a widget key (wk_ and letters or digits)",
            ));
        }
        count("allowed_origins", self.allowed_origins.len())?;
        for origin in &self.allowed_origins {
            check_origin(origin)?;
        }
        if !(10..=86_400).contains(&self.routing.no_answer_timeout_seconds) {
            return Err(SettingsError::new(
                "routing.no_answer_timeout_seconds",
                "is not from 10 to 86400",
            ));
        }
        count("teams", self.teams.len())?;
        for team in &self.teams {
            text("teams.name", &team.name, 200)?;
        }
        if let Some(hours) = &self.business_hours {
            if !(-16 * 60..=16 * 60).contains(&hours.utc_offset_minutes) {
                return Err(SettingsError::new(
                    "business_hours.utc_offset_minutes",
                    "is not from -960 to 960",
                ));
            }
            text("business_hours.time_zone", &hours.time_zone, 64)?;
            count("business_hours.openings", hours.openings.len())?;
            count("business_hours.holidays", hours.holidays.len())?;
            for opening in &hours.openings {
                opening.minutes()?;
            }
            hours.holiday_days()?;
        }
        text("offline_message", &self.offline_message, MAX_TEXT)?;
        if !(1..=100_000).contains(&self.queue_limit) {
            return Err(SettingsError::new("queue_limit", "is not from 1 to 100000"));
        }
        let limits = self.customer_limits;
        if limits.max_open == 0 || limits.max_waiting == 0 || limits.max_waiting > limits.max_open {
            return Err(SettingsError::new(
                "customer_limits",
                "max_open and max_waiting must be at least 1, max_waiting at most max_open",
            ));
        }
        count("pre_chat_fields", self.pre_chat_fields.len())?;
        for field in &self.pre_chat_fields {
            text("pre_chat_fields.label", &field.label, 200)?;
        }
        Ok(())
    }

    /// The names of the top-level settings that differ between `self` and `other`.
    pub fn changes_from(&self, other: &TenantSettings) -> Vec<String> {
        let (Ok(serde_json::Value::Object(new)), Ok(serde_json::Value::Object(old))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return Vec::new();
        };
        new.iter()
            .filter(|(key, value)| old.get(*key) != Some(value))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Whether a browser page of `origin` may use this tenant's widget.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
    }
}

/// Why a setting is refused: the setting's name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting}: {reason}")]
pub struct SettingsError {
    pub setting: &'static str,
    pub reason: String,
}

impl SettingsError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

fn text(setting: &'static str, value: &str, max: usize) -> Result<(), SettingsError> {
    if value.len() > max {
        return Err(SettingsError::new(
            setting,
            format!("is {} bytes, the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

fn count(setting: &'static str, n: usize) -> Result<(), SettingsError> {
    if n > MAX_ITEMS {
        return Err(SettingsError::new(
            setting,
            format!("has {n} entries, the limit is {MAX_ITEMS}"),
        ));
    }
    Ok(())
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after; or `"*"`.
fn check_origin(origin: &str) -> Result<(), SettingsError> {
    if origin == "*" {
        return Ok(());
    }
    let bad = || {
        SettingsError::new(
            "allowed_origins",
            format!("{origin:?} is not an origin such as https://shop.example"),
        )
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
    if !matches!(scheme, "http" | "https") || !host_ok || origin.len() > 256 {
        return Err(bad());
    }
    Ok(())
}

/// `"HH:MM"` as minutes after midnight, `"24:00"` included.
fn clock_minutes(value: &str) -> Result<u16, SettingsError> {
    let bad = || {
        SettingsError::new(
            "business_hours.openings",
            format!("{value:?} is not a time HH:MM"),
        )
    };
    let (h, m) = value.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// `"YYYY-MM-DD"` as days since 1970-01-01 (the proleptic Gregorian calendar).
fn civil_day(value: &str) -> Result<i64, SettingsError> {
    let bad = || {
        SettingsError::new(
            "business_hours.holidays",
            format!("{value:?} is not a date YYYY-MM-DD"),
        )
    };
    let mut parts = value.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return Err(bad());
    }
    // Days from civil, after Howard Hinnant's public-domain description of the algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TenantSettings {
        TenantSettings {
            name: "Acme".into(),
            widget_key: "wk_0123abcd".into(),
            allowed_origins: vec!["https://acme.example".into()],
            ..TenantSettings::default()
        }
    }

    #[test]
    fn a_complete_document_validates_and_round_trips() {
        let mut s = settings();
        s.business_hours = Some(BusinessHoursSettings {
            time_zone: "Europe/Berlin".into(),
            utc_offset_minutes: 60,
            openings: vec![OpeningHours {
                day: Day::Monday,
                open: "09:00".into(),
                close: "24:00".into(),
            }],
            holidays: vec!["2026-12-25".into()],
        });
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<TenantSettings>(&json).unwrap(), s);
        // An older document without the newer fields still reads, with defaults.
        let old: TenantSettings = serde_json::from_str(r#"{"name": "Acme"}"#).unwrap();
        assert!(old.csat);
        assert_eq!(old.queue_limit, 200);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        type Change = Box<dyn Fn(&mut TenantSettings)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|s| s.name = " ".into())),
            ("widget_key", Box::new(|s| s.widget_key = "pk_1".into())),
            (
                "allowed_origins",
                Box::new(|s| s.allowed_origins = vec!["https://a.example/path".into()]),
            ),
            (
                "allowed_origins",
                Box::new(|s| s.allowed_origins = vec!["javascript:alert(1)".into()]),
            ),
            ("queue_limit", Box::new(|s| s.queue_limit = 0)),
            (
                "customer_limits",
                Box::new(|s| {
                    s.customer_limits = CustomerLimits {
                        max_open: 1,
                        max_waiting: 2,
                    }
                }),
            ),
            (
                "business_hours.openings",
                Box::new(|s| {
                    s.business_hours = Some(BusinessHoursSettings {
                        time_zone: String::new(),
                        utc_offset_minutes: 0,
                        openings: vec![OpeningHours {
                            day: Day::Friday,
                            open: "17:00".into(),
                            close: "09:00".into(),
                        }],
                        holidays: vec![],
                    })
                }),
            ),
            (
                "business_hours.holidays",
                Box::new(|s| {
                    s.business_hours = Some(BusinessHoursSettings {
                        time_zone: String::new(),
                        utc_offset_minutes: 0,
                        openings: vec![],
                        holidays: vec!["2026-02-30".into()],
                    })
                }),
            ),
        ];
        for (setting, change) in cases {
            let mut s = settings();
            change(&mut s);
            assert_eq!(s.validate().unwrap_err().setting, setting, "{s:?}");
        }
    }

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(civil_day("1970-01-01").unwrap(), 0);
        assert_eq!(civil_day("2026-01-05").unwrap(), 1_767_571_200 / 86_400);
        assert_eq!(civil_day("2000-03-01").unwrap(), 11_017);
        assert!(civil_day("2026-1-05").is_err());
    }

    #[test]
    fn changes_name_the_top_level_settings() {
        let before = settings();
        let mut after = before.clone();
        after.csat = false;
        after.offline_message = "closed".into();
        assert_eq!(after.changes_from(&before), ["csat", "offline_message"]);
        assert!(before.allows_origin("https://acme.example"));
        assert!(!before.allows_origin("https://evil.example"));
    }
}
