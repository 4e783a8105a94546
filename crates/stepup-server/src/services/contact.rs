//! Where codes may go: email addresses and phone numbers, checked before anything is sent or stored.

use super::ServiceError;

/// Checks an email address enough to send to it.
///
/// # Errors
/// [`ServiceError::BadInput`] for an address that cannot be one.
pub fn validate_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || "\"<>()[]\\,;:".contains(c))
        // A bare address as the mail library reads it: the address stored is the one the code goes to (a
        // `"victim@corp.com"<attacker@evil.com>` would be stored as the first and delivered to the second).
        && email.parse::<lettre::Address>().is_ok();
    if valid {
        Ok(email.to_ascii_lowercase())
    } else {
        Err(ServiceError::BadInput("Invalid email address".into()))
    }
}

/// Checks a phone number and returns the destination `+<country code><number>`.
///
/// # Errors
/// [`ServiceError::BadInput`] for a country code that is not 1–3 digits, a number that is not 4–14 digits, or an
/// ISO code that is not two letters.
pub fn validate_phone(country_code: &str, number: &str, iso: &str) -> Result<String, ServiceError> {
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let iso_ok = iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_alphabetic());
    if !(digits(country_code, 1, 3) && digits(number, 4, 14) && iso_ok) {
        return Err(ServiceError::BadInput("Invalid phone number".into()));
    }
    Ok(format!("+{country_code}{number}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn input_rules() {
        assert_eq!(validate_email(" Alice@Example.com ").unwrap(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@com",
            "a b@example.com",
            "alice@.com",
            "\"victim@corp.com\"<attacker@evil.com>",
            "victim@corp.com<attacker@evil.com>",
            "a,b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_phone("1", "5551234567", "US").unwrap(), "+15551234567");
        assert!(validate_phone("", "5551234567", "US").is_err());
        assert!(validate_phone("1", "555-1234", "US").is_err());
        assert!(validate_phone("1", "5551234567", "USA").is_err());
    }
}
