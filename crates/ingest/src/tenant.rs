//! Tenants on the write side: creating a tenant and changing its settings, each an event of the
//! tenant's settings chain on the agent topic (`switchboard_events::tenant`). The writer of the
//! tenant's agent partition decides against the settings it folded, so two concurrent changes
//! are applied one after the other, never one over the other.
//!
//! Who may: the platform operator (a service principal: the deployment's all-tenants service
//! token acting for the tenant, or a service token of the tenant) creates tenants and changes
//! any setting; a tenant admin (supervisor) changes its own tenant's settings, except the
//! widget key.

use serde_json::Value;
use switchboard_events::principal::{Principal, Role};
use switchboard_events::tenant::{TenantSettings, TenantSettingsChanged};

use crate::error::CommandError;

/// The largest settings document a tenant may have, in bytes of JSON.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

/// Decides a tenant command against the tenant's current settings (`None`: no such tenant):
/// the event to append, or `None` when nothing changes.
pub(crate) fn decide(
    current: Option<&TenantSettings>,
    principal: &Principal,
    create: bool,
    patch: &Value,
) -> Result<Option<TenantSettingsChanged>, CommandError> {
    let operator = principal.role == Role::Service;
    if !(operator || (!create && principal.role == Role::Supervisor)) {
        return Err(CommandError::Forbidden {
            role: "this principal",
            action: if create {
                "create tenants"
            } else {
                "change this tenant's settings"
            },
        });
    }
    let base = match (create, current) {
        (true, Some(_)) => return Err(CommandError::TenantExists(principal.tenant.to_string())),
        (true, None) => TenantSettings::default(),
        (false, Some(settings)) => settings.clone(),
        (false, None) => return Err(CommandError::not_found("tenant")),
    };
    let Value::Object(fields) = patch else {
        return Err(CommandError::invalid(
            "settings",
            "a JSON object of the settings to change",
        ));
    };
    let known = serde_json::to_value(TenantSettings::default())
        .map_err(|e| CommandError::Internal(e.to_string()))?;
    if let Some(unknown) = fields.keys().find(|k| known.get(k.as_str()).is_none()) {
        return Err(CommandError::invalid(
            "settings",
            format!("there is no setting {unknown:?}"),
        ));
    }
    if !operator && fields.contains_key("widget_key") {
        return Err(CommandError::Forbidden {
            role: "a tenant admin",
            action: "change the widget key",
        });
    }
    let mut document =
        serde_json::to_value(&base).map_err(|e| CommandError::Internal(e.to_string()))?;
    merge(&mut document, patch);
    let settings: TenantSettings = serde_json::from_value(document)
        .map_err(|e| CommandError::invalid("settings", e.to_string()))?;
    settings
        .validate()
        .map_err(|e| CommandError::invalid("settings", e.to_string()))?;
    // On create, `base` is the defaults: every setting given differs from them.
    let changed = settings.changes_from(&base);
    if !create && changed.is_empty() {
        return Ok(None);
    }
    let json =
        serde_json::to_string(&settings).map_err(|e| CommandError::Internal(e.to_string()))?;
    if json.len() > MAX_SETTINGS_BYTES {
        return Err(CommandError::TooLarge {
            field: "settings",
            len: json.len(),
            max: MAX_SETTINGS_BYTES,
        });
    }
    Ok(Some(TenantSettingsChanged {
        changed,
        settings: json,
    }))
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_events::id::{PrincipalId, TenantId};

    use super::*;

    fn who(role: Role) -> Principal {
        Principal::new(
            TenantId::new("acme").unwrap(),
            role,
            PrincipalId::new("p").unwrap(),
        )
    }

    fn created() -> TenantSettings {
        let event = decide(
            None,
            &who(Role::Service),
            true,
            &json!({"name": "Acme", "widget_key": "wk_abc", "allowed_origins": ["https://acme.example"]}),
        )
        .unwrap()
        .unwrap();
        assert!(event.changed.contains(&"allowed_origins".to_owned()));
        event.document().unwrap()
    }

    #[test]
    fn operators_create_and_admins_change_their_settings() {
        let settings = created();
        assert_eq!(settings.name, "Acme");
        assert_eq!(settings.queue_limit, 200, "defaults fill the rest");
        let change = decide(
            Some(&settings),
            &who(Role::Supervisor),
            false,
            &json!({"business_hours": {"utc_offset_minutes": 60, "openings": [
                {"day": "monday", "open": "09:00", "close": "17:00"}]}, "csat": false}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(change.changed, ["business_hours", "csat"]);
        let after = change.document().unwrap();
        assert!(!after.csat);
        assert_eq!(after.name, "Acme", "the rest is kept");
        // Removing a setting returns it to its default.
        let back = decide(
            Some(&after),
            &who(Role::Supervisor),
            false,
            &json!({"business_hours": null}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(back.document().unwrap().business_hours, None);
        assert_eq!(
            decide(
                Some(&after),
                &who(Role::Service),
                false,
                &json!({"csat": false})
            )
            .unwrap(),
            None,
            "no change, no event"
        );
    }

    #[test]
    fn refusals_have_their_codes() {
        let settings = created();
        let code = |current: Option<&TenantSettings>, role, create, patch: Value| {
            decide(current, &who(role), create, &patch)
                .unwrap_err()
                .code()
        };
        let name = json!({"name": "Acme", "widget_key": "wk_abc"});
        assert_eq!(
            code(Some(&settings), Role::Service, true, name.clone()),
            "tenant_exists"
        );
        assert_eq!(
            code(None, Role::Supervisor, true, name.clone()),
            "forbidden"
        );
        assert_eq!(
            code(None, Role::Service, false, json!({"csat": true})),
            "not_found"
        );
        for role in [Role::Agent, Role::Customer, Role::Auditor] {
            assert_eq!(
                code(Some(&settings), role, false, json!({"csat": true})),
                "forbidden"
            );
        }
        assert_eq!(
            code(
                Some(&settings),
                Role::Supervisor,
                false,
                json!({"widget_key": "wk_new"})
            ),
            "forbidden"
        );
        for bad in [
            json!({"colour": "red"}),
            json!({"queue_limit": 0}),
            json!({"queue_limit": "many"}),
            json!({"routing": {"distribution": "random"}}),
            json!({"allowed_origins": ["acme.example"]}),
            json!([1]),
        ] {
            assert_eq!(
                code(Some(&settings), Role::Service, false, bad.clone()),
                "invalid_argument",
                "{bad}"
            );
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "e": 3}, "d": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "e": 3}, "d": [3]}));
    }
}
