//! The daily backup inside `serve` (`backup.schedule`, `HH:MM` UTC): a task
//! owned by `serve` that sleeps until the next run time ([`next_run`], a
//! pure function), takes a backup into `<data dir>/backups` with retention,
//! and logs the outcome: `backup.created` at info, or a failure as the
//! `alert.backup_failed` alert (logged at warn and sent to the alert
//! webhook, see [`crate::alerts`]). A failure or panic of one run
//! is logged and the task waits for the next day; it never takes the
//! gateway down. Shutdown stops the task (a backup in progress gets the
//! grace period to finish).

use super::BackupKey;
use crate::alerts::Alerts;
use crate::config::Settings;
use crate::db::Db;
use futures_util::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

const DAY_SECS: i64 = 86_400;
/// The longest single sleep: the wall clock is looked at again after it, so
/// a changed clock or a suspended machine only delays a run this much.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// A time of day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyAt {
    hour: u8,
    minute: u8,
}

impl DailyAt {
    /// `HH:MM`, 00:00 to 23:59.
    pub fn parse(s: &str) -> Option<Self> {
        let (h, m) = s.split_once(':')?;
        let digits = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
        if !(digits(h) && digits(m)) {
            return None;
        }
        let hour: u8 = h.parse().ok()?;
        let minute: u8 = m.parse().ok()?;
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    fn seconds_into_day(self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.minute) * 60
    }
}

/// The first time at `at` (UTC) strictly after `now` (Unix seconds).
pub fn next_run(now: i64, at: DailyAt) -> i64 {
    let today = now.div_euclid(DAY_SECS) * DAY_SECS + at.seconds_into_day();
    if today > now { today } else { today + DAY_SECS }
}

/// The running schedule; [`ScheduledBackups::stop`] ends it.
pub struct ScheduledBackups {
    task: crate::supervisor::Task,
    alerts: Alerts,
}

impl ScheduledBackups {
    /// Starts the task. The backups go to `<data dir>/backups`.
    pub fn start(
        settings: Arc<Settings>,
        db: Db,
        key: BackupKey,
        at: DailyAt,
        alerts: Alerts,
        supervisor: &crate::supervisor::Supervisor,
    ) -> Self {
        tracing::info!(
            at = %format!("{:02}:{:02} UTC", at.hour, at.minute),
            dir = %super::default_dir(&settings.home).display(),
            key_id = %key.key_id(),
            "daily backups scheduled"
        );
        let alerts_handle = alerts.clone();
        let task = supervisor.start(
            "backup.daily",
            crate::supervisor::Policy::Background,
            move |token| async move {
                loop {
                    let next = next_run(super::unix_secs(SystemTime::now()), at);
                    if !sleep_until(next, &token).await {
                        return Ok(());
                    }
                    run_once(&settings, &db, &key, &alerts).await;
                }
            },
        );
        Self {
            task,
            alerts: alerts_handle,
        }
    }

    /// Stops the task, waiting up to `grace` for a backup in progress.
    pub async fn stop(self, grace: Duration) {
        if !self.task.stop(grace).await {
            self.alerts.backup_failed(
                "a scheduled backup was still running at shutdown and was abandoned",
            );
        }
    }
}

/// Sleeps until Unix second `at`; `false` if cancelled first.
async fn sleep_until(at: i64, cancel: &CancellationToken) -> bool {
    loop {
        let now = super::unix_secs(SystemTime::now());
        if now >= at {
            return true;
        }
        let left = Duration::from_secs(u64::try_from(at - now).unwrap_or(0)).min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(left) => {}
            () = cancel.cancelled() => return false,
        }
    }
}

/// One scheduled backup; a failure is raised as `alert.backup_failed`.
pub async fn run_once(settings: &Settings, db: &Db, key: &BackupKey, alerts: &Alerts) {
    let dir = super::default_dir(&settings.home);
    let outcome = AssertUnwindSafe(super::create(settings, db, key, &dir))
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(created)) => {
            tracing::info!(
                event = "backup.created",
                file = %created.path.display(),
                bytes = created.bytes,
                files = created.manifest.files.len(),
                pruned = created.pruned.removed.len(),
                "backup.created"
            );
            for e in &created.pruned.errors {
                alerts.backup_failed(&format!("pruning old backups: {e}"));
            }
        }
        Ok(Err(e)) => alerts.backup_failed(&format!("{e:#}")),
        Err(_) => alerts.backup_failed("the backup panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    /// 2026-01-02T00:00:00Z.
    const MIDNIGHT: i64 = 1_767_312_000;

    fn at(s: &str) -> DailyAt {
        DailyAt::parse(s).unwrap()
    }

    #[test]
    fn parses_hh_mm_only() {
        assert_eq!(
            at("03:30"),
            DailyAt {
                hour: 3,
                minute: 30
            }
        );
        assert_eq!(at("00:00"), DailyAt { hour: 0, minute: 0 });
        assert_eq!(
            at("23:59"),
            DailyAt {
                hour: 23,
                minute: 59
            }
        );
        for bad in [
            "24:00", "12:60", "3:30", "03:3", "0330", "", "aa:bb", "-1:00", "+1:00", "every:5",
        ] {
            assert!(DailyAt::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_next_run_is_today_if_still_ahead_else_tomorrow() {
        let t = at("03:30");
        let today = MIDNIGHT + 3 * 3600 + 30 * 60;
        assert_eq!(next_run(MIDNIGHT, t), today);
        assert_eq!(next_run(today - 1, t), today);
        assert_eq!(
            next_run(today, t),
            today + DAY,
            "never twice in the same minute"
        );
        assert_eq!(next_run(today + 1, t), today + DAY);
        assert_eq!(next_run(MIDNIGHT + DAY - 1, t), today + DAY);
        assert_eq!(next_run(MIDNIGHT, at("00:00")), MIDNIGHT + DAY);
        assert_eq!(next_run(MIDNIGHT - 1, at("00:00")), MIDNIGHT);
        assert_eq!(next_run(MIDNIGHT, at("23:59")), MIDNIGHT + DAY - 60);
    }

    /// The call a scheduled run makes, on a real SQLite data dir: one
    /// backup; and when it cannot be written, a logged failure, no panic.
    #[tokio::test]
    async fn a_scheduled_run_backs_up_and_survives_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let home = crate::home::Home::new(tmp.path().join("home"));
        home.ensure_layout().unwrap();
        let settings = Settings::from_config(
            home.clone(),
            crate::config::FileConfig::default(),
            crate::config::env::Env::default(),
        );
        let db = crate::db::open(&settings).await.unwrap();
        crate::db::migrate_latest(db.store().as_ref())
            .await
            .unwrap();
        let key = BackupKey::from_hex(&"ab".repeat(32)).unwrap();
        let dir = super::super::default_dir(&home);
        let sup = crate::supervisor::Supervisor::new();
        let (alerts, _task) = Alerts::start(&settings.config.alerts, None, "test".into(), &sup);

        run_once(&settings, &db, &key, &alerts).await;
        let made: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(made.len(), 1, "one backup, no leftovers: {made:?}");
        let name = made[0].file_name().into_string().unwrap();
        assert!(super::super::is_backup_name(&name), "{name}");

        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, "not a directory").unwrap();
        run_once(&settings, &db, &key, &alerts).await;
        assert!(dir.is_file(), "the failure changed nothing");
        db.close().await;
    }

    /// A loopback webhook: the JSON bodies POSTed to it, on a channel.
    fn webhook() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
        use std::io::{BufRead as _, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        let _ = tx.send(serde_json::from_slice(&body).unwrap());
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                        len = 0;
                    }
                }
            }
        });
        (url, rx)
    }

    /// A backup into a directory that cannot be written raises
    /// `alert.backup_failed`, delivered to the webhook.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_scheduled_backup_alerts_the_webhook() {
        let tmp = tempfile::tempdir().unwrap();
        let home = crate::home::Home::new(tmp.path().join("home"));
        home.ensure_layout().unwrap();
        let (url, posted) = webhook();
        let config = serde_json::from_value(serde_json::json!({"alerts": {"webhook_url": url}}))
            .expect("a valid config");
        let settings =
            Settings::from_config(home.clone(), config, crate::config::env::Env::default());
        let db = crate::db::open(&settings).await.unwrap();
        crate::db::migrate_latest(db.store().as_ref())
            .await
            .unwrap();
        let client = crate::egress::endpoint_client(&settings, "alerts.webhook_url", &url).unwrap();
        let sup = crate::supervisor::Supervisor::new();
        let (alerts, task) =
            Alerts::start(&settings.config.alerts, Some(client), "test:1".into(), &sup);
        let key = BackupKey::from_hex(&"ab".repeat(32)).unwrap();
        let dir = super::super::default_dir(&home);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::write(&dir, "not a directory").unwrap();

        run_once(&settings, &db, &key, &alerts).await;
        let alert = tokio::task::spawn_blocking(move || {
            posted.recv_timeout(Duration::from_secs(10)).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(alert["event"], "alert.backup_failed");
        assert_eq!(alert["severity"], "critical");
        assert_eq!(alert["instance"], "test:1");
        assert!(alert["detail"]["error"].is_string(), "{alert}");
        task.stop(Duration::from_secs(5)).await;
        db.close().await;
    }

    #[test]
    fn runs_are_a_day_apart() {
        let t = at("12:00");
        let mut now = MIDNIGHT + 5;
        let mut runs = Vec::new();
        for _ in 0..3 {
            now = next_run(now, t);
            runs.push(now);
        }
        assert_eq!(runs[1] - runs[0], DAY);
        assert_eq!(runs[2] - runs[1], DAY);
    }
}
