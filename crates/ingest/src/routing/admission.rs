//! The admission gate: whether a conversation may be opened now.
//!
//! It counts from the router's view of each tenant — every customer's open and waiting
//! conversations, folded from the events, so a restart rebuilds it from the log — plus the
//! opens it let in that the router has not folded yet. An open holds a place from the moment
//! it is admitted: while the writer appends it, then, once acknowledged, until the router has
//! folded it. So concurrent opens of one customer cannot slip past the caps between two
//! rounds of the router. Places are never kept longer than [`UNFOLDED_GRACE`] after the
//! acknowledgement, so a router that falls behind cannot lock a customer out for good.
//!
//! A customer's own resolution counts the other way from its acknowledgement: the conversation
//! no longer counts against the customer's caps, though the router has not folded it yet, so a
//! customer who resolves a conversation and opens another at once is not refused for one that
//! is over. The gate does not know whether the router counted a resolved conversation as
//! waiting or only as open: until the router folds the resolution (or for [`UNFOLDED_GRACE`] at
//! most) it counts it as neither, so the waiting cap may let one more in for each assigned
//! conversation the customer resolved in that time. The open cap holds exactly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use switchboard_events::id::{ConversationId, CustomerId, TenantId};
use switchboard_events::principal::{Principal, Role};

use crate::error::CommandError;
use crate::routing::config::{CustomerCaps, RoutingConfigs};
use crate::routing::router::{Router, admit};
use crate::routing::state::CustomerLoad;

/// How long an acknowledged open holds its place while the router has not folded it.
pub const UNFOLDED_GRACE: Duration = Duration::from_secs(10);

/// Whether a conversation may be opened, as of the router's last round and the opens under
/// way. Cheap to clone; the driver updates it, the command API asks it.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    inner: Arc<Mutex<Gates>>,
}

#[derive(Debug, Default)]
struct Gates {
    configs: RoutingConfigs,
    tenants: HashMap<TenantId, TenantGate>,
    next_place: u64,
}

/// One tenant's counts.
#[derive(Debug)]
struct TenantGate {
    caps: CustomerCaps,
    customers: HashMap<CustomerId, CustomerGate>,
    /// The sum over customers of their waiting conversations, each up to its cap.
    counted_waiting: usize,
    /// Opens admitted and not yet folded by the router.
    places: HashMap<u64, Place>,
    /// Opens the router folded before their acknowledgement came back.
    folded_early: HashMap<ConversationId, Instant>,
    /// Customers' own resolutions acknowledged and not yet folded by the router: whose, and
    /// since when.
    resolving: HashMap<ConversationId, (CustomerId, Instant)>,
    /// Customers' resolutions sent to the writer and not yet answered.
    resolves_in_flight: usize,
    /// Resolutions the router folded while some were in flight: an acknowledgement that comes
    /// back for one of these takes nothing off.
    resolved_early: HashMap<ConversationId, Instant>,
}

#[derive(Debug, Default)]
struct CustomerGate {
    folded: CustomerLoad,
    /// Places held by opens for this customer.
    held: usize,
    /// The customer's acknowledged resolutions the router has not folded.
    resolving: usize,
}

impl CustomerGate {
    /// An open under way counts as open and waiting; a resolution under way as neither.
    fn load(&self) -> CustomerLoad {
        CustomerLoad {
            open: (self.folded.open + self.held).saturating_sub(self.resolving),
            waiting: (self.folded.waiting + self.held).saturating_sub(self.resolving),
        }
    }
}

#[derive(Debug)]
struct Place {
    customer: CustomerId,
    /// Known once the open is acknowledged.
    conversation: Option<ConversationId>,
    since: Instant,
}

impl TenantGate {
    fn new(configs: &RoutingConfigs, tenant: &TenantId) -> Self {
        Self {
            caps: configs.get(tenant).customer_caps,
            customers: HashMap::new(),
            counted_waiting: 0,
            places: HashMap::new(),
            folded_early: HashMap::new(),
            resolving: HashMap::new(),
            resolves_in_flight: 0,
            resolved_early: HashMap::new(),
        }
    }

    /// Changes a customer's counts, keeping the tenant's sum right.
    fn change(&mut self, customer: &CustomerId, f: impl FnOnce(&mut CustomerGate)) {
        let cap = self.caps.max_waiting;
        let gate = self.customers.entry(customer.clone()).or_default();
        let before = gate.load().waiting.min(cap);
        f(gate);
        let after = gate.load().waiting.min(cap);
        if gate.held == 0 && gate.resolving == 0 && gate.folded == CustomerLoad::default() {
            self.customers.remove(customer);
        }
        self.counted_waiting = (self.counted_waiting + after).saturating_sub(before);
    }

    fn release(&mut self, place: u64) {
        if let Some(place) = self.places.remove(&place) {
            self.change(&place.customer, |c| c.held = c.held.saturating_sub(1));
        }
    }

    /// Forgets what the router should have folded by now.
    fn expire(&mut self, now: Instant) {
        let old = |since: Instant| now.saturating_duration_since(since) > UNFOLDED_GRACE;
        let expired: Vec<u64> = self
            .places
            .iter()
            .filter(|(_, p)| p.conversation.is_some() && old(p.since))
            .map(|(id, _)| *id)
            .collect();
        for place in expired {
            self.release(place);
        }
        self.folded_early.retain(|_, since| !old(*since));
        let expired: Vec<ConversationId> = self
            .resolving
            .iter()
            .filter(|(_, (_, since))| old(*since))
            .map(|(id, _)| id.clone())
            .collect();
        for conversation in expired {
            self.folded_resolution(&conversation);
        }
        self.resolved_early.retain(|_, since| !old(*since));
    }

    /// The router folded the resolution of `conversation` (or gave up on doing so in time):
    /// its customer's counts come from the router again.
    fn folded_resolution(&mut self, conversation: &ConversationId) -> bool {
        match self.resolving.remove(conversation) {
            Some((customer, _)) => {
                self.change(&customer, |c| c.resolving = c.resolving.saturating_sub(1));
                true
            }
            None => false,
        }
    }
}

impl Admission {
    /// A gate for tenants configured by `configs` (their queue limits and customer caps).
    pub fn new(configs: RoutingConfigs) -> Self {
        let gates = Gates {
            configs,
            ..Gates::default()
        };
        Self {
            inner: Arc::new(Mutex::new(gates)),
        }
    }

    fn gates(&self) -> std::sync::MutexGuard<'_, Gates> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `principal` may open a conversation for `customer` now: `Ok` holds a place
    /// until the returned [`Held`] is dropped or, once the open is acknowledged, until the
    /// router has folded it. A customer opening for themselves is held to their caps
    /// (`too_many_open_conversations`); anyone is refused while the tenant's queue is full
    /// (`overloaded`). A tenant the router has not seen yet has an empty queue.
    pub fn admit(
        &self,
        principal: &Principal,
        customer: &CustomerId,
        now: Instant,
    ) -> Result<Held, CommandError> {
        let mut gates = self.gates();
        let Gates {
            configs,
            tenants,
            next_place,
        } = &mut *gates;
        let tenant = tenants
            .entry(principal.tenant.clone())
            .or_insert_with(|| TenantGate::new(configs, &principal.tenant));
        tenant.expire(now);
        let load = (principal.role == Role::Customer).then(|| {
            tenant
                .customers
                .get(customer)
                .map(CustomerGate::load)
                .unwrap_or_default()
        });
        let limits = configs.get(&principal.tenant);
        admit(load, tenant.counted_waiting, limits)?;
        *next_place += 1;
        let place = *next_place;
        tenant.places.insert(
            place,
            Place {
                customer: customer.clone(),
                conversation: None,
                since: now,
            },
        );
        tenant.change(customer, |c| c.held += 1);
        Ok(Held {
            admission: self.clone(),
            tenant: principal.tenant.clone(),
            place: Some(place),
        })
    }

    /// Takes in the router's last round: the loads of the customers whose conversations had
    /// events, and the conversations it folded the opening of.
    pub(crate) fn update(&self, router: &mut Router, now: Instant) {
        let touched = std::mem::take(&mut router.touched);
        let opened = std::mem::take(&mut router.opened);
        let closed = std::mem::take(&mut router.closed);
        let mut gates = self.gates();
        let Gates {
            configs, tenants, ..
        } = &mut *gates;
        // The router's configuration follows the tenant's settings events: so does the gate.
        if configs.get(router.tenant()) != router.config() {
            configs
                .tenants
                .insert(router.tenant().clone(), router.config().clone());
        }
        let tenant = tenants
            .entry(router.tenant().clone())
            .or_insert_with(|| TenantGate::new(configs, router.tenant()));
        tenant.caps = router.config().customer_caps;
        for customer in touched {
            let folded = router
                .state()
                .customers
                .get(&customer)
                .copied()
                .unwrap_or_default();
            tenant.change(&customer, |c| c.folded = folded);
        }
        // The folded loads above no longer count these: neither does the credit.
        for conversation in closed {
            if !tenant.folded_resolution(&conversation) && tenant.resolves_in_flight > 0 {
                tenant.resolved_early.insert(conversation, now);
            }
        }
        // An open may be folded before its acknowledgement comes back; only then is it kept.
        let awaiting_ack = tenant.places.values().any(|p| p.conversation.is_none());
        for conversation in opened {
            let place = tenant
                .places
                .iter()
                .find(|(_, p)| p.conversation.as_ref() == Some(&conversation))
                .map(|(id, _)| *id);
            match place {
                Some(place) => tenant.release(place),
                None if awaiting_ack => {
                    tenant.folded_early.insert(conversation, now);
                }
                None => {}
            }
        }
        tenant.expire(now);
        let customers = tenants.values().map(|t| t.customers.len()).sum();
        crate::metrics::admission_customers(customers);
    }

    /// The open holding `place` was acknowledged as `conversation`.
    fn acknowledged(
        &self,
        tenant: &TenantId,
        place: u64,
        conversation: ConversationId,
        now: Instant,
    ) {
        let mut gates = self.gates();
        let Some(tenant) = gates.tenants.get_mut(tenant) else {
            return;
        };
        if tenant.folded_early.remove(&conversation).is_some() {
            tenant.release(place);
        } else if let Some(held) = tenant.places.get_mut(&place) {
            held.conversation = Some(conversation);
            held.since = now;
        }
    }

    fn release(&self, tenant: &TenantId, place: u64) {
        if let Some(tenant) = self.gates().tenants.get_mut(tenant) {
            tenant.release(place);
        }
    }

    /// A customer is resolving one of their conversations: `None` for anyone else, whose
    /// resolutions the caps do not wait for. Answer the outcome on the returned
    /// [`Resolving`]; dropped unanswered, the resolution changed nothing.
    pub fn resolving(&self, principal: &Principal) -> Option<Resolving> {
        if principal.role != Role::Customer {
            return None;
        }
        let customer = CustomerId::new(principal.subject.as_str()).ok()?;
        let mut gates = self.gates();
        let Gates {
            configs, tenants, ..
        } = &mut *gates;
        tenants
            .entry(principal.tenant.clone())
            .or_insert_with(|| TenantGate::new(configs, &principal.tenant))
            .resolves_in_flight += 1;
        Some(Resolving {
            admission: self.clone(),
            tenant: principal.tenant.clone(),
            customer: Some(customer),
        })
    }

    fn answered(
        &self,
        tenant: &TenantId,
        resolved: Option<(CustomerId, ConversationId)>,
        now: Instant,
    ) {
        let mut gates = self.gates();
        let Some(tenant) = gates.tenants.get_mut(tenant) else {
            return;
        };
        tenant.resolves_in_flight = tenant.resolves_in_flight.saturating_sub(1);
        let Some((customer, conversation)) = resolved else {
            return;
        };
        if tenant.resolved_early.remove(&conversation).is_some()
            || tenant.resolving.contains_key(&conversation)
        {
            return;
        }
        tenant.change(&customer, |c| c.resolving += 1);
        tenant.resolving.insert(conversation, (customer, now));
    }
}

/// A customer's resolution under way (see [`Admission::resolving`]).
#[derive(Debug)]
pub struct Resolving {
    admission: Admission,
    tenant: TenantId,
    customer: Option<CustomerId>,
}

impl Resolving {
    /// The writer resolved `conversation` (acknowledged at `now`): it counts against the
    /// customer's caps no more, while the router catches up.
    pub fn resolved(mut self, conversation: ConversationId, now: Instant) {
        if let Some(customer) = self.customer.take() {
            self.admission
                .answered(&self.tenant, Some((customer, conversation)), now);
        }
    }
}

impl Drop for Resolving {
    fn drop(&mut self) {
        if self.customer.take().is_some() {
            self.admission.answered(&self.tenant, None, Instant::now());
        }
    }
}

/// A place in the gate held by an open under way. Dropped before [`Held::opened`], it frees
/// the place: the open failed, was a retry, or its caller went away.
#[derive(Debug)]
pub struct Held {
    admission: Admission,
    tenant: TenantId,
    place: Option<u64>,
}

impl Held {
    /// The open created `conversation` (acknowledged at `now`): its place is held until the
    /// router folds it.
    pub fn opened(mut self, conversation: ConversationId, now: Instant) {
        if let Some(place) = self.place.take() {
            self.admission
                .acknowledged(&self.tenant, place, conversation, now);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(place) = self.place.take() {
            self.admission.release(&self.tenant, place);
        }
    }
}
