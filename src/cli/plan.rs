//! `userload plan`: one sync planned only, against both sides and the state file, writing
//! nothing anywhere.

use std::path::PathBuf;

use super::show::{plan_counts, plan_estimate, plan_json, plan_text, print_verdict};
use super::sync::{setup, source_disabled};
use super::{Outcome, color, load_config, print_error};
use crate::state::State;
use crate::sync::changes::ReadMode;
use crate::sync::engine::{self, StopSignal, SyncOptions};

/// Arguments of `userload plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    pub(super) config: PathBuf,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub(super) json: bool,
    /// Plan as if this many deactivations were allowed.
    #[arg(long, value_name = "N")]
    pub(super) allow_deactivations: Option<usize>,
    /// Show at most N users of each kind of change (the counts stay complete).
    #[arg(long, value_name = "N")]
    pub(super) show: Option<usize>,
    /// Lift, for this plan, the bound on how far the Entra and target listings may grow
    /// past the last complete run (three times as many users, and at least 1,000 more).
    #[arg(long)]
    pub(super) allow_growth: bool,
    /// Plan a full reconciliation: compare every user with the target, and show the values
    /// changed there by hand (drift).
    #[arg(long)]
    pub(super) full: bool,
    /// Also write the plan as one self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    pub(super) html: Option<PathBuf>,
}

/// `userload plan`: reads both sides and the state, writes nothing anywhere.
pub fn run(args: &PlanArgs) -> Outcome {
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let _entered = runtime.enter();
    let (started, clock) = (crate::state::now(), std::time::Instant::now());
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    if source_disabled(&config) {
        return Outcome::Success;
    }
    let Ok(setup) = setup(&config) else {
        return Outcome::Failed;
    };
    let peeked = State::peek_owned(&config.sync.state).and_then(|owned| {
        let last_read = if args.allow_growth {
            None
        } else {
            State::peek_last_read(&config.sync.state)?
        };
        let last_full = State::peek_reconciled(&config.sync.state)?.map(|r| r.at);
        let links = State::peek_delta_links(&config.sync.state)?;
        Ok((owned, last_read, last_full, links))
    });
    let (owned, last_read, last_full, links) = match peeked {
        Ok(peeked) => peeked,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let options = SyncOptions {
        links,
        ..SyncOptions::starting_now(
            args.allow_deactivations,
            (
                args.full,
                (config.sync.full_every, config.sync.full_at),
                last_full.as_deref(),
            ),
            last_read,
        )
    };
    let result = runtime.block_on(engine::sync(
        &config,
        &setup.mapping,
        &setup.target,
        &owned,
        None,
        &options,
        &StopSignal::default(),
    ));
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let (estimate, estimate_json) = plan_estimate(&outcome.plan, setup.target.rate());
    if args.json {
        let mut json = plan_json(&outcome);
        json["estimate"] = estimate_json;
        outln!("{json}");
    } else {
        out!(
            "{}",
            plan_text(&outcome.plan, &outcome.held, color(), args.show)
        );
        match (outcome.reconcile, outcome.mode, &outcome.mode_reason) {
            (Some(reason), ..) => errln!(
                "full reconciliation ({}): every user compared with the target",
                reason.name()
            ),
            (None, ReadMode::Delta, _) => {
                errln!("by delta: only the users changed in Entra since the last run")
            }
            (None, _, Some(why)) => errln!("read in full: {why}"),
            _ => {}
        }
        if let Some(scope) = super::show::scope_text(&outcome) {
            errln!("{scope}");
        }
        errln!("{}", plan_counts(&outcome.plan));
        errln!("{estimate}");
        print_verdict(&outcome.verdict);
        if let Some(message) = &outcome.held_for_assets {
            errln!("warning: {message}");
        }
    }
    let took = clock.elapsed().as_secs_f64();
    if !super::html::write_plan(
        args.html.as_deref(),
        &outcome,
        &args.config,
        &config,
        (&started, took),
    ) {
        return Outcome::Failed;
    }
    Outcome::of_exit_code(outcome.exit_code().into())
}
