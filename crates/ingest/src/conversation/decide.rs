#![doc = include_str!("rules.md")]

use switchboard_events::conversation::*;
use switchboard_events::id::{MessageId, PrincipalId};
use switchboard_events::personal::{Revealed, Sealed};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{ConversationPayload, Seq, Timestamp};

use crate::command::{ConversationCommand, Limits, OpenConversation, PostMessage};
use crate::conversation::state::{ConversationState, Status};
use crate::error::CommandError;

/// Seals and opens personal data with the conversation's customer's key.
pub trait Sealer {
    fn seal(&self, text: &str) -> Result<Sealed, CommandError>;
    fn reveal(&self, sealed: &Sealed) -> Result<Revealed, CommandError>;
}

/// What a decision needs besides the state and the command.
pub struct Context<'a> {
    pub principal: &'a Principal,
    pub now: Timestamp,
    pub limits: &'a Limits,
    pub sealer: &'a dyn Sealer,
    /// The id a new message gets.
    pub message_id: MessageId,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("principal", self.principal)
            .field("now", &self.now)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// The outcome of a command that was not refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    /// Append these events, in order. The command's seq is the last one's.
    Append(Vec<ConversationPayload>),
    /// The command changes nothing (a retry, or already so); its answer is this seq.
    AlreadyDone(Seq),
}

fn forbidden(principal: &Principal, action: &'static str) -> CommandError {
    let role = match principal.role {
        Role::Customer => "a customer",
        Role::Agent => "an agent",
        Role::Supervisor => "a supervisor",
        Role::Auditor => "an auditor",
        Role::Service => "a service",
    };
    CommandError::Forbidden { role, action }
}

/// Decides a command on a conversation (`None` if it does not exist yet).
pub fn decide(
    state: Option<&ConversationState>,
    command: &ConversationCommand,
    ctx: &Context<'_>,
) -> Result<Decision, CommandError> {
    let p = ctx.principal;
    if p.role == Role::Auditor {
        return Err(forbidden(p, "write"));
    }
    if let ConversationCommand::Open(open) = command {
        may_set_on_open(p, open)?;
    }
    let state = match (state, command) {
        (None, ConversationCommand::Open(open)) => return open_new(open, ctx),
        (Some(s), ConversationCommand::Open(open)) => {
            return if s.tenant == p.tenant && s.customer == open.customer_id {
                Ok(Decision::AlreadyDone(Seq::FIRST))
            } else {
                Err(CommandError::ConversationExists(s.id.to_string()))
            };
        }
        (None, _) => return Err(CommandError::not_found("conversation")),
        (Some(s), _) if s.tenant != p.tenant => {
            return Err(CommandError::not_found("conversation"));
        }
        (Some(s), _) if p.role == Role::Customer && !p.is_customer(&s.customer) => {
            return Err(CommandError::not_found("conversation"));
        }
        (Some(s), _) => s,
    };
    let d = Decider { s: state, ctx, p };
    match command {
        ConversationCommand::Open(_) => unreachable!("handled above"),
        ConversationCommand::PostMessage(post) => d.post(post),
        ConversationCommand::EditMessage { message_id, body } => d.edit(message_id, body),
        ConversationCommand::RedactMessage { message_id, reason } => d.redact(message_id, reason),
        ConversationCommand::MarkRead { up_to_seq } => d.mark_read(*up_to_seq),
        ConversationCommand::Assign { agent_id, policy } => d.assign(agent_id, *policy),
        ConversationCommand::Transfer { to, reason } => d.transfer(to, reason),
        ConversationCommand::Queue { team_id, reason } => d.queue(team_id, reason),
        ConversationCommand::Tag { tag } => {
            d.manage("tag this conversation")?;
            if state.tags.contains(tag) {
                return d.unchanged();
            }
            if state.tags.len() >= ctx.limits.max_tags {
                return Err(CommandError::invalid(
                    "tag",
                    format!("at most {} tags", ctx.limits.max_tags),
                ));
            }
            d.append(ConversationTagged { tag: tag.clone() })
        }
        ConversationCommand::Untag { tag } => {
            d.manage("untag this conversation")?;
            if !state.tags.contains(tag) {
                return d.unchanged();
            }
            d.append(ConversationUntagged { tag: tag.clone() })
        }
        ConversationCommand::SetPriority { priority } => {
            d.manage("change the priority")?;
            if state.priority == *priority {
                return d.unchanged();
            }
            d.append(PriorityChanged {
                priority: *priority,
                previous: state.priority,
            })
        }
        ConversationCommand::Snooze { until } => d.snooze(*until),
        ConversationCommand::Resolve => {
            d.owner_or_manage("resolve this conversation")?;
            if state.status == Status::Resolved {
                return d.unchanged();
            }
            d.append(ConversationResolved {})
        }
        ConversationCommand::Reopen { reason } => {
            d.owner_or_manage("reopen this conversation")?;
            if state.status != Status::Resolved {
                return d.unchanged();
            }
            d.append(ConversationReopened {
                reason: d.reason(reason)?,
            })
        }
        ConversationCommand::Rate { score, comment } => d.rate(*score, comment),
        ConversationCommand::EraseCustomer { reason } => {
            if !matches!(p.role, Role::Supervisor | Role::Service) {
                return Err(forbidden(p, "erase a customer's data"));
            }
            if state.erased {
                return d.unchanged();
            }
            d.append(CustomerDataErased {
                customer_id: state.customer.clone(),
                reason: d.reason(reason)?,
            })
        }
    }
}

/// What a principal may set on open: the one rule, for every path a command comes by.
///
/// A customer chooses the channel and gives their name and email, nothing more. The
/// priority (other than normal), VIP status, team, required skills and routing attributes
/// decide who answers and how soon, so they come from staff, from a service (the business's
/// backend vouching for a customer it has verified, or an integration) or from the tenant's
/// settings — a customer who sets one is refused (`forbidden`), never silently ignored.
pub fn may_set_on_open(principal: &Principal, open: &OpenConversation) -> Result<(), CommandError> {
    if principal.role != Role::Customer {
        return Ok(());
    }
    let privileged = [
        (
            open.priority != Priority::Normal,
            "set the priority of a conversation",
        ),
        (open.vip, "mark a conversation vip"),
        (open.team_id.is_some(), "choose the team of a conversation"),
        (
            !open.required_skills.is_empty(),
            "require skills of a conversation",
        ),
        (
            !open.attributes.is_empty(),
            "set the routing attributes of a conversation",
        ),
    ];
    match privileged.into_iter().find(|(set, _)| *set) {
        Some((_, action)) => Err(forbidden(principal, action)),
        None => Ok(()),
    }
}

fn open_new(open: &OpenConversation, ctx: &Context<'_>) -> Result<Decision, CommandError> {
    let p = ctx.principal;
    match p.role {
        Role::Customer if !p.is_customer(&open.customer_id) => {
            return Err(forbidden(p, "open a conversation for another customer"));
        }
        _ => {}
    }
    let limits = ctx.limits;
    if open.required_skills.len() > limits.max_skills {
        return Err(CommandError::invalid(
            "required_skills",
            format!("at most {}", limits.max_skills),
        ));
    }
    if open.attributes.len() > limits.max_attributes {
        return Err(CommandError::invalid(
            "attributes",
            format!("at most {} entries", limits.max_attributes),
        ));
    }
    for (key, value) in &open.attributes {
        if key.is_empty() || key.len() > 64 || value.len() > limits.max_attribute_bytes {
            return Err(CommandError::invalid(
                "attributes",
                format!(
                    "keys are 1 to 64 bytes, values at most {} bytes",
                    limits.max_attribute_bytes
                ),
            ));
        }
    }
    let customer_name = match &open.customer_name {
        Some(name) => Some(ctx.sealer.seal(text_within("customer_name", name, 200)?)?),
        None => None,
    };
    let customer_email = match &open.customer_email {
        Some(email) => {
            let email = text_within("customer_email", email, 254)?;
            if !email.contains('@') {
                return Err(CommandError::invalid("customer_email", "it has no @"));
            }
            Some(ctx.sealer.seal(email)?)
        }
        None => None,
    };
    Ok(Decision::Append(vec![
        ConversationOpened {
            customer_id: open.customer_id.clone(),
            channel: open.channel,
            priority: open.priority,
            team_id: open.team_id.clone(),
            required_skills: open.required_skills.clone(),
            vip: open.vip,
            attributes: open.attributes.clone(),
            customer_name,
            customer_email,
        }
        .into(),
    ]))
}

/// Trims `text` and checks it is 1 to `max` bytes.
fn text_within<'t>(
    field: &'static str,
    text: &'t str,
    max: usize,
) -> Result<&'t str, CommandError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CommandError::invalid(field, "it is empty"));
    }
    if text.len() > max {
        return Err(CommandError::TooLarge {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(text)
}

struct Decider<'a> {
    s: &'a ConversationState,
    ctx: &'a Context<'a>,
    p: &'a Principal,
}

impl Decider<'_> {
    fn append(&self, payload: impl Into<ConversationPayload>) -> Result<Decision, CommandError> {
        Ok(Decision::Append(vec![payload.into()]))
    }

    fn unchanged(&self) -> Result<Decision, CommandError> {
        Ok(Decision::AlreadyDone(self.s.last_seq))
    }

    fn is_assignee(&self) -> bool {
        self.s.assignee.as_ref().is_some_and(|a| self.p.is_agent(a))
    }

    /// Supervisors and services anywhere in the tenant; agents on their own conversations.
    fn manage(&self, action: &'static str) -> Result<(), CommandError> {
        match self.p.role {
            Role::Supervisor | Role::Service => Ok(()),
            Role::Agent if self.is_assignee() => Ok(()),
            _ => Err(forbidden(self.p, action)),
        }
    }

    /// The conversation's customer, or whoever may manage it.
    fn owner_or_manage(&self, action: &'static str) -> Result<(), CommandError> {
        if self.p.role == Role::Customer {
            return Ok(()); // only its own conversations reach here
        }
        self.manage(action)
    }

    fn not_resolved(&self) -> Result<(), CommandError> {
        match self.s.status {
            Status::Resolved => Err(CommandError::ConversationResolved),
            _ => Ok(()),
        }
    }

    fn reason(&self, reason: &Option<String>) -> Result<Option<String>, CommandError> {
        reason
            .as_deref()
            .map(|r| text_within("reason", r, self.ctx.limits.max_reason_bytes).map(str::to_owned))
            .transpose()
    }

    fn body(&self, body: &str) -> Result<Sealed, CommandError> {
        if self.s.erased {
            return Err(CommandError::CustomerErased);
        }
        self.ctx
            .sealer
            .seal(text_within("body", body, self.ctx.limits.max_body_bytes)?)
    }

    fn attachments(&self, attachments: &[Attachment]) -> Result<(), CommandError> {
        let limits = self.ctx.limits;
        if attachments.len() > limits.max_attachments {
            return Err(CommandError::invalid(
                "attachments",
                format!("at most {}", limits.max_attachments),
            ));
        }
        for a in attachments {
            let fail = |reason: &str| {
                Err(CommandError::invalid(
                    "attachments",
                    format!("{}: {reason}", a.file_name),
                ))
            };
            if a.attachment_id.is_empty() || a.attachment_id.len() > 64 {
                return fail("attachment_id must be 1 to 64 bytes");
            }
            if a.file_name.trim().is_empty() || a.file_name.len() > 255 {
                return fail("the file name must be 1 to 255 bytes");
            }
            let valid_type = a.content_type.len() <= 127
                && a.content_type
                    .split_once('/')
                    .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
            if !valid_type {
                return fail("the content type must look like type/subtype");
            }
            if a.size_bytes < 1 || a.size_bytes > limits.max_attachment_bytes {
                return fail("the size must be from 1 byte to the attachment limit");
            }
            if a.url.len() > 2048 || !(a.url.starts_with("https://") || a.url.starts_with("s3://"))
            {
                return fail("the url must be https:// or s3:// and at most 2048 bytes");
            }
        }
        Ok(())
    }

    fn post(&self, post: &PostMessage) -> Result<Decision, CommandError> {
        let p = self.p;
        let s = self.s;
        if post.private_note && !(p.role.is_staff() || p.role == Role::Service) {
            return Err(forbidden(p, "write private notes"));
        }
        if let Some(sent) = s.sends.get(&post.client_msg_id) {
            return self.retry(sent, post);
        }
        match p.role {
            Role::Agent if !post.private_note && !self.is_assignee() => {
                return Err(forbidden(p, "reply in a conversation not assigned to them"));
            }
            Role::Customer => {}
            _ if !post.private_note => self.not_resolved()?,
            _ => {}
        }
        self.attachments(&post.attachments)?;
        let message = MessagePosted {
            message_id: self.ctx.message_id.clone(),
            client_msg_id: post.client_msg_id.clone(),
            body: self.body(&post.body)?,
            attachments: post.attachments.clone(),
            private_note: post.private_note,
        };
        if p.role == Role::Customer && s.status == Status::Resolved {
            return Ok(Decision::Append(vec![
                ConversationReopened { reason: None }.into(),
                message.into(),
            ]));
        }
        self.append(message)
    }

    /// A send whose `client_msg_id` was seen: the same message again, or a conflicting reuse.
    fn retry(
        &self,
        sent: &crate::conversation::state::AcceptedSend,
        post: &PostMessage,
    ) -> Result<Decision, CommandError> {
        let same_body = match self.ctx.sealer.reveal(&sent.body)? {
            Revealed::Text(text) => text == post.body.trim(),
            // The original can no longer be read; nothing proves a conflict.
            Revealed::Erased => true,
        };
        if same_body
            && sent.private_note == post.private_note
            && sent.attachments == post.attachments
        {
            Ok(Decision::AlreadyDone(sent.seq))
        } else {
            Err(CommandError::IdempotencyConflict(
                post.client_msg_id.to_string(),
            ))
        }
    }

    fn authored_by_principal(
        &self,
        author: &(switchboard_events::envelope::ActorKind, PrincipalId),
    ) -> bool {
        author.0 == self.p.role.actor_kind() && author.1 == self.p.subject
    }

    fn edit(&self, message_id: &MessageId, body: &str) -> Result<Decision, CommandError> {
        let message = self
            .s
            .messages
            .get(message_id)
            .filter(|m| self.visible(m.private_note));
        let message = message.ok_or_else(|| CommandError::not_found("message"))?;
        if !self.authored_by_principal(&message.author) {
            return Err(forbidden(self.p, "edit another person's message"));
        }
        if message.redacted {
            return Err(CommandError::FailedPrecondition(
                "the message was redacted".to_owned(),
            ));
        }
        self.not_resolved()?;
        self.append(MessageEdited {
            message_id: message_id.clone(),
            body: self.body(body)?,
        })
    }

    /// Customers cannot see, and so cannot address, private notes.
    fn visible(&self, private_note: bool) -> bool {
        !(private_note && self.p.role == Role::Customer)
    }

    fn redact(
        &self,
        message_id: &MessageId,
        reason: &Option<String>,
    ) -> Result<Decision, CommandError> {
        let message = self
            .s
            .messages
            .get(message_id)
            .filter(|m| self.visible(m.private_note));
        let message = message.ok_or_else(|| CommandError::not_found("message"))?;
        let allowed = self.authored_by_principal(&message.author)
            || matches!(self.p.role, Role::Supervisor | Role::Service);
        if !allowed {
            return Err(forbidden(self.p, "redact another person's message"));
        }
        if message.redacted {
            return self.unchanged();
        }
        self.append(MessageRedacted {
            message_id: message_id.clone(),
            reason: self.reason(reason)?,
        })
    }

    fn mark_read(&self, up_to: Seq) -> Result<Decision, CommandError> {
        if up_to > self.s.last_seq || up_to.0 == 0 {
            return Err(CommandError::FailedPrecondition(format!(
                "cannot read up to seq {up_to}: the conversation is at seq {}",
                self.s.last_seq
            )));
        }
        let key = (self.p.role.actor_kind(), self.p.subject.clone());
        if self
            .s
            .read_marks
            .get(&key)
            .is_some_and(|&mark| mark >= up_to)
        {
            return self.unchanged();
        }
        self.append(ParticipantRead { up_to_seq: up_to })
    }

    fn assign(
        &self,
        agent: &switchboard_events::id::AgentId,
        policy: AssignmentPolicy,
    ) -> Result<Decision, CommandError> {
        match self.p.role {
            Role::Supervisor | Role::Service => {}
            Role::Agent
                if self.p.is_agent(agent) && (self.s.assignee.is_none() || self.is_assignee()) => {}
            Role::Agent => {
                return Err(forbidden(
                    self.p,
                    "assign conversations to others or take assigned ones",
                ));
            }
            _ => return Err(forbidden(self.p, "assign conversations")),
        }
        self.not_resolved()?;
        if self.s.assignee.as_ref() == Some(agent) {
            return self.unchanged();
        }
        self.append(AgentAssigned {
            agent_id: agent.clone(),
            policy,
            previous_agent_id: self.s.assignee.clone(),
        })
    }

    fn transfer(
        &self,
        to: &TransferTarget,
        reason: &Option<String>,
    ) -> Result<Decision, CommandError> {
        self.manage("transfer this conversation")?;
        self.not_resolved()?;
        if let TransferTarget::Agent { agent_id } = to
            && self.s.assignee.as_ref() == Some(agent_id)
        {
            return Err(CommandError::FailedPrecondition(
                "the conversation is already with that agent".to_owned(),
            ));
        }
        self.append(ConversationTransferred {
            from_agent_id: self.s.assignee.clone(),
            to: to.clone(),
            reason: self.reason(reason)?,
        })
    }

    fn queue(
        &self,
        team: &Option<switchboard_events::id::TeamId>,
        reason: &Option<String>,
    ) -> Result<Decision, CommandError> {
        if !matches!(self.p.role, Role::Supervisor | Role::Service) {
            return Err(forbidden(self.p, "queue conversations"));
        }
        self.not_resolved()?;
        if self.s.status == Status::Queued && (team.is_none() || *team == self.s.team) {
            return self.unchanged();
        }
        self.append(ConversationQueued {
            team_id: team.clone(),
            reason: self.reason(reason)?,
        })
    }

    fn snooze(&self, until: Timestamp) -> Result<Decision, CommandError> {
        self.manage("snooze this conversation")?;
        self.not_resolved()?;
        let now = self.ctx.now.as_micros();
        if until.as_micros() <= now || until.as_micros() - now > self.ctx.limits.max_snooze_micros {
            return Err(CommandError::invalid(
                "until",
                "a snooze ends in the future, within a year",
            ));
        }
        self.append(ConversationSnoozed { until })
    }

    fn rate(&self, score: i32, comment: &Option<String>) -> Result<Decision, CommandError> {
        if self.p.role != Role::Customer {
            return Err(forbidden(self.p, "rate a conversation"));
        }
        if self.s.status != Status::Resolved {
            return Err(CommandError::FailedPrecondition(
                "only a resolved conversation can be rated".to_owned(),
            ));
        }
        if !(1..=5).contains(&score) {
            return Err(CommandError::invalid(
                "score",
                format!("{score} is not from 1 to 5"),
            ));
        }
        let comment = match comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(text) => {
                if self.s.erased {
                    return Err(CommandError::CustomerErased);
                }
                let text = text_within("comment", text, self.ctx.limits.max_comment_bytes)?;
                Some(self.ctx.sealer.seal(text)?)
            }
            None => None,
        };
        self.append(ConversationRated { score, comment })
    }
}
