//! Header names and values of the protocol.

/// Request header that carries the elevated access token (a JWT) on calls that need a scope.
pub const ELEVATED_ACCESS_TOKEN: &str = "x-dyn-elevated-access-token";

/// RFC 9470 error value in `WWW-Authenticate: Bearer error="..."` that asks for step-up.
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// Builds the RFC 9470 challenge sent with a 403 `elevated_access_token_required`, e.g.
/// `Bearer error="insufficient_user_authentication", error_description="...", scope="wallet:export"`.
///
/// Quotes and backslashes in the description and in (unknown) scope strings are escaped, as RFC 9110
/// quoted-strings require.
#[must_use]
pub fn step_up_challenge(description: &str, scopes: &[crate::TokenScope]) -> String {
    challenge_with(description, scopes, None, None)
}

/// Builds an RFC 9470 challenge with every parameter this protocol uses: `scope` (when `scopes` is not empty),
/// `max_age` (the authentication must be at most this many seconds old) and `acr_values` (space-separated),
/// e.g. `Bearer error="insufficient_user_authentication", error_description="...", scope="wallet:export",
/// max_age=300`.
#[must_use]
pub fn challenge_with(
    description: &str,
    scopes: &[crate::TokenScope],
    max_age_secs: Option<u64>,
    acr_values: Option<&str>,
) -> String {
    let mut value = format!(
        "Bearer error=\"{INSUFFICIENT_USER_AUTHENTICATION}\", error_description=\"{}\"",
        quote(description)
    );
    if !scopes.is_empty() {
        let joined: Vec<&str> = scopes.iter().map(crate::TokenScope::as_str).collect();
        value.push_str(&format!(", scope=\"{}\"", quote(&joined.join(" "))));
    }
    if let Some(max_age) = max_age_secs {
        value.push_str(&format!(", max_age={max_age}"));
    }
    if let Some(acr_values) = acr_values {
        value.push_str(&format!(", acr_values=\"{}\"", quote(acr_values)));
    }
    value
}

/// Builds the RFC 9470 challenge of a call that needs a *recent* authentication: `max_age` is how many seconds
/// ago the last MFA verification of the session may be, e.g.
/// `Bearer error="insufficient_user_authentication", error_description="...", max_age=300`.
#[must_use]
pub fn recent_authentication_challenge(description: &str, max_age_secs: u64) -> String {
    challenge_with(description, &[], Some(max_age_secs), None)
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What a `WWW-Authenticate` header says about step-up, per RFC 9470.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpChallenge {
    /// The scopes named by the `scope` parameter, if the server gave one.
    pub scopes: Vec<crate::TokenScope>,
    /// The RFC 9470 `max_age` parameter: the authentication must be at most this many seconds old, so a held
    /// token does not answer it, a fresh verification does. `None` when absent or not a number.
    pub max_age: Option<u64>,
}

/// Reads a `WWW-Authenticate` value and returns the step-up challenge in it, if one of its challenges is a Bearer
/// challenge with `error="insufficient_user_authentication"`. A value may hold several challenges
/// (`Basic realm="x", Bearer error="..."`, RFC 9110 §11.6.1); anything else (other schemes, other errors, garbage)
/// is `None`.
#[must_use]
pub fn parse_step_up_challenge(header: &str) -> Option<StepUpChallenge> {
    challenges(header).into_iter().find_map(|(scheme, params)| {
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut error = None;
        let mut scopes = Vec::new();
        let mut max_age = None;
        for (name, value) in auth_params(&params) {
            if name.eq_ignore_ascii_case("error") {
                error = Some(value);
            } else if name.eq_ignore_ascii_case("scope") {
                scopes = value.split_ascii_whitespace().map(crate::TokenScope::parse).collect();
            } else if name.eq_ignore_ascii_case("max_age") {
                max_age = value.trim().parse::<u64>().ok();
            }
        }
        (error.as_deref() == Some(INSUFFICIENT_USER_AUTHENTICATION))
            .then_some(StepUpChallenge { scopes, max_age })
    })
}

/// Splits a header value into its challenges: `(scheme, "param=value, ...")`. Items are separated by commas
/// outside quoted strings; an item that starts with a bare token (no `=` right after it) starts a new challenge.
fn challenges(header: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let (mut item, mut quoted, mut escaped) = (String::new(), false, false);
    for c in header.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);

    let mut found: Vec<(String, String)> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let first_end = item.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(item.len());
        let starts_challenge = !item[first_end..].trim_start().starts_with('=');
        match found.last_mut() {
            Some((_, params)) if !starts_challenge => {
                params.push_str(", ");
                params.push_str(item);
            }
            _ => found.push((item[..first_end].to_owned(), item[first_end..].trim().to_owned())),
        }
    }
    found
}

/// Splits `a="x, y", b=z` into `(name, value)` pairs; quoted values may hold commas and `\"`.
fn auth_params(mut input: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    loop {
        input = input.trim_start_matches([' ', ',', '\t']);
        let Some((name, after)) = input.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let (value, rest) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((name.trim().to_owned(), value));
        input = rest;
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenScope;

    #[test]
    fn challenge_round_trips_through_the_parser() {
        let header =
            step_up_challenge("step-up required", &[TokenScope::WalletExport, TokenScope::UserDelete]);
        assert_eq!(
            header,
            "Bearer error=\"insufficient_user_authentication\", error_description=\"step-up required\", \
             scope=\"wallet:export user:delete\""
        );
        let parsed = parse_step_up_challenge(&header).unwrap();
        assert_eq!(parsed.scopes, vec![TokenScope::WalletExport, TokenScope::UserDelete]);
    }

    #[test]
    fn rfc_9470_example_with_acr_values_parses() {
        let header = "Bearer error=\"insufficient_user_authentication\", \
                      error_description=\"A different authentication level is required\", acr_values=\"myACR\"";
        assert_eq!(parse_step_up_challenge(header), Some(StepUpChallenge { scopes: vec![], max_age: None }));
    }

    #[test]
    fn max_age_challenges_round_trip() {
        let header = recent_authentication_challenge("a recent MFA is required", 300);
        assert_eq!(
            header,
            "Bearer error=\"insufficient_user_authentication\", error_description=\"a recent MFA is required\", \
             max_age=300"
        );
        assert_eq!(
            parse_step_up_challenge(&header),
            Some(StepUpChallenge { scopes: vec![], max_age: Some(300) })
        );
        // RFC 9470 writes it unquoted; a quoted one reads the same, a non-number is no max_age.
        let quoted = "Bearer error=\"insufficient_user_authentication\", max_age=\"60\"";
        assert_eq!(parse_step_up_challenge(quoted).unwrap().max_age, Some(60));
        let garbage = "Bearer error=\"insufficient_user_authentication\", max_age=soon";
        assert_eq!(parse_step_up_challenge(garbage).unwrap().max_age, None);
    }

    #[test]
    fn other_challenges_are_not_step_up() {
        assert_eq!(parse_step_up_challenge("Bearer error=\"invalid_token\""), None);
        assert_eq!(parse_step_up_challenge("Basic realm=\"x\""), None);
        assert_eq!(parse_step_up_challenge(""), None);
        assert_eq!(parse_step_up_challenge("Bearer"), None);
        assert_eq!(
            parse_step_up_challenge("Bearer error=\"insufficient_user_authentication"),
            parse_step_up_challenge("Bearer error=\"insufficient_user_authentication\"")
        );
    }

    #[test]
    fn quotes_in_descriptions_and_scopes_are_escaped_and_read_back() {
        let header = step_up_challenge("say \"hi\"", &[TokenScope::parse("odd\"scope")]);
        assert!(header.contains(r#"error_description="say \"hi\"""#), "{header}");
        assert_eq!(parse_step_up_challenge(&header).unwrap().scopes, vec![TokenScope::parse("odd\"scope")]);
    }

    #[test]
    fn the_step_up_challenge_is_found_among_several() {
        let header = "Basic realm=\"api, v2\", Bearer realm=\"x\", error=\"insufficient_user_authentication\", \
                      scope=\"wallet:export\", Negotiate";
        assert_eq!(parse_step_up_challenge(header).unwrap().scopes, vec![TokenScope::WalletExport]);
        let first = "Bearer error=\"insufficient_user_authentication\", Basic realm=\"x\"";
        assert_eq!(parse_step_up_challenge(first), Some(StepUpChallenge { scopes: vec![], max_age: None }));
        // Another scheme's `error` does not count.
        let other = "Basic error=\"insufficient_user_authentication\", Bearer error=\"invalid_token\"";
        assert_eq!(parse_step_up_challenge(other), None);
        assert_eq!(parse_step_up_challenge("Negotiate, Basic realm=\"x\""), None);
    }

    #[test]
    fn unquoted_values_and_escapes_parse() {
        let parsed =
            parse_step_up_challenge("bearer error=insufficient_user_authentication, scope=\"a\\\"b\"")
                .unwrap();
        assert_eq!(parsed.scopes, vec![TokenScope::parse("a\"b")]);
    }

    proptest::proptest! {
        /// Whatever a server (or a man in the middle) puts in the header, reading it never panics.
        #[test]
        fn any_header_value_parses_without_panicking(header in "\\PC{0,200}") {
            let _ = parse_step_up_challenge(&header);
        }

        /// Any description and any scope names (no whitespace: the `scope` parameter is space-delimited) come back
        /// as they were sent, also behind another challenge.
        #[test]
        fn built_challenges_read_back(
            description in "\\PC{0,40}",
            scopes in proptest::collection::vec("[!-~]{1,20}", 0..4),
        ) {
            let scopes: Vec<TokenScope> = scopes.iter().map(|s| TokenScope::parse(s)).collect();
            let header = step_up_challenge(&description, &scopes);
            proptest::prop_assert_eq!(parse_step_up_challenge(&header).map(|c| c.scopes), Some(scopes.clone()));
            let behind = format!("Basic realm=\"a, b\", {header}");
            proptest::prop_assert_eq!(parse_step_up_challenge(&behind).map(|c| c.scopes), Some(scopes));
        }
    }
}
