//! Reconcile hook: bundles are applied (and, by default, deleted) only inside a weekly
//! maintenance window; outside it the agent is asked to come back when the window opens.

use maestro_plugin::prelude::*;

pub struct MaintenanceWindow;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Opening time, `HH:MM`, in the zone given by `utc_offset_minutes`.
    pub start: String,
    pub duration_minutes: u32,
    /// Days the window opens (`mon`..`sun`); empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Gate deletes too.
    #[serde(default = "yes")]
    pub gate_deletes: bool,
    /// Never wait longer than this before asking again, so settings changes take effect.
    #[serde(default = "one_hour")]
    pub max_requeue_ms: u32,
}

fn yes() -> bool {
    true
}

fn one_hour() -> u32 {
    3_600_000
}

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 1440;
const WEEK_MINUTES: i64 = 7 * DAY_MINUTES;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The window, as minutes since Monday 00:00 local time, opening on each listed day.
struct Window {
    opens: Vec<i64>,
    duration: i64,
}

impl Window {
    fn from_settings(settings: &Settings) -> Result<Window, String> {
        let (hours, minutes) = settings.start.split_once(':').ok_or("start must be HH:MM")?;
        let hours: i64 = hours.parse().map_err(|_| "start: hours are not a number")?;
        let minutes: i64 = minutes.parse().map_err(|_| "start: minutes are not a number")?;
        if !(0..24).contains(&hours) || !(0..60).contains(&minutes) {
            return Err(format!("start {} is not a time of day", settings.start));
        }
        let duration = i64::from(settings.duration_minutes);
        if duration == 0 || duration > DAY_MINUTES {
            return Err("duration_minutes must be within 1..=1440".into());
        }
        let mut opens = Vec::new();
        for (index, day) in DAYS.iter().enumerate() {
            if settings.days.is_empty() || settings.days.iter().any(|d| d.eq_ignore_ascii_case(day)) {
                opens.push(index as i64 * DAY_MINUTES + hours * 60 + minutes);
            }
        }
        if let Some(unknown) = settings.days.iter().find(|d| !DAYS.iter().any(|day| d.eq_ignore_ascii_case(day))) {
            return Err(format!("days: {unknown:?} is not one of {}", DAYS.join(", ")));
        }
        Ok(Window { opens, duration })
    }

    /// Milliseconds until the window next opens, or 0 when it is open at `now_unix_ms`.
    fn wait_ms(&self, now_unix_ms: i64, utc_offset_minutes: i32) -> i64 {
        let local_ms = now_unix_ms + i64::from(utc_offset_minutes) * MINUTE_MS;
        // 1970-01-01 was a Thursday: shift so that the week starts on Monday.
        let week_ms = (local_ms + 3 * DAY_MINUTES * MINUTE_MS).rem_euclid(WEEK_MINUTES * MINUTE_MS);
        let mut wait = i64::MAX;
        for &open in &self.opens {
            let open_ms = open * MINUTE_MS;
            let since_open = (week_ms - open_ms).rem_euclid(WEEK_MINUTES * MINUTE_MS);
            if since_open < self.duration * MINUTE_MS {
                return 0;
            }
            wait = wait.min(WEEK_MINUTES * MINUTE_MS - since_open);
        }
        wait
    }
}

fn gate(ctx: &Context, settings: &Settings) -> Result<Option<u32>, String> {
    let wait = Window::from_settings(settings)?.wait_ms(ctx.now_unix_ms, settings.utc_offset_minutes);
    if wait == 0 {
        return Ok(None);
    }
    maestro_plugin::log::info(&format!("outside the maintenance window; opens in {} min", wait / MINUTE_MS));
    Ok(Some(wait.clamp(1000, i64::from(settings.max_requeue_ms.max(1000))) as u32))
}

impl ReconcileHook for MaintenanceWindow {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        Window::from_settings(settings).map(|_| ())
    }

    fn before_apply(ctx: &Context, bundle: Bundle, settings: &Settings) -> BeforeApply {
        match gate(ctx, settings) {
            Ok(None) => BeforeApply::Proceed(bundle.manifests),
            Ok(Some(ms)) => BeforeApply::Requeue(ms),
            Err(err) => BeforeApply::Fail(err),
        }
    }

    fn before_delete(ctx: &Context, _bundle: &Bundle, settings: &Settings) -> BeforeDelete {
        if !settings.gate_deletes {
            return BeforeDelete::Proceed;
        }
        match gate(ctx, settings) {
            Ok(None) => BeforeDelete::Proceed,
            Ok(Some(ms)) => BeforeDelete::Requeue(ms),
            Err(err) => BeforeDelete::Fail(err),
        }
    }
}

maestro_plugin::export_reconcile_hook!(MaintenanceWindow);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    /// 2026-11-21 was a Saturday; 00:00 UTC that day in Unix ms.
    const SATURDAY: i64 = 1_795_219_200_000;
    const HOUR: i64 = 3_600_000;

    fn at(ms: i64) -> Context {
        testing::context().at_unix_ms(ms)
    }

    fn bundle() -> Bundle {
        testing::bundle(&[json!({"kind": "ConfigMap", "metadata": {"name": "c"}})], 0)
    }

    #[test]
    fn inside_the_window_the_bundle_proceeds_unchanged() {
        let settings = json!({"start": "22:00", "duration_minutes": 120, "days": ["sat"]});
        let outcome = testing::before_apply::<MaintenanceWindow>(at(SATURDAY + 23 * HOUR), &bundle(), &settings);
        assert_eq!(outcome, BeforeApply::Proceed(bundle().manifests));
    }

    #[test]
    fn a_window_crossing_midnight_is_still_open_after_midnight() {
        let settings = json!({"start": "23:00", "duration_minutes": 120, "days": ["fri"]});
        let outcome = testing::before_apply::<MaintenanceWindow>(at(SATURDAY + HOUR / 2), &bundle(), &settings);
        assert!(matches!(outcome, BeforeApply::Proceed(_)), "{outcome:?}");
    }

    #[test]
    fn before_the_window_it_requeues_until_it_opens() {
        let settings = json!({"start": "22:00", "duration_minutes": 60, "max_requeue_ms": 86_400_000});
        let outcome = testing::before_apply::<MaintenanceWindow>(at(SATURDAY + 20 * HOUR), &bundle(), &settings);
        assert_eq!(outcome, BeforeApply::Requeue(2 * HOUR as u32));
        let capped = json!({"start": "22:00", "duration_minutes": 60});
        let outcome = testing::before_apply::<MaintenanceWindow>(at(SATURDAY + 20 * HOUR), &bundle(), &capped);
        assert_eq!(outcome, BeforeApply::Requeue(HOUR as u32), "waits are capped at max_requeue_ms");
    }

    #[test]
    fn the_utc_offset_moves_the_window() {
        let settings = json!({"start": "22:00", "duration_minutes": 60, "days": ["sat"], "utc_offset_minutes": 120});
        let outcome =
            testing::before_apply::<MaintenanceWindow>(at(SATURDAY + 20 * HOUR + HOUR / 2), &bundle(), &settings);
        assert!(matches!(outcome, BeforeApply::Proceed(_)), "22:30 local is 20:30 UTC: {outcome:?}");
    }

    #[test]
    fn deletes_are_gated_unless_turned_off() {
        let settings = json!({"start": "22:00", "duration_minutes": 60});
        let outcome = testing::before_delete::<MaintenanceWindow>(at(SATURDAY), &bundle(), &settings);
        assert!(matches!(outcome, BeforeDelete::Requeue(_)));
        let open = json!({"start": "22:00", "duration_minutes": 60, "gate_deletes": false});
        assert_eq!(testing::before_delete::<MaintenanceWindow>(at(SATURDAY), &bundle(), &open), BeforeDelete::Proceed);
    }

    #[test]
    fn bad_times_and_days_are_refused_in_settings() {
        let bad = |s: Value| testing::hook_settings::<MaintenanceWindow>(&s).unwrap_err();
        assert!(bad(json!({"start": "25:00", "duration_minutes": 60})).contains("25:00"));
        assert!(bad(json!({"start": "22:00", "duration_minutes": 0})).contains("duration"));
        assert!(bad(json!({"start": "22:00", "duration_minutes": 60, "days": ["funday"]})).contains("funday"));
    }
}
