//! The text forms of the config's fields: strict lowercase hex of an exact
//! length, and RFC 3339 UTC times.

use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Exactly `2 N` lowercase hex digits.
pub(super) fn hex_array<const N: usize>(
    field: &str,
    s: &str,
) -> std::result::Result<[u8; N], String> {
    let bad = || format!("{field} is not {} lowercase hex digits", 2 * N);
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if s.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        *o = digit(pair[0]).ok_or_else(bad)? << 4 | digit(pair[1]).ok_or_else(bad)?;
    }
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time (the epoch for a time before it).
pub(super) fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The exact form [`rfc3339_utc`] writes, with fields in range.
pub(super) fn check_created(s: &str) -> std::result::Result<(), String> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
    let ok = shape_ok
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "created {s:?} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
        for s in [0, 951_782_400, 1_709_251_199, 253_402_300_799] {
            check_created(&at(s)).unwrap();
        }
        for bad in [
            "",
            "2024-02-29 23:59:59Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00.5Z",
            "२०२४-01-01T00:00:00Z",
        ] {
            assert!(check_created(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_strict() {
        assert_eq!(hex(&[0x01, 0xab, 0xff]), "01abff");
        assert_eq!(hex_array::<3>("f", "01abff").unwrap(), [0x01, 0xab, 0xff]);
        for bad in ["01ABff", "01abf", "01abfff", "01abgf", "01ab é"] {
            assert!(hex_array::<3>("f", bad).is_err(), "{bad}");
        }
    }
}
