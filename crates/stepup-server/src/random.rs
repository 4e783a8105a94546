//! Randomness from the operating system: ids, codes, nonces, keys.

use std::fmt::Write as _;

/// Why randomness could not be had (the OS refused: practically never).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// `N` random bytes.
///
/// # Errors
/// [`RandomError`] if the OS source fails.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A random version-4 UUID, as Dynamic's ids are.
///
/// # Errors
/// [`RandomError`] if the OS source fails.
pub fn uuid() -> Result<String, RandomError> {
    let mut b = bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex(&b);
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// `N` bytes from exactly `2 * N` hex digits (either case), or `None`. No intermediate buffer: callers holding a
/// key wrap the array in `Zeroizing`.
#[must_use]
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A uniformly random number of `digits` decimal digits, zero-padded (a one-time code).
///
/// # Errors
/// [`RandomError`] if the OS source fails.
pub fn digits(digits: u32) -> Result<String, RandomError> {
    let modulus = 10u64.pow(digits);
    // Rejection sampling: values in the last partial block would make low codes likelier.
    let limit = u64::MAX - (u64::MAX % modulus);
    loop {
        let n = u64::from_le_bytes(bytes::<8>()?);
        if n < limit {
            return Ok(format!("{:0width$}", n % modulus, width = digits as usize));
        }
    }
}

/// A recovery code: 10 characters of Crockford's base32 alphabet (no i, l, o, u) in two groups, `xxxxx-xxxxx`
/// (50 bits).
///
/// # Errors
/// [`RandomError`] if the OS source fails.
pub fn recovery_code() -> Result<String, RandomError> {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let raw = bytes::<10>()?;
    let mut code = String::with_capacity(11);
    for (i, b) in raw.iter().enumerate() {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_at_exactly_its_length() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(from_hex::<4>(&hex(&bytes)), Some(bytes));
        assert_eq!(from_hex::<4>("00010ABFF"), None);
        assert_eq!(from_hex::<4>("000102"), None);
        assert_eq!(from_hex::<2>("zz00"), None);
        assert_eq!(from_hex::<2>("é0a"), None);
    }

    #[test]
    fn uuid_has_the_v4_shape() {
        let id = uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(uuid().unwrap(), id);
    }

    #[test]
    fn codes_have_their_length() {
        for _ in 0..100 {
            let code = digits(6).unwrap();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
        assert_eq!(recovery_code().unwrap().len(), 11);
    }
}
