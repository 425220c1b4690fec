//! Conversation lists with filters: the list is read from the store's most selective index
//! (a customer's, an agent's inbox, a status, or every conversation by activity) and the other
//! filters apply to it, within a scan budget per request.

use serde::Serialize;
use switchboard_events::Timestamp;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, Label};
use switchboard_events::principal::{Principal, Role};
use switchboard_store::conversation::{
    ConversationList, ConversationStatus, ConversationSummary, ListCursor, ListQuery,
};
use switchboard_store::timeline::MAX_PAGE;

use crate::error::QueryError;
use crate::service::QueryService;

/// A list request: the list is picked from the most selective filter, the others filter it.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub status: Option<ConversationStatus>,
    pub agent: Option<AgentId>,
    pub customer: Option<CustomerId>,
    pub tag: Option<Label>,
    pub updated_since: Option<Timestamp>,
    pub limit: u32,
    pub cursor: Option<ListCursor>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListResult {
    pub conversations: Vec<ConversationSummary>,
    /// The `cursor` of the next page.
    pub next: Option<String>,
}

/// Store entries a filtered list reads at most per request; past it, the page comes back
/// short with a cursor, so a rare tag cannot make one request scan a whole tenant.
const LIST_SCAN_BUDGET: usize = 5_000;

/// The cursor of a list page as a string: `<micros>:<conversation id>`.
pub fn format_cursor(cursor: &ListCursor) -> String {
    format!(
        "{}:{}",
        cursor.last_activity_at.as_micros(),
        cursor.conversation
    )
}

pub fn parse_cursor(text: &str) -> Result<ListCursor, QueryError> {
    let bad = || QueryError::invalid("malformed list cursor");
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(ListCursor {
        last_activity_at: Timestamp(micros.parse().map_err(|_| bad())?),
        conversation: ConversationId::new(id).map_err(|_| bad())?,
    })
}

impl QueryService {
    /// A page of a list; a customer only ever reads their own conversations.
    pub async fn list(
        &self,
        who: &Principal,
        mut params: ListParams,
    ) -> Result<ListResult, QueryError> {
        if params.limit == 0 || params.limit > MAX_PAGE {
            return Err(QueryError::invalid(format!(
                "limit must be within 1..={MAX_PAGE}"
            )));
        }
        if who.role == Role::Customer {
            params.customer =
                Some(
                    CustomerId::new(who.subject.as_str()).map_err(|_| QueryError::Forbidden {
                        role: "a customer",
                        action: "list conversations under this subject",
                    })?,
                );
        }
        let list = match (&params.agent, &params.customer, params.status) {
            (_, Some(customer), _) => ConversationList::Customer(customer.clone()),
            (Some(agent), None, _) => ConversationList::Inbox(agent.clone()),
            (None, None, Some(status)) => ConversationList::Status(status),
            (None, None, None) => ConversationList::Recent,
        };
        let keep = |s: &ConversationSummary| {
            params.status.is_none_or(|status| s.status == status)
                && params
                    .agent
                    .as_ref()
                    .is_none_or(|a| s.agent.as_ref() == Some(a))
                && params.tag.as_ref().is_none_or(|t| s.tags.contains(t))
        };
        let limit = params.limit as usize;
        let mut out = Vec::new();
        let mut cursor = params.cursor.clone();
        let mut scanned = 0;
        loop {
            let query = ListQuery {
                list: list.clone(),
                after: cursor.clone(),
                limit: MAX_PAGE.min(params.limit.max(100)),
            };
            let page = self.store.conversations(&who.tenant, &query).await?;
            for summary in page.items {
                scanned += 1;
                cursor = Some(summary.cursor());
                if params
                    .updated_since
                    .is_some_and(|since| summary.last_activity_at < since)
                {
                    return Ok(ListResult {
                        conversations: out,
                        next: None,
                    });
                }
                if keep(&summary) {
                    out.push(summary);
                    // One more than asked tells that a next page exists.
                    if out.len() > limit {
                        out.truncate(limit);
                        let next = out.last().map(|s| format_cursor(&s.cursor()));
                        return Ok(ListResult {
                            conversations: out,
                            next,
                        });
                    }
                }
            }
            if page.next.is_none() {
                return Ok(ListResult {
                    conversations: out,
                    next: None,
                });
            }
            if scanned >= LIST_SCAN_BUDGET {
                return Ok(ListResult {
                    conversations: out,
                    next: cursor.as_ref().map(format_cursor),
                });
            }
        }
    }
}
