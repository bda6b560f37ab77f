//! `userload daemon`: runs the sync on a schedule, for servers without cron or a systemd
//! timer (a container that runs only userload).
//!
//! `--at 02:00` runs daily at that local time (several `--at` for several times a day);
//! `--every 6h` runs at start and then every six hours from the start. `--random-delay`
//! adds up to that much to each run's start, so that many sites do not call Graph at the
//! same second. Runs never overlap: the next one is due only after the last one ended (slots
//! that passed while a run was going are skipped and logged), and the state file's lock keeps
//! out any other process. The config is read again before every run, so edits take effect at
//! the next run without a restart; a config that is broken at start stops the daemon at once.
//! SIGTERM or Ctrl-C while waiting ends the daemon at once; during a run, the writes under
//! way finish and the state is saved first.
//!
//! Runs that keep failing are told once: after [`FAILING_AFTER`] failed runs in a row the
//! webhook hears "failing since …" (besides the notice of each run that `[notify] on`
//! asks for), and when a run succeeds again it hears "recovered". A failure because the
//! credentials were refused (a wrong or expired secret, say) does not get better by
//! itself: while they are, `--every` tries again after twice the last wait, up to
//! [`BACKOFF_CAP`], and says so in the log; a run that meets no refusal resets it.
//!
//! With `[daemon] metrics_address`, the daemon serves `/metrics` and `/healthz` there
//! ([`crate::metrics::serve`]); an address it cannot take stops it at start. The address is
//! read at start only.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone};

use super::run::{RunArgs, run_watched};
use super::{Outcome, load_config, load_mapping};
use crate::config::{NotifyConfig, NotifyOn};
use crate::metrics::serve::{self, Shared};
use crate::metrics::{Streak, round};
use crate::notify::Notice;
use crate::sync::engine::StopSignal;

/// Arguments of `userload daemon`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("schedule").required(true).args(["at", "every"]))]
pub struct DaemonArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    config: PathBuf,
    /// Run daily at this local time (HH:MM); may be given more than once.
    #[arg(long, value_name = "HH:MM", value_parser = parse_time)]
    at: Vec<NaiveTime>,
    /// Run at start, then at this interval from the start (e.g. 6h, 90m, 1h30m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "at")]
    every: Option<Duration>,
    /// Start each run up to this much later, at random (e.g. 15m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    random_delay: Option<Duration>,
    /// Stop after this many runs (by default the daemon runs until it is stopped).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    runs: Option<u64>,
    /// Write each run's JSON report to this file (the latest run's is kept).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write each run's changes as CSV to this file (the latest run's are kept).
    #[arg(long, value_name = "FILE")]
    changes: Option<PathBuf>,
    /// Keep the latest run's HTML page at this file, rewritten whole after each run.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Allow up to N deactivations in each run, above `max_deactivations`.
    #[arg(long, value_name = "N")]
    allow_deactivations: Option<usize>,
}

/// Why a schedule option is not understood.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// `--at` is not a time of day.
    #[error("`{0}` is not a time of day; write HH:MM, e.g. 02:00")]
    Time(String),
    /// A duration of zero.
    #[error("the duration must be longer than zero")]
    Zero,
    /// A duration longer than [`LONGEST`].
    #[error("the duration must be at most a year (366d)")]
    TooLong,
    /// Not a duration at all.
    #[error("`{0}` is not a duration; write e.g. 6h, 30m, 90s or 1h30m")]
    Duration(String),
}

fn parse_time(text: &str) -> Result<NaiveTime, ScheduleError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| ScheduleError::Time(text.to_owned()))
}

/// The longest `--every` or `--random-delay`: a year, which keeps every date computed from
/// it well inside the calendar.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err(ScheduleError::Zero),
        Ok(d) if d > LONGEST => Err(ScheduleError::TooLong),
        Ok(d) => Ok(d),
        Err(_) => Err(ScheduleError::Duration(text.to_owned())),
    }
}

/// The first of the daily `times` strictly after `now`, in `now`'s time zone. A time that
/// does not exist that day (the hour skipped when clocks go forward) runs an hour later; a
/// time that exists twice (clocks go back) runs the first time.
pub fn next_daily<Tz: TimeZone>(now: &DateTime<Tz>, times: &[NaiveTime]) -> Option<DateTime<Tz>> {
    let zone = now.timezone();
    let today = now.date_naive();
    (0..3)
        .filter_map(|days| today.checked_add_days(chrono::Days::new(days)))
        .flat_map(|day| times.iter().map(move |t| day.and_time(*t)))
        .filter_map(|local| {
            zone.from_local_datetime(&local).earliest().or_else(|| {
                zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
        })
        .filter(|at| at > now)
        .min()
}

/// How many of the daily `times` fell after the slot `previous` and up to `now`: the runs
/// a long run made the daemon pass over.
pub fn daily_slots_passed<Tz: TimeZone>(
    previous: &DateTime<Tz>,
    now: &DateTime<Tz>,
    times: &[NaiveTime],
) -> u64 {
    let mut passed = 0;
    let mut at = previous.clone();
    // A run longer than a few days is not a case to count precisely.
    while passed < 100 {
        match next_daily(&at, times) {
            Some(next) if next <= *now => {
                passed += 1;
                at = next;
            }
            _ => break,
        }
    }
    passed
}

/// The first slot of `every` after the start that lies after `elapsed` (time since the
/// start), and how many slots were passed over since `previous`.
pub fn next_every(every: Duration, elapsed: Duration, previous: u64) -> (u64, u64) {
    let slot = (elapsed.as_nanos() / every.as_nanos().max(1)) as u64 + 1;
    let slot = slot.max(previous + 1);
    (slot, slot - previous - 1)
}

/// How many failed runs in a row make the daemon send its one "failing since" notice.
pub const FAILING_AFTER: u64 = 3;

/// The longest wait between tries while the credentials are refused (unless `--every` is
/// longer).
pub const BACKOFF_CAP: Duration = Duration::from_secs(6 * 3600);

/// The wait before the next try after `refusals` runs in a row met refused credentials,
/// with `--every` `every`: `every` doubled for each refusal, at most `cap`, and never
/// shorter than `every` (0 refusals: `every`).
pub fn backoff_wait(refusals: u32, every: Duration, cap: Duration) -> Duration {
    let cap = cap.max(every);
    2u32.checked_pow(refusals)
        .and_then(|factor| every.checked_mul(factor))
        .map_or(cap, |wait| wait.min(cap))
}

/// The failed runs in a row ([`crate::metrics::RunFigures::failed`]), and whether the
/// admin was told of them.
#[derive(Debug, Default)]
pub struct Failing {
    /// Failed runs in a row.
    pub runs: u64,
    /// When the first of them ended.
    pub since: Option<DateTime<Local>>,
    /// Whether the "failing since" notice went out for these runs.
    told: bool,
}

/// What the admin is told of the failed runs in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// [`FAILING_AFTER`] runs in a row failed, the first ending at `since`.
    Failing {
        /// When the first failed run ended.
        since: DateTime<Local>,
        /// How many failed.
        runs: u64,
    },
    /// A run succeeded after the admin was told of `runs` failed runs since `since`.
    Recovered {
        /// When the first failed run ended.
        since: DateTime<Local>,
        /// How many failed.
        runs: u64,
    },
}

impl Failing {
    /// Notes a run that ended at `at`, `failed` or not; what to tell the admin, if anything:
    /// the [`FAILING_AFTER`]th failure in a row, or the first success after it.
    pub fn after(&mut self, failed: bool, at: DateTime<Local>) -> Option<Told> {
        if failed {
            self.runs += 1;
            let since = *self.since.get_or_insert(at);
            if self.runs >= FAILING_AFTER && !self.told {
                self.told = true;
                return Some(Told::Failing {
                    since,
                    runs: self.runs,
                });
            }
            return None;
        }
        let was = std::mem::take(self);
        match (was.told, was.since) {
            (true, Some(since)) => Some(Told::Recovered {
                since,
                runs: was.runs,
            }),
            _ => None,
        }
    }
}

impl Told {
    /// The webhook's notice of it; `last` is the last run's headline, `backoff` the
    /// daemon's backing off, when it is.
    fn notice(&self, last: &str, backoff: Option<&(String, Duration)>) -> Notice {
        let when = |since: &DateTime<Local>| since.format("%Y-%m-%d %H:%M %:z").to_string();
        let (headline, mut details) = match self {
            Told::Failing { since, runs } => (
                format!("failing since {}, {runs} runs in a row", when(since)),
                vec![
                    format!("last run: {last}"),
                    "the next notice of this comes when a run succeeds again".to_owned(),
                ],
            ),
            Told::Recovered { since, runs } => (
                format!(
                    "recovered: a run succeeded after {runs} failed runs since {}",
                    when(since)
                ),
                vec![format!("last run: {last}")],
            ),
        };
        if let Some((why, wait)) = backoff {
            details.insert(
                1,
                format!(
                    "{why}; backing off: next try in {}",
                    humantime::format_duration(round(*wait))
                ),
            );
        }
        // Sent when `on` has `failed`, as it has unless set otherwise.
        Notice {
            status: NotifyOn::Failed,
            headline,
            details,
        }
    }
}

/// `userload daemon`.
pub fn run(args: &DaemonArgs) -> Outcome {
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    if load_mapping(&config).is_none() {
        return Outcome::Failed;
    }
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let stop = StopSignal::default();
    {
        let _entered = runtime.enter();
        stop.on_signals();
    }
    let run_args = RunArgs {
        config: args.config.clone(),
        report: args.report.clone(),
        changes: args.changes.clone(),
        html: args.html.clone(),
        allow_deactivations: args.allow_deactivations,
        // Unattended runs keep the bound; one `run --allow-growth` lifts it when needed.
        allow_growth: false,
        // Reconciliations come every `full_every`.
        full: false,
        metrics_file: None,
        user: None,
    };
    let board = Shared::default();
    if let Some(address) = config.daemon.metrics_address {
        match runtime.block_on(serve::listen(address)) {
            Ok(listener) => {
                tracing::info!(%address, "serving /metrics and /healthz");
                runtime.spawn(serve::serve(listener, board.clone()));
            }
            Err(e) => {
                errln!("error: {e}");
                return Outcome::Failed;
            }
        }
    }
    let mut schedule = Schedule {
        start: tokio::time::Instant::now(),
        slot: 0,
        made: 0,
        last_daily: None,
        refusals: 0,
        backoff: None,
    };
    let mut failing = Failing::default();
    let mut last = Outcome::Success;
    tracing::info!(config = %args.config.display(), "daemon started");
    loop {
        let Some(due) = schedule.next(args) else {
            tracing::error!("no next run time can be found");
            return Outcome::Failed;
        };
        note_due(&board, due);
        let stopped = runtime.block_on(async {
            tokio::select! {
                () = stop.wait() => true,
                () = tokio::time::sleep_until(due) => false,
            }
        });
        if stopped {
            break;
        }
        let before = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recorded();
        last = run_stoppable(&runtime, &run_args, &stop, &board);
        schedule.made += 1;
        if !stop.stopped() {
            after_run(
                &runtime,
                &config.notify,
                &board,
                before,
                args,
                &mut schedule,
                &mut failing,
            );
        }
        if stop.stopped() || args.runs.is_some_and(|n| schedule.made >= n) {
            break;
        }
    }
    tracing::info!(runs = schedule.made, "daemon stopped");
    if stop.stopped() {
        Outcome::Success
    } else {
        last
    }
}

/// One run, stopped when the daemon is. Each run has a stop of its own, tripped by the
/// daemon's: a run that stops itself (the target refused the credentials) ends that run,
/// not the daemon.
fn run_stoppable(
    runtime: &tokio::runtime::Runtime,
    run_args: &RunArgs,
    stop: &StopSignal,
    board: &Shared,
) -> Outcome {
    let run_stop = StopSignal::default();
    let forward = {
        let (daemon, run) = (stop.clone(), run_stop.clone());
        runtime.spawn(async move {
            daemon.wait().await;
            run.stop();
        })
    };
    let outcome = run_watched(runtime, run_args, &run_stop, Some(board));
    forward.abort();
    outcome
}

/// After a run that noted its end on `board` (one that found its source turned off did
/// not): counts it as failed or not, decides whether the next try backs off, notes both on
/// `board` and tells the webhook of `notify` what [`Failing::after`] says to.
fn after_run(
    runtime: &tokio::runtime::Runtime,
    notify: &NotifyConfig,
    board: &Shared,
    before: u64,
    args: &DaemonArgs,
    schedule: &mut Schedule,
    failing: &mut Failing,
) {
    let mut noted = board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(last) = noted.last.clone().filter(|_| noted.recorded() > before) else {
        return;
    };
    let told = failing.after(last.failed(), Local::now());
    schedule.refused(last.credentials_refused.clone(), args);
    noted.streak = Some(Streak {
        failures: failing.runs,
        backing_off: schedule.backoff.clone(),
    });
    drop(noted);
    if let Some(told) = told {
        let notice = told.notice(&last.headline, schedule.backoff.as_ref());
        tracing::warn!("{}", notice.headline);
        if let Err(e) = runtime.block_on(crate::notify::send(notify, &notice)) {
            tracing::warn!("{e}");
        }
    }
}

/// Notes on `board` when the next run is due, for `/healthz`.
fn note_due(board: &Shared, due: tokio::time::Instant) {
    let wait = due.saturating_duration_since(tokio::time::Instant::now());
    let at = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .next_due = Some(at);
}

/// Where the daemon is in its schedule.
struct Schedule {
    /// When the daemon started (`--every` counts from there).
    start: tokio::time::Instant,
    /// The `--every` slot of the last run.
    slot: u64,
    /// Runs made so far.
    made: u64,
    /// The daily slot of the last run.
    last_daily: Option<DateTime<Local>>,
    /// Runs in a row that met refused credentials.
    refusals: u32,
    /// Why the next try waits longer than `--every`, and how long it waits.
    backoff: Option<(String, Duration)>,
}

impl Schedule {
    /// Notes why the last run's credentials were refused (`None`: they were not), and so
    /// whether the next try backs off; logs it when it does.
    fn refused(&mut self, why: Option<String>, args: &DaemonArgs) {
        let Some(why) = why else {
            self.refusals = 0;
            self.backoff = None;
            return;
        };
        self.refusals = self.refusals.saturating_add(1);
        let Some(every) = args.every else {
            tracing::warn!("{why}; next try at the next daily time");
            return;
        };
        let wait = backoff_wait(self.refusals, every, BACKOFF_CAP);
        tracing::warn!(
            "{why}; next try in {}, not every {}",
            humantime::format_duration(round(wait)),
            humantime::format_duration(round(every))
        );
        self.backoff = Some((why, wait));
    }

    /// When the next run is due, its random delay added, logged; `None` if no daily time
    /// can be found.
    fn next(&mut self, args: &DaemonArgs) -> Option<tokio::time::Instant> {
        let due = match args.every {
            Some(every) => self.next_every(every),
            None => self.next_daily(&args.at)?,
        };
        let delay = args
            .random_delay
            .map(|d| Duration::from_millis(fastrand::u64(0..=d.as_millis() as u64)))
            .unwrap_or_default();
        let due = due + delay;
        let wait = due.saturating_duration_since(tokio::time::Instant::now());
        let at = Local::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        tracing::info!(
            "next run at {} (in {})",
            at.format("%Y-%m-%d %H:%M:%S %:z"),
            humantime::format_duration(Duration::from_secs(wait.as_secs()))
        );
        Some(due)
    }

    /// The next `--every` slot after the last run.
    fn next_every(&mut self, every: Duration) -> tokio::time::Instant {
        if let Some((_, wait)) = &self.backoff {
            // The slots resume after the try: none counts as skipped.
            let due = self.start.elapsed() + *wait;
            self.slot = (due.as_nanos() / every.as_nanos().max(1)) as u64;
            return tokio::time::Instant::now() + *wait;
        }
        if self.made > 0 {
            let (next, skipped) = next_every(every, self.start.elapsed(), self.slot);
            if skipped > 0 {
                tracing::warn!("{skipped} scheduled run(s) skipped: the last run was still going");
            }
            self.slot = next;
        }
        self.start + every * u32::try_from(self.slot).unwrap_or(u32::MAX)
    }

    /// The next of the daily `times` after the last run.
    fn next_daily(&mut self, times: &[NaiveTime]) -> Option<tokio::time::Instant> {
        // A wall clock set back never brings a slot that already ran round again.
        let now = Local::now();
        let now = self.last_daily.filter(|last| *last > now).unwrap_or(now);
        let skipped = self
            .last_daily
            .map_or(0, |at| daily_slots_passed(&at, &now, times));
        if skipped > 0 {
            tracing::warn!("{skipped} scheduled run(s) skipped: the last run was still going");
        }
        let at = next_daily(&now, times)?;
        self.last_daily = Some(at);
        let wait = (at - now).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn time(text: &str) -> NaiveTime {
        parse_time(text).unwrap()
    }

    #[test]
    fn the_next_daily_time_is_today_when_still_ahead_else_tomorrow() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 1, 30, 0).unwrap();
        assert_eq!(
            next_daily(&now, &[time("02:00")]).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 3, 2, 0, 0).unwrap()
        );
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 2, 0, 0).unwrap();
        assert_eq!(
            next_daily(&now, &[time("02:00")]).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 4, 2, 0, 0).unwrap()
        );
    }

    #[test]
    fn several_daily_times_take_the_nearest() {
        let zone = FixedOffset::east_opt(3600).unwrap();
        let now = zone.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap();
        let next = next_daily(&now, &[time("02:00"), time("14:00")]).unwrap();
        assert_eq!(next, zone.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap());
    }

    #[test]
    fn every_skips_slots_that_passed_during_a_run() {
        let hour = Duration::from_secs(3600);
        // Run 0 ended 10 minutes in: slot 1.
        assert_eq!(next_every(hour, Duration::from_secs(600), 0), (1, 0));
        // Run 1 (due at 1 h) ended at 3 h 10 min: slots 2 and 3 passed, slot 4 next.
        assert_eq!(
            next_every(hour, Duration::from_secs(3 * 3600 + 600), 1),
            (4, 2)
        );
    }

    #[test]
    fn daily_slots_that_passed_during_a_run_are_counted() {
        let times = [time("02:00"), time("14:00")];
        let slot = Utc.with_ymd_and_hms(2026, 12, 3, 2, 0, 0).unwrap();
        let soon = Utc.with_ymd_and_hms(2026, 12, 3, 3, 0, 0).unwrap();
        assert_eq!(daily_slots_passed(&slot, &soon, &times), 0);
        // The 02:00 run lasted until 14:30 the next day: three slots passed.
        let late = Utc.with_ymd_and_hms(2026, 12, 4, 14, 30, 0).unwrap();
        assert_eq!(daily_slots_passed(&slot, &late, &times), 3);
    }

    #[test]
    fn refused_credentials_double_the_wait_up_to_the_cap() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let cap = BACKOFF_CAP;
        assert_eq!(backoff_wait(0, minutes(5), cap), minutes(5));
        assert_eq!(backoff_wait(1, minutes(5), cap), minutes(10));
        assert_eq!(backoff_wait(3, minutes(5), cap), minutes(40));
        assert_eq!(backoff_wait(6, minutes(5), cap), minutes(320));
        assert_eq!(backoff_wait(7, minutes(5), cap), cap);
        assert_eq!(backoff_wait(u32::MAX, minutes(5), cap), cap);
        // A schedule longer than the cap is kept.
        assert_eq!(backoff_wait(2, minutes(24 * 60), cap), minutes(24 * 60));
    }

    #[test]
    fn failing_runs_are_told_once_and_the_recovery_once() {
        let at = |h| Local.with_ymd_and_hms(2026, 12, 7, h, 0, 0).unwrap();
        let mut failing = Failing::default();
        assert_eq!(failing.after(true, at(1)), None);
        assert_eq!(failing.after(true, at(2)), None);
        assert_eq!(
            failing.after(true, at(3)),
            Some(Told::Failing {
                since: at(1),
                runs: 3
            })
        );
        assert_eq!(failing.after(true, at(4)), None);
        assert_eq!(failing.runs, 4);
        assert_eq!(
            failing.after(false, at(5)),
            Some(Told::Recovered {
                since: at(1),
                runs: 4
            })
        );
        assert_eq!(failing.runs, 0);
        // A failure or two that pass untold recover untold.
        assert_eq!(failing.after(true, at(6)), None);
        assert_eq!(failing.after(false, at(7)), None);
        assert_eq!(failing.after(false, at(8)), None);
    }

    #[test]
    fn the_failing_notice_says_since_when_and_how_the_daemon_backs_off() {
        let since = Local.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).unwrap();
        let told = Told::Failing { since, runs: 3 };
        let backoff = (
            "sign-in refused (secret expired)".to_owned(),
            Duration::from_secs(7200),
        );
        let notice = told.notice("the run failed", Some(&backoff));
        assert!(
            notice
                .headline
                .starts_with("failing since 2026-12-07 01:00"),
            "{}",
            notice.headline
        );
        assert!(notice.headline.ends_with(", 3 runs in a row"));
        assert_eq!(
            notice.details[1],
            "sign-in refused (secret expired); backing off: next try in 2h"
        );
        assert_eq!(notice.status, NotifyOn::Failed);
    }

    #[test]
    fn durations_and_times_are_checked() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .to_string()
                .contains("6h")
        );
        assert!(parse_time("25:00").is_err());
        assert!(parse_time("2am").unwrap_err().to_string().contains("HH:MM"));
    }
}
