//! How a tenant routes: the configuration a supervisor sets, with defaults that suit a small
//! support team. A tenant with a record takes its routing settings from the latest settings
//! event ([`RoutingConfig::apply_settings`]); a tenant without one keeps the static
//! configuration.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_events::id::TenantId;
use switchboard_events::tenant::TenantSettings;

use crate::routing::hours::{BusinessHours, Opening};

/// How the router spreads conversations over the agents that can take them (skills matching
/// and the VIP-first, priority, longest-waiting order apply under both): a tenant setting.
pub use switchboard_events::tenant::Distribution;

/// A tenant's routing configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoutingConfig {
    /// Round robin (the default) or least busy.
    pub distribution: Distribution,
    /// How long an assigned agent has to write to the customer before the conversation moves
    /// to another agent. Default: 2 minutes.
    pub no_answer_timeout: Duration,
    /// When the tenant's support is open; `None` (the default) is always open.
    pub business_hours: Option<BusinessHours>,
    /// What a customer who writes outside business hours is told, once per conversation.
    pub offline_message: String,
    /// The most conversations that may wait in the tenant's queue. A new conversation is
    /// refused ("we are very busy, please try again later") while this many wait.
    /// Default: 200. A customer's waiting conversations count towards it only up to
    /// [`CustomerCaps::max_waiting`], so one customer cannot fill it.
    pub queue_limit: usize,
    /// How many conversations one customer may have open and waiting.
    pub customer_caps: CustomerCaps,
    /// The conversations an agent may hold until they set a capacity of their own. Default: 3.
    pub default_capacity: u32,
    /// How long a conversation takes an agent, for wait estimates while too few recent
    /// assignments are known. Default: 5 minutes.
    pub expected_handle_time: Duration,
    /// Assignments older than this do not count towards the wait estimate. Default: 30 minutes.
    pub estimate_window: Duration,
    /// The resolved conversations the router remembers, so that a reopening goes back to
    /// its agent; beyond, the resolved longest ago are forgotten and a reopening of one of
    /// them waits for any agent. Default: 1,000 ([`RouterSettings`]).
    pub max_resolved: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            distribution: Distribution::RoundRobin,
            no_answer_timeout: Duration::from_secs(120),
            business_hours: None,
            offline_message: "Thanks for your message! We are closed right now; an agent will \
                              answer as soon as we open."
                .to_owned(),
            queue_limit: 200,
            customer_caps: CustomerCaps::default(),
            default_capacity: 3,
            expected_handle_time: Duration::from_secs(300),
            estimate_window: Duration::from_secs(1800),
            max_resolved: RouterSettings::default().max_resolved,
        }
    }
}

/// The router's settings every tenant shares (`[router]` in the binary's configuration).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSettings {
    /// Resolved conversations remembered per tenant ([`RoutingConfig::max_resolved`]).
    pub max_resolved: usize,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            max_resolved: 1_000,
        }
    }
}

impl RouterSettings {
    /// The routing of every tenant: the defaults under these settings.
    pub fn routing(self) -> RoutingConfigs {
        RoutingConfigs::new(RoutingConfig {
            max_resolved: self.max_resolved,
            ..RoutingConfig::default()
        })
    }
}

/// The most conversations one customer may have at a time; a customer's open beyond either
/// is refused (`too_many_open_conversations`). Opens by staff and services are not capped.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomerCaps {
    /// Conversations not resolved (waiting, assigned or snoozed). Default: 10.
    pub max_open: usize,
    /// Conversations waiting for an agent. Default: 3.
    pub max_waiting: usize,
}

impl Default for CustomerCaps {
    fn default() -> Self {
        Self {
            max_open: 10,
            max_waiting: 3,
        }
    }
}

impl RoutingConfig {
    /// Takes the routing settings of a tenant's record: distribution, no-answer timeout,
    /// business hours, offline message, queue limit and customer limits. The rest (estimate
    /// parameters, memory bounds) stays as configured for the instance.
    pub fn apply_settings(&mut self, settings: &TenantSettings) {
        self.distribution = settings.routing.distribution;
        self.no_answer_timeout =
            Duration::from_secs(u64::from(settings.routing.no_answer_timeout_seconds));
        self.business_hours = settings.business_hours.as_ref().map(|hours| BusinessHours {
            utc_offset_minutes: hours.utc_offset_minutes,
            // Validated when the settings were written; what does not read is left out.
            openings: hours
                .openings
                .iter()
                .filter_map(|o| {
                    let (open, close) = o.minutes().ok()?;
                    Some(Opening {
                        day: o.day,
                        open,
                        close,
                    })
                })
                .collect(),
            holidays: hours.holiday_days().unwrap_or_default(),
        });
        self.offline_message = settings.offline_message.clone();
        self.queue_limit = settings.queue_limit as usize;
        self.customer_caps = CustomerCaps {
            max_open: settings.customer_limits.max_open as usize,
            max_waiting: settings.customer_limits.max_waiting as usize,
        };
    }
}

/// Every tenant's routing configuration: the tenant's own, or the default.
#[derive(Clone, Debug, Default)]
pub struct RoutingConfigs {
    pub default: RoutingConfig,
    pub tenants: HashMap<TenantId, RoutingConfig>,
}

impl RoutingConfigs {
    pub fn new(default: RoutingConfig) -> Self {
        Self {
            default,
            tenants: HashMap::new(),
        }
    }

    pub fn with_tenant(mut self, tenant: TenantId, config: RoutingConfig) -> Self {
        self.tenants.insert(tenant, config);
        self
    }

    pub fn get(&self, tenant: &TenantId) -> &RoutingConfig {
        self.tenants.get(tenant).unwrap_or(&self.default)
    }
}

/// A duration in the microseconds timestamps count in, saturating.
pub(crate) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
