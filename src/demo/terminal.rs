//! What the demo shows on its terminal: a progress bar while the simulated history is
//! written and consumed, then one status line refreshed in place. The detailed logs go to a
//! file (see [`LogFile`]); where the output is not a terminal, or the logs are shown on it
//! (`--verbose`), the same figures come as plain lines now and then instead.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::domain::Rules;
use crate::metrics::Metrics;
use crate::simulate::sink::Tally;
use crate::store::{AnyStore, Dashboard, Store as _};

/// The demo's log file under its data directory.
pub struct LogFile;

impl LogFile {
    pub const NAME: &'static str = "perfect-order.log";

    /// Where the demo writes its logs for `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(Self::NAME)
    }
}

/// Warnings and errors logged so far (counted by [`CountWarnings`]): the status line says
/// when there are some, since the log is not on the terminal.
static WARNINGS: AtomicU64 = AtomicU64::new(0);

/// A `tracing` layer that counts the warnings and errors logged.
pub struct CountWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            WARNINGS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How the figures reach the person at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A bar, then a status line, redrawn in place.
    InPlace,
    /// Plain lines now and then (output to a pipe or a file, or the logs on the terminal).
    Lines,
}

/// How often each mode writes.
const REDRAW: Duration = Duration::from_millis(250);
const LINE_EVERY: Duration = Duration::from_secs(10);
const FIGURES_EVERY: Duration = Duration::from_secs(5);

/// The demo's terminal.
pub struct Screen {
    mode: Mode,
    bar: ProgressBar,
    log: PathBuf,
}

impl Screen {
    /// A screen on standard output; `verbose`: the logs share the terminal.
    pub fn new(verbose: bool, log: PathBuf) -> Screen {
        let mode = if std::io::stdout().is_terminal() && !verbose {
            Mode::InPlace
        } else {
            Mode::Lines
        };
        let bar = match mode {
            Mode::InPlace => ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout()),
            Mode::Lines => ProgressBar::hidden(),
        };
        Screen { mode, bar, log }
    }

    /// Shows the history's progress until it is all consumed, then the status line, until
    /// the future is dropped.
    pub async fn show(&self, metrics: &Metrics, store: &AnyStore, rules: &Rules, tally: &Tally) {
        let started = Instant::now();
        let mut last_line = None::<Instant>;
        self.style(
            "{spinner} history [{bar:30}] {human_pos}/{human_len} events ({rate}, eta {eta})",
        );
        loop {
            let committed = metrics.records_committed();
            let (sent, all_sent) = tally.history();
            if all_sent && committed >= sent {
                self.history_done(committed, started.elapsed());
                break;
            }
            match self.mode {
                Mode::InPlace => {
                    self.bar.set_length(sent.max(committed));
                    self.bar.set_position(committed);
                }
                Mode::Lines if last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) => {
                    last_line = Some(Instant::now());
                    let of = if all_sent { "" } else { " so far" };
                    println!(
                        "history: {}/{} events consumed{of} ({:.0} events/s)",
                        HumanCount(committed),
                        HumanCount(sent),
                        committed as f64 / started.elapsed().as_secs_f64().max(0.001)
                    );
                }
                Mode::Lines => {}
            }
            tokio::time::sleep(REDRAW).await;
        }
        self.style("{spinner} {msg}");
        // The counts come from this process every redraw; the figures from the database every
        // FIGURES_EVERY (the dashboard read also reads the console's charts).
        let read = || async { store.dashboard(rules, chrono::Utc::now()).await };
        let (mut read_at, mut figures) = (Instant::now(), read().await);
        loop {
            if read_at.elapsed() >= FIGURES_EVERY {
                (read_at, figures) = (Instant::now(), read().await);
            }
            let line = match &figures {
                Ok(dashboard) => status_line(
                    metrics.records_committed(),
                    metrics.lag_records(),
                    dashboard,
                ),
                Err(e) => format!("cannot read the figures: {e}"),
            };
            let line = match WARNINGS.load(Ordering::Relaxed) {
                0 => line,
                n => format!("{line} · {n} warning(s) in {}", self.log.display()),
            };
            match self.mode {
                Mode::InPlace => {
                    self.bar.set_message(line);
                    self.bar.tick();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Mode::Lines => {
                    println!("status: {line}");
                    tokio::time::sleep(LINE_EVERY).await;
                }
            }
        }
    }

    /// Ctrl-C was pressed: the stop is announced at once.
    pub fn stopping(&self) {
        self.bar.finish_and_clear();
        println!("stopping: committing the batch in flight…");
    }

    /// The service has stopped.
    pub fn stopped(&self, metrics: &Metrics, database: &str) {
        println!(
            "stopped: {} events committed by this run; the shop stays in {database} (run the demo again to continue it)",
            HumanCount(metrics.records_committed())
        );
    }

    fn style(&self, template: &str) {
        if let Ok(style) = ProgressStyle::with_template(template) {
            let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
            };
            self.bar
                .set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    fn history_done(&self, committed: u64, took: Duration) {
        let line = format!(
            "history: {} events consumed in {:.1} s; live traffic follows",
            HumanCount(committed),
            took.as_secs_f64()
        );
        match self.mode {
            Mode::InPlace => self.bar.println(line),
            Mode::Lines => println!("{line}"),
        }
    }
}

/// The status line: records consumed, lag, the perfect-order rate today and this month, and
/// the orders awaiting confirmation and over the SLA.
fn status_line(committed: u64, lag: Option<i64>, dashboard: &Dashboard) -> String {
    let rate = |key: &str| match dashboard.po_rate.get(key).copied().flatten() {
        Some(r) => format!("{:.1} %", r * 100.0),
        None => "–".to_owned(),
    };
    let lag = lag.map_or_else(
        || "–".to_owned(),
        |l| HumanCount(l.max(0) as u64).to_string(),
    );
    format!(
        "{} events · lag {lag} · perfect orders today {}, this month {} · awaiting confirmation {}, over SLA {}",
        HumanCount(committed),
        rate("1d"),
        rate("month"),
        dashboard.awaiting_confirmation,
        dashboard.over_sla,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn dashboard(today: Option<f64>, month: Option<f64>) -> Dashboard {
        Dashboard {
            po_rate: BTreeMap::from([("1d", today), ("month", month)]),
            awaiting_confirmation: 4,
            over_sla: 1,
            ..Dashboard::default()
        }
    }

    #[test]
    fn the_status_line_names_events_lag_rates_and_the_confirmation_queue() {
        let line = status_line(431_233, Some(12), &dashboard(Some(0.9312), Some(0.94)));
        assert_eq!(
            line,
            "431,233 events · lag 12 · perfect orders today 93.1 %, this month 94.0 % · \
             awaiting confirmation 4, over SLA 1"
        );
    }

    #[test]
    fn a_figure_not_known_yet_shows_as_a_dash() {
        let line = status_line(0, None, &dashboard(None, None));
        assert!(line.contains("lag –"), "{line}");
        assert!(line.contains("today –, this month –"), "{line}");
    }
}
