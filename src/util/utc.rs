//! Unix seconds as UTC calendar digits, for file names, kubeconfigs and tables.

/// `unix` (seconds since the epoch) as `YYYY{d}MM{d}DD{mid}hh{t}mm{t}ss` in UTC,
/// or `None` when it is outside the calendar `time` knows.
pub fn format(unix: i64, d: &str, mid: &str, t: &str) -> Option<String> {
    let c = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    Some(format!(
        "{:04}{d}{:02}{d}{:02}{mid}{:02}{t}{:02}{t}{:02}",
        c.year(),
        u8::from(c.month()),
        c.day(),
        c.hour(),
        c.minute(),
        c.second()
    ))
}

/// [`format`](fn@format), with the epoch for a time outside the calendar.
pub fn format_or_epoch(unix: i64, d: &str, mid: &str, t: &str) -> String {
    format(unix, d, mid, t).unwrap_or_else(|| format(0, d, mid, t).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_the_given_separators() {
        assert_eq!(format(1_738_324_800, "-", "T", ":").as_deref(), Some("2025-01-31T12:00:00"));
        assert_eq!(format(1_738_324_800, "", "T", "").as_deref(), Some("20250131T120000"));
        assert_eq!(format(i64::MAX, "-", " ", ":"), None);
        assert_eq!(format_or_epoch(i64::MAX, "-", "T", ":"), "1970-01-01T00:00:00");
    }
}
