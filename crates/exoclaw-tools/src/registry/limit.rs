//! The per-session hourly limit on tool calls (`tools.rate_limit_per_hour`):
//! a sliding window of call times per session (or per user outside a
//! session), forgotten once idle for an hour.

use exoclaw_core::tool::{ToolContext, ToolError};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub(super) struct SessionLimit {
    calls: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SessionLimit {
    /// Take a slot of the hour for `ctx`'s session, or refuse
    /// (`tool.rate_limited`).
    pub(super) fn take(&self, ctx: &ToolContext, per_hour: u32) -> Result<(), ToolError> {
        if per_hour == 0 {
            return Ok(());
        }
        let key = match &ctx.session {
            Some(s) => format!("{}/{}", ctx.tenant, s),
            None => format!("{}/user:{}", ctx.tenant, ctx.user),
        };
        let now = Instant::now();
        let mut calls = self
            .calls
            .lock()
            .map_err(|_| ToolError::failed("rate limiter unavailable"))?;
        // Forget sessions idle for an hour, now and then, so the map stays
        // as small as the set of active sessions.
        if calls.len() > 1024 && calls.len().is_power_of_two() {
            prune_idle(&mut calls, now);
        }
        let window = calls.entry(key).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            window.pop_front();
        }
        if window.len() >= per_hour as usize {
            return Err(ToolError::new(
                "tool.rate_limited",
                format!(
                    "this session made {} tool calls in the last hour (limit tools.rate_limit_per_hour)",
                    window.len()
                ),
            ));
        }
        window.push_back(now);
        Ok(())
    }
}

/// Drop the windows of sessions with no call in the last hour.
fn prune_idle(calls: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
    calls.retain(|_, w| {
        w.back()
            .is_some_and(|t| now.saturating_duration_since(*t) < HOUR)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_session_windows_are_forgotten() {
        let t0 = Instant::now();
        let mut calls: HashMap<String, VecDeque<Instant>> = HashMap::new();
        calls.insert("old".into(), VecDeque::from([t0]));
        calls.insert(
            "recent".into(),
            VecDeque::from([t0, t0 + Duration::from_secs(3000)]),
        );
        prune_idle(&mut calls, t0 + Duration::from_secs(3700));
        assert!(!calls.contains_key("old"), "an hour idle: forgotten");
        assert!(
            calls.contains_key("recent"),
            "a session active within the hour is kept"
        );
    }
}
