//! Drift: values changed by hand in the target. On a reconciliation run the planner compares
//! the users whose record did not change in Entra too (the state remembers the hash of the
//! last write); a difference found on such a user is drift. A field mapped `on_drift =
//! "overwrite"` (the default) is set back by an ordinary update; `on_drift = "keep"`
//! reports it and writes nothing. A field mapped `write = "if_empty"` is the target's once
//! set, so its value is never drift.

use serde_json::Value as Json;

use crate::mapping::{Mapping, On, OnDrift, Record};
use crate::targets::FieldChange;

/// A user whose target values drifted from what userload last wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Drift {
    /// For messages.
    #[serde(rename = "user")]
    pub label: String,
    /// The fields that drifted.
    pub fields: Vec<DriftField>,
}

/// One drifted field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DriftField {
    /// The target field, as the mapping names it.
    #[serde(rename = "field")]
    pub target: String,
    /// The target's value now.
    pub found: Option<Json>,
    /// The value userload writes.
    pub expected: Option<Json>,
    /// Whether it is left as found (`on_drift = "keep"`).
    pub kept: bool,
}

/// What a run's drift adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriftCount {
    /// Users with drift.
    pub users: usize,
    /// Drifted fields, over all users.
    pub fields: usize,
}

/// Counts `drift`.
pub fn drift_count(drift: &[Drift]) -> DriftCount {
    DriftCount {
        users: drift.len(),
        fields: drift.iter().map(|d| d.fields.len()).sum(),
    }
}

/// The drift of a user whose record did not change: every one of `changes`. The fields
/// mapped `on_drift = "keep"` are taken out of `changes`, and `record` holds the target's
/// value for them, so that no write carries them.
pub(super) fn take_drift(
    mapping: &Mapping,
    label: &str,
    changes: &mut Vec<FieldChange>,
    record: &mut Record,
) -> Drift {
    let kept = |i: usize| {
        mapping
            .fields()
            .get(i)
            .is_some_and(|f| f.on_drift() == OnDrift::Keep)
    };
    let fields = changes
        .iter()
        .map(|c| DriftField {
            target: c.target.clone(),
            found: c.old.clone(),
            expected: c.new.clone(),
            kept: kept(c.field),
        })
        .collect();
    changes.retain(|c| {
        let keep = kept(c.field);
        if keep {
            record.set(c.field, c.old.clone());
        }
        !keep
    });
    Drift {
        label: label.to_owned(),
        fields,
    }
}

/// Sets, in `record`, the fields mapped `write = "if_empty"` that the target has a value
/// for to that value: the target owns them once set.
pub(super) fn hold_set_values(mapping: &Mapping, record: &mut Record, listed: &Record) {
    for (i, field) in mapping.fields().iter().enumerate() {
        if field.on() == On::IfEmpty
            && let Some(value) = listed.value(i).filter(|v| !is_empty(v))
        {
            record.set(i, Some(value.clone()));
        }
    }
}

/// Whether a target value counts as empty: null, an empty or blank string, an empty list.
pub fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.trim().is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}
