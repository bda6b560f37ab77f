//! The leavers' step: after the plan is made and before the guards judge it, the target is
//! asked what each user to deactivate still holds (assets, licences, accessories checked
//! out to them), so that every output can list it and `hold_leavers_with_assets` can hold
//! those deactivations back.
//!
//! Asking is best effort: a target that cannot tell answers nothing, and a failed question
//! is a warning on that user, never a failed run. With the hold on, a user whose holdings
//! could not be read is held too: nobody is deactivated while they may still hold
//! something.

use futures_util::{StreamExt, stream};

use super::plan::{Holdings, Plan, Update, UpdateKind};
use crate::targets::Target;

/// Asks `target` what each deactivation of `updates` holds, `concurrency` questions at once,
/// and notes the answers in the updates.
pub(super) async fn ask(target: &dyn Target, updates: &mut [Update], concurrency: usize) {
    let questions = updates
        .iter_mut()
        .filter(|u| u.kind == UpdateKind::Deactivate)
        .map(|update| async move {
            let user = update.user.to_target_user();
            update.holdings = match target.holdings(&user).await {
                Ok(None) => Holdings::NotAsked,
                Ok(Some(items)) => Holdings::Known(items),
                Err(error) => {
                    tracing::warn!(
                        user = %update.label,
                        "could not ask {} what the user holds: {error}",
                        target.describe()
                    );
                    Holdings::Unknown(error.to_string())
                }
            };
        });
    stream::iter(questions)
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
}

/// Takes out of `plan` the deactivations of users who may still hold something, and
/// returns them with the message that says why they were held.
pub(super) fn hold(plan: &mut Plan) -> (Vec<Update>, Option<String>) {
    let (held, kept): (Vec<Update>, Vec<Update>) = std::mem::take(&mut plan.updates)
        .into_iter()
        .partition(|u| u.kind == UpdateKind::Deactivate && u.holdings.may_hold());
    plan.updates = kept;
    if held.is_empty() {
        return (held, None);
    }
    let unknown = held
        .iter()
        .filter(|u| matches!(u.holdings, Holdings::Unknown(_)))
        .count();
    let mut message = format!(
        "{} deactivations held: the users still hold assets (hold_leavers_with_assets); \
         each is made by the first run after what they hold is returned",
        held.len()
    );
    if unknown > 0 {
        message.push_str(&format!(
            ". For {unknown} of them the target could not say what they hold (see the warnings)"
        ));
    }
    (held, Some(message))
}

/// How a person reads what a user holds: `2 assets, 1 accessory: LAPTOP-0042 "MacBook
/// Pro", …`, at most `shown` items named; `None` when nothing is known to be held.
pub fn describe(holdings: &Holdings, shown: usize) -> Option<String> {
    let items = match holdings {
        Holdings::NotAsked => return None,
        Holdings::Unknown(why) => {
            return Some(format!(
                "could not tell what they hold: {}",
                crate::diag::shorten(why, 120)
            ));
        }
        Holdings::Known(items) if items.is_empty() => return None,
        Holdings::Known(items) => items,
    };
    let mut counts: Vec<String> = Vec::new();
    for kind in [
        crate::targets::HoldingKind::Asset,
        crate::targets::HoldingKind::Licence,
        crate::targets::HoldingKind::Accessory,
    ] {
        let n = items.iter().filter(|i| i.kind == kind).count();
        match n {
            0 => {}
            1 => counts.push(format!("1 {}", kind.name())),
            n => counts.push(format!("{n} {}s", kind.name())),
        }
    }
    let mut named: Vec<String> = items.iter().take(shown).map(|i| i.describe()).collect();
    if items.len() > shown {
        named.push(format!("… {} more", items.len() - shown));
    }
    Some(format!("holds {}: {}", counts.join(", "), named.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Holding, HoldingKind};

    fn item(kind: HoldingKind, name: &str, tag: Option<&str>) -> Holding {
        Holding {
            kind,
            id: "1".into(),
            name: name.into(),
            tag: tag.map(Into::into),
        }
    }

    #[test]
    fn holdings_read_as_counts_and_names_cut_short() {
        let held = Holdings::Known(vec![
            item(HoldingKind::Asset, "MacBook Pro", Some("LAPTOP-0042")),
            item(HoldingKind::Asset, "iPhone", Some("PHONE-7")),
            item(HoldingKind::Accessory, "Dock", None),
        ]);
        assert_eq!(
            describe(&held, 2).as_deref(),
            Some(
                "holds 2 assets, 1 accessory: LAPTOP-0042 \"MacBook Pro\", PHONE-7 \"iPhone\", … 1 more"
            )
        );
        assert_eq!(describe(&Holdings::Known(vec![]), 2), None);
        assert_eq!(describe(&Holdings::NotAsked, 2), None);
        let unknown = describe(&Holdings::Unknown("HTTP 500".into()), 2);
        assert_eq!(
            unknown.as_deref(),
            Some("could not tell what they hold: HTTP 500")
        );
    }
}
