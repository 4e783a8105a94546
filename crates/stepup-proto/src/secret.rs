//! Secret newtypes: one-time codes, TOTP codes, recovery codes, JWTs.
//!
//! In the style of oauth2-rs: a secret is a distinct type per meaning, `Debug` prints `Name([redacted])`,
//! `Display` prints `[redacted]`, the value is reached only through `expose_secret()`, it is zeroized on drop, and
//! two secrets compare in constant time. On the wire a secret is a plain JSON string (`serde(transparent)`).

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "[redacted]";

macro_rules! secret_string {
    ($( $(#[$doc:meta])* $name:ident; )+) => {$(
        $(#[$doc])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The secret itself. Every call site is a place where the secret leaves its wrapper: keep them few.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), REDACTED)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        /// Constant time for values of equal length: no early exit on the first differing byte. Values of
        /// different lengths compare unequal at once, so the comparison reveals whether the lengths match (codes
        /// of one kind have one length, so this tells an attacker nothing new).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl From<String> for $name {
            fn from(secret: String) -> Self {
                Self(secret)
            }
        }

        impl From<&str> for $name {
            fn from(secret: &str) -> Self {
                Self(secret.to_owned())
            }
        }

        /// On the wire a plain string.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String).into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    )+};
}

secret_string! {
    /// A one-time code sent by email or SMS (Dynamic calls it `verificationToken`).
    OtpCode;
    /// A 6-digit TOTP code from an authenticator app.
    TotpCode;
    /// One of the user's single-use recovery codes.
    RecoveryCode;
    /// A raw JWT: a session token or an elevated access token.
    Jwt;
    /// Any other secret string (a TOTP shared secret, an admin token...).
    SecretString;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let code = OtpCode::new("123456");
        assert_eq!(format!("{code:?}"), "OtpCode([redacted])");
        assert_eq!(format!("{code}"), "[redacted]");
        assert_eq!(format!("{:?}", Jwt::new("a.b.c")), "Jwt([redacted])");
        assert_eq!(format!("{:#?}", Some(TotpCode::new("654321"))), "Some(\n    TotpCode([redacted]),\n)");
        assert_eq!(code.expose_secret(), "123456");
    }

    #[test]
    fn secrets_are_plain_strings_on_the_wire() {
        let code: TotpCode = serde_json::from_str("\"123456\"").unwrap();
        assert_eq!(code.expose_secret(), "123456");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"123456\"");
    }

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(RecoveryCode::new("abcd-efgh"), RecoveryCode::from("abcd-efgh"));
        assert_ne!(RecoveryCode::new("abcd-efgh"), RecoveryCode::new("abcd-efgi"));
        assert_ne!(RecoveryCode::new("abcd"), RecoveryCode::new("abcd-efgh"));
    }
}
