//! Status feedback for a custom kind: a cert-manager `Certificate` is healthy when its
//! `Ready` condition is true, and degraded when it expires within a warning period.

use maestro_plugin::feedback::condition;
use maestro_plugin::prelude::*;

pub struct CertificateReady;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Report Degraded when `status.notAfter` is closer than this many days.
    pub expiry_warning_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { expiry_warning_days: 7 }
    }
}

const DAY_MS: i64 = 86_400_000;

impl StatusFeedback for CertificateReady {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.expiry_warning_days < 0 { Err("expiry_warning_days must not be negative".into()) } else { Ok(()) }
    }

    fn status(ctx: &Context, live: &Manifest, _desired: &Manifest, settings: &Settings) -> Result<Report, String> {
        if live.kind() != "Certificate" || !live.api_version().starts_with("cert-manager.io/") {
            return Ok(Report::new());
        }
        let ready = condition(live, "Ready");
        let mut report = Report::new().boolean("ready", ready.as_ref().is_some_and(|c| c.is_true()));
        let not_after = live.pointer("/status/notAfter").and_then(Value::as_str);
        if let Some(not_after) = not_after {
            report = report.text("notAfter", not_after);
        }
        let Some(ready) = ready else {
            return Ok(report.health(HealthState::Progressing, "waiting for cert-manager to report Ready"));
        };
        if !ready.is_true() {
            let issuing = condition(live, "Issuing").is_some_and(|c| c.is_true());
            let state = if issuing { HealthState::Progressing } else { HealthState::Degraded };
            return Ok(report.health(state, format!("{}: {}", ready.reason, ready.message)));
        }
        let expires = not_after.map(unix_ms).transpose()?;
        if let Some(expires) = expires.filter(|e| e - ctx.now_unix_ms < settings.expiry_warning_days * DAY_MS) {
            let days = (expires - ctx.now_unix_ms) / DAY_MS;
            return Ok(report.health(HealthState::Degraded, format!("certificate expires in {days} days")));
        }
        Ok(report.health(HealthState::Healthy, ready.message))
    }
}

/// Unix milliseconds of an RFC 3339 UTC time as Kubernetes writes it (`2026-05-01T12:00:00Z`).
fn unix_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("notAfter {text:?} is not a UTC RFC 3339 time");
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
    if text.len() != 20 || !text.ends_with('Z') {
        return Err(bad());
    }
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    Ok(((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

maestro_plugin::export_status_feedback!(CertificateReady);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn certificate(conditions: Value, not_after: &str) -> Value {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "web-tls"},
               "status": {"conditions": conditions, "notAfter": not_after}})
    }

    fn report_at(live: &Value, now: &str) -> Report {
        let ctx = testing::context().at_unix_ms(unix_ms(now).unwrap());
        testing::status_with::<CertificateReady>(ctx, live, &json!({}), &json!({})).unwrap()
    }

    #[test]
    fn a_ready_certificate_far_from_expiry_is_healthy() {
        let live =
            certificate(json!([{"type": "Ready", "status": "True", "message": "up to date"}]), "2027-01-01T00:00:00Z");
        let report = report_at(&live, "2026-11-01T00:00:00Z");
        assert_eq!(report.state(), Some(HealthState::Healthy));
        assert_eq!(report.get("ready"), Some(&FeedbackValue::Boolean(true)));
        assert_eq!(report.get("notAfter"), Some(&FeedbackValue::Text("2027-01-01T00:00:00Z".into())));
    }

    #[test]
    fn a_certificate_close_to_expiry_is_degraded() {
        let live = certificate(json!([{"type": "Ready", "status": "True"}]), "2026-11-05T00:00:00Z");
        let report = report_at(&live, "2026-11-01T00:00:00Z");
        assert_eq!(report.state(), Some(HealthState::Degraded));
        assert!(report.health.unwrap().message.contains("4 days"));
    }

    #[test]
    fn issuing_is_progressing_and_a_failed_issuance_is_degraded() {
        let issuing = certificate(
            json!([{"type": "Ready", "status": "False", "reason": "DoesNotExist"},
                                         {"type": "Issuing", "status": "True"}]),
            "2027-01-01T00:00:00Z",
        );
        assert_eq!(report_at(&issuing, "2026-11-01T00:00:00Z").state(), Some(HealthState::Progressing));
        let failed = certificate(
            json!([{"type": "Ready", "status": "False", "reason": "Failed", "message": "ACME"}]),
            "2027-01-01T00:00:00Z",
        );
        assert_eq!(report_at(&failed, "2026-11-01T00:00:00Z").state(), Some(HealthState::Degraded));
    }

    #[test]
    fn unix_time_matches_known_dates() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(unix_ms("2000-03-01T00:00:01Z").unwrap(), 951_868_801_000);
        assert!(unix_ms("2000-03-01").is_err());
    }

    #[test]
    fn other_kinds_get_no_opinion() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(report_at(&live, "2026-11-01T00:00:00Z"), Report::new());
    }
}
