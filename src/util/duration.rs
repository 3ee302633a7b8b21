//! Human durations for configuration and flags: `30s`, `500ms`, `5m`, `1h30m`, `7d`.

use std::time::Duration;

/// The longest duration accepted anywhere (100 years).
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86400);

/// As [`parse`], refusing zero: a lifetime of nothing (a certificate that is
/// expired when made, a token that cannot be used) is never what was meant.
///
/// # Errors
/// As [`parse`], and for a zero duration.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("{:?} is no time at all: give a lifetime such as 1h, 12h or 7d", s.trim()));
    }
    Ok(d)
}

/// Parses a human duration (see the module docs), at most [`MAX`].
///
/// # Errors
/// A message naming the offending text.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: use e.g. 30s, 5m, 1h, 12h, 7d".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number at {rest:?}"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs: u64 = match unit {
            "ms" => {
                total =
                    total.checked_add(Duration::from_millis(n)).filter(|t| *t <= MAX).ok_or_else(|| too_large(s))?;
                continue;
            }
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86400,
            "" => return Err(format!("invalid duration {s:?}: missing unit (ms, s, m, h, d)")),
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h, d)")),
        };
        let add = n.checked_mul(secs).ok_or_else(|| too_large(s))?;
        total = total.checked_add(Duration::from_secs(add)).filter(|t| *t <= MAX).ok_or_else(|| too_large(s))?;
    }
    Ok(total)
}

fn too_large(s: &str) -> String {
    format!("invalid duration {s:?}: too large (at most 100 years)")
}

/// Formats a duration the way [`parse`] reads it (largest units first).
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A duration in words, in its largest whole unit, for sentences such as "expired
/// 12 minutes ago": `1 second`, `12 minutes`, `3 hours`, `2 days` (rounded down).
pub fn words(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86400 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// serde support: `#[serde(with = "crate::util::duration::serde_human")]`.
pub mod serde_human {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serializes as a human duration string.
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Deserializes from a human duration string.
    ///
    /// # Errors
    /// When the string is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lifetime_is_never_zero() {
        assert_eq!(super::parse_lifetime("12h"), Ok(std::time::Duration::from_secs(43200)));
        assert_eq!(
            super::parse_lifetime("0s").unwrap_err(),
            "\"0s\" is no time at all: give a lifetime such as 1h, 12h or 7d"
        );
        assert_eq!(
            super::parse_lifetime("0ms").unwrap_err(),
            "\"0ms\" is no time at all: give a lifetime such as 1h, 12h or 7d"
        );
        assert!(super::parse_lifetime("x").is_err());
    }

    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 7d "), Ok(Duration::from_secs(7 * 86400)));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("30").unwrap_err().contains("missing unit"));
        assert!(parse("5y").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("expected a number"));
        assert!(parse("99999999999999999999s").is_err());
        assert!(parse("999999999999999999d").unwrap_err().contains("too large"));
        assert!(parse("18446744073709551615s1s").unwrap_err().contains("too large"));
        assert!(parse("36501d").unwrap_err().contains("at most 100 years"));
        assert!(parse("36500d").is_ok());
    }

    #[test]
    fn format_round_trips() {
        for s in ["30s", "1h30m", "7d", "250ms", "1d1h1m1s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }

    #[test]
    fn words_use_the_largest_whole_unit() {
        assert_eq!(words(Duration::ZERO), "0 seconds");
        assert_eq!(words(Duration::from_millis(1500)), "1 second");
        assert_eq!(words(Duration::from_secs(59)), "59 seconds");
        assert_eq!(words(Duration::from_secs(60)), "1 minute");
        assert_eq!(words(Duration::from_secs(12 * 60 + 59)), "12 minutes");
        assert_eq!(words(Duration::from_secs(3 * 3600 + 3599)), "3 hours");
        assert_eq!(words(Duration::from_secs(86399)), "23 hours");
        assert_eq!(words(Duration::from_secs(86400)), "1 day");
        assert_eq!(words(Duration::from_secs(2 * 86400 + 7)), "2 days");
    }
}
