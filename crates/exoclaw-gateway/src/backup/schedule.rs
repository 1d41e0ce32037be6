//! Scheduled backups inside `serve` (`backup.schedule`: `HH:MM` UTC daily,
//! or any schedule of the core schedule primitive): a task of the
//! supervisor that sleeps until the next occurrence, claims it in the job
//! store (so that of several gateways sharing one PostgreSQL exactly one
//! takes each backup), takes a backup into `<data dir>/backups` with
//! retention, records the outcome in the job store, and logs it:
//! `backup.created` at info, or a failure as the `alert.backup_failed`
//! alert (logged at warn and sent to the alert webhook, see
//! [`crate::alerts`]). A failure or panic of one run is logged and the task
//! waits for the next occurrence; it never takes the gateway down. Shutdown
//! stops the task (a backup in progress gets the grace period to finish).

use super::BackupKey;
use crate::alerts::Alerts;
use crate::config::Settings;
use crate::db::Db;
use exoclaw_core::schedule::{CronExpr, Schedule, ScheduleError, TimeZone};
use exoclaw_core::{TenantId, UnixMillis, now_ms};
use futures_util::FutureExt as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest single sleep: the wall clock is looked at again after it, so
/// a changed clock or a suspended machine only delays a run this much.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// The job id the occurrences are claimed under (`job_runs`).
pub const JOB: &str = "backup.scheduled";

/// `backup.schedule`: `HH:MM` (every day at that time, UTC, as before) or
/// any schedule text (`cron 30 3 * * * in Europe/Berlin`, `every 6h`,
/// `@daily`). The reason names what is wrong.
pub fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let text = text.trim();
    if let Some((hour, minute)) = daily(text) {
        let expr: CronExpr = format!("{minute} {hour} * * *")
            .parse()
            .map_err(|e: ScheduleError| e.to_string())?;
        return Ok(Schedule::cron(expr, TimeZone::utc()));
    }
    text.parse::<Schedule>().map_err(|e| {
        format!(
            "{e} (use HH:MM for a daily backup in UTC, or a schedule such as `cron 30 3 * * *`)"
        )
    })
}

/// `HH:MM`, 00:00 to 23:59.
fn daily(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !(digits(h) && digits(m)) {
        return None;
    }
    let hour: u8 = h.parse().ok()?;
    let minute: u8 = m.parse().ok()?;
    (hour < 24 && minute < 60).then_some((hour, minute))
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
        schedule: Schedule,
        instance: String,
        alerts: Alerts,
        supervisor: &crate::supervisor::Supervisor,
    ) -> Self {
        tracing::info!(
            schedule = %schedule,
            dir = %super::default_dir(&settings.home).display(),
            key_id = %key.key_id(),
            "backups scheduled"
        );
        let alerts_handle = alerts.clone();
        let task = supervisor.start(
            "backup.daily",
            crate::supervisor::Policy::Background,
            move |token| async move {
                while let Some(next) = schedule.next_after(now_ms()) {
                    if !sleep_until(next, &token).await {
                        return Ok(());
                    }
                    run_claimed(&settings, &db, &key, &alerts, next, &instance).await;
                }
                tracing::info!("the backup schedule has no further occurrence");
                Ok(())
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

/// Sleeps until `at`; `false` if cancelled first.
async fn sleep_until(at: UnixMillis, cancel: &CancellationToken) -> bool {
    loop {
        let now = now_ms();
        if now >= at {
            return true;
        }
        let left = Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(left) => {}
            () = cancel.cancelled() => return false,
        }
    }
}

/// Occurrence `due` of the schedule: claimed in the job store first (of
/// several gateways on one database, one takes it), then the backup, then
/// its outcome recorded. When the store cannot be asked the backup is taken
/// anyway: a backup too many is better than none.
pub async fn run_claimed(
    settings: &Settings,
    db: &Db,
    key: &BackupKey,
    alerts: &Alerts,
    due: UnixMillis,
    instance: &str,
) {
    let store = db.store();
    let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
    match store
        .claim_job_run(&tenant, JOB, due, instance, now_ms())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(due, "another gateway took this scheduled backup");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim the scheduled backup; taking it anyway");
            run_once(settings, db, key, alerts).await;
            return;
        }
    }
    let ok = run_once(settings, db, key, alerts).await;
    let status = if ok { "ok" } else { "failed" };
    if let Err(e) = store
        .finish_job_run(&tenant, JOB, due, status, None, now_ms())
        .await
    {
        tracing::warn!(error = %e, "cannot record the scheduled backup's outcome");
    }
}

/// One scheduled backup; a failure is raised as `alert.backup_failed`.
/// `true` when the backup was written.
pub async fn run_once(settings: &Settings, db: &Db, key: &BackupKey, alerts: &Alerts) -> bool {
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
            true
        }
        Ok(Err(e)) => {
            alerts.backup_failed(&format!("{e:#}"));
            false
        }
        Err(_) => {
            alerts.backup_failed("the backup panicked");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-02T00:00:00Z, in milliseconds.
    const MIDNIGHT: i64 = 1_767_312_000_000;
    const DAY: i64 = 86_400_000;

    #[test]
    fn hh_mm_is_a_daily_utc_schedule_and_other_forms_parse_too() {
        let s = parse_schedule("03:30").unwrap();
        let today = MIDNIGHT + (3 * 3600 + 30 * 60) * 1000;
        assert_eq!(s.next_after(MIDNIGHT), Some(today));
        assert_eq!(
            s.next_after(today),
            Some(today + DAY),
            "never twice the same day"
        );
        assert_eq!(
            parse_schedule("00:00").unwrap().next_after(MIDNIGHT),
            Some(MIDNIGHT + DAY)
        );
        assert!(parse_schedule("every 6h").is_ok());
        assert!(parse_schedule("cron 0 4 * * * in Europe/Berlin").is_ok());
        for bad in [
            "24:00",
            "12:60",
            "3:30",
            "03:3",
            "",
            "aa:bb",
            "every 5s",
            "cron 0 0 30 2 *",
        ] {
            let e = parse_schedule(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
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

        assert!(run_once(&settings, &db, &key, &alerts).await);
        let made: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(made.len(), 1, "one backup, no leftovers: {made:?}");
        let name = made[0].file_name().into_string().unwrap();
        assert!(super::super::is_backup_name(&name), "{name}");

        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, "not a directory").unwrap();
        assert!(!run_once(&settings, &db, &key, &alerts).await);
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

        assert!(!run_once(&settings, &db, &key, &alerts).await);
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

    /// Two gateways on one store: each occurrence is backed up by one of
    /// them, and the outcome is recorded.
    #[tokio::test]
    async fn an_occurrence_is_claimed_once() {
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
        let sup = crate::supervisor::Supervisor::new();
        let (alerts, _task) = Alerts::start(&settings.config.alerts, None, "test".into(), &sup);
        let due = MIDNIGHT;
        for instance in ["a:1", "b:1"] {
            run_claimed(&settings, &db, &key, &alerts, due, instance).await;
        }
        let made = std::fs::read_dir(super::super::default_dir(&home))
            .unwrap()
            .count();
        assert_eq!(made, 1, "one backup for one occurrence");
        let runs = db
            .store()
            .list_job_runs(&TenantId::new(exoclaw_core::DEFAULT_TENANT), JOB, 10)
            .await
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].owner.as_str(), runs[0].status.as_str()),
            ("a:1", "ok")
        );
        db.close().await;
    }
}
