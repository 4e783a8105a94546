//! Test vectors of both claim shapes, and a typed refusal for every way a token can be wrong.

use serde_json::{Value, json};
use stepup_guard::{GuardError, Key, Refusal, Requirement, TokenUse, VerifiedToken};
use stepup_proto::TokenScope;

use super::*;

async fn check(token: &str, requirement: &Requirement) -> Result<VerifiedToken, GuardError> {
    our_guard().check_at(Some(token), requirement, NOW).await
}

fn wallet_export() -> Requirement {
    Requirement::scope(TokenScope::WalletExport)
}

fn with(claim: &str, value: Value) -> Value {
    let mut claims = ours();
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(claim);
    } else {
        claims[claim] = value;
    }
    claims
}

fn refused(refusal: Refusal) -> Result<VerifiedToken, GuardError> {
    Err(GuardError::Refused(refusal))
}

#[tokio::test]
async fn a_reference_server_token_passes_with_its_claims_read() {
    let token =
        check(&eddsa("k1", &ours()), &wallet_export().for_subject("u1").for_session("s1")).await.unwrap();
    assert_eq!(token.issuer, ISSUER);
    assert_eq!(token.subject, "u1");
    assert_eq!(token.session_id.as_deref(), Some("s1"));
    assert_eq!(token.scopes, vec![TokenScope::WalletExport, TokenScope::CredentialLink]);
    assert_eq!((token.token_id.as_str(), token.single_use), ("t-1", false));
    assert_eq!(token.amr, vec!["totp".to_owned()]);
}

/// A token shaped as Dynamic issues them: RS256 from the environment's JWKS, `iss` = `<api host>/<env>`, no
/// `aud`, `jti` or `sid`, no use marker, `singleUse` absent (multi-use) or true.
#[tokio::test]
async fn a_dynamic_shaped_token_passes_a_dynamic_guard() {
    let environment = "2762a57b-faa4-41ce-9f16-abff9300e2c9";
    let guard = Guard::builder()
        .issuer(format!("app.dynamicauth.com/{environment}"))
        .any_audience()
        .key(
            Key::from_pem(stepup_guard::Algorithm::Rs256, RS256_PUBLIC.as_bytes(), Some("dyn-1".into()))
                .unwrap(),
        )
        .token_use(TokenUse::NotSessionScope)
        .single_use_store(InProcessStore::new())
        .build()
        .unwrap();
    let claims = json!({
        "iss": format!("app.dynamicauth.com/{environment}"), "sub": "d0b3c1a2-user", "scope": "wallet:export",
        "exp": NOW + 300, "iat": NOW
    });
    let (token, requirement) = (rs256("dyn-1", &claims), wallet_export().for_subject("d0b3c1a2-user"));
    let token = guard.check_at(Some(&token), &requirement, NOW).await.unwrap();
    assert!(!token.single_use && token.audience.is_empty() && token.session_id.is_none());
    assert!(token.token_id.starts_with("sha256:"));

    // Single-use without a `jti`: spent by its digest, once.
    let mut single = claims.clone();
    single["singleUse"] = json!(true);
    let single = rs256("dyn-1", &single);
    assert!(guard.check_at(Some(&single), &wallet_export(), NOW).await.is_ok());
    assert_eq!(guard.check_at(Some(&single), &wallet_export(), NOW).await, refused(Refusal::Spent));

    // Dynamic's session token (scope `user:basic`) is not an elevated token, whatever else it says.
    let mut session = claims.clone();
    session["scope"] = json!("user:basic wallet:export");
    let session = rs256("dyn-1", &session);
    assert_eq!(guard.check_at(Some(&session), &wallet_export(), NOW).await, refused(Refusal::NotElevated));

    // The reference server's token is not Dynamic's (issuer), even under a key both trusted.
    let ours = rs256("dyn-1", &super::ours());
    assert_eq!(guard.check_at(Some(&ours), &wallet_export(), NOW).await, refused(Refusal::Issuer));
}

#[tokio::test]
async fn every_claim_that_is_wrong_is_refused_by_name() {
    let cases: Vec<(Value, Refusal)> = vec![
        (with("iss", json!("someone-else")), Refusal::Issuer),
        (with("aud", json!("prod")), Refusal::Audience),
        (with("aud", json!(["prod", "test"])), Refusal::Audience),
        (with("aud", Value::Null), Refusal::InvalidClaim { claim: "aud" }),
        (with("token_use", json!("session")), Refusal::NotElevated),
        (with("token_use", Value::Null), Refusal::NotElevated),
        (with("exp", json!(NOW)), Refusal::Expired),
        (with("exp", Value::Null), Refusal::InvalidClaim { claim: "exp" }),
        (with("nbf", json!(NOW + 61)), Refusal::NotYetValid),
        (with("iat", json!(NOW + 61)), Refusal::NotYetValid),
        (with("scope", json!("credential:link")), Refusal::ScopeNotGranted { scope: "wallet:export".into() }),
        (with("scope", json!(["wallet:export"])), Refusal::InvalidClaim { claim: "scope" }),
        (with("sid", json!("s2")), Refusal::OtherSession),
        (with("sid", Value::Null), Refusal::OtherSession),
        (with("singleUse", json!("yes")), Refusal::InvalidClaim { claim: "singleUse" }),
    ];
    for (claims, refusal) in cases {
        let requirement = wallet_export().for_subject("u1").for_session("s1");
        let result = check(&eddsa("k1", &claims), &requirement).await;
        assert_eq!(result, refused(refusal.clone()), "{claims}");
    }
    assert_eq!(
        check(&eddsa("k1", &ours()), &wallet_export().for_subject("u2")).await,
        refused(Refusal::OtherSubject)
    );
    // An audience list naming this one passes; `iat`/`nbf` a minute ahead is another clock.
    assert!(check(&eddsa("k1", &with("aud", json!(["prod", "dev"]))), &wallet_export()).await.is_ok());
    assert!(check(&eddsa("k1", &with("iat", json!(NOW + 60))), &wallet_export()).await.is_ok());
}

#[tokio::test]
async fn headers_keys_and_signatures_that_are_wrong_are_refused_by_name() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = eddsa("k1", &ours());
    let parts: Vec<&str> = token.split('.').collect();
    let with_header = |header: &str| format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), parts[1], parts[2]);
    let requirement = wallet_export();
    assert_eq!(our_guard().check_at(None, &requirement, NOW).await, refused(Refusal::Missing));
    for malformed in ["", "a.b", "a.b.c.d", "!.!.!", &"x".repeat(stepup_guard::MAX_TOKEN_LEN + 1)] {
        assert_eq!(check(malformed, &requirement).await, refused(Refusal::Malformed), "{malformed:.20}");
    }
    assert_eq!(
        check(&with_header(r#"{"alg":"none","kid":"k1"}"#), &requirement).await,
        refused(Refusal::Algorithm { alg: "none".into() })
    );
    // HS256 keyed with the public key: no key is pinned to HS256.
    assert_eq!(
        check(&with_header(r#"{"alg":"HS256","kid":"k1"}"#), &requirement).await,
        refused(Refusal::Algorithm { alg: "HS256".into() })
    );
    assert_eq!(
        check(&with_header(r#"{"alg":"EdDSA","kid":"k1","crit":["exp"]}"#), &requirement).await,
        refused(Refusal::CriticalHeader)
    );
    assert_eq!(
        check(&eddsa("k2", &ours()), &requirement).await,
        refused(Refusal::UnknownKey { kid: Some("k2".into()) })
    );
    // RS256 under the EdDSA key's kid: the key is pinned to EdDSA.
    assert_eq!(
        check(&rs256("k1", &ours()), &requirement).await,
        refused(Refusal::UnknownKey { kid: Some("k1".into()) })
    );
    // Changed claims under the original signature.
    let mut forged = ours();
    forged["scope"] = json!("wallet:export user:delete");
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(forged.to_string()), parts[2]);
    assert_eq!(check(&forged, &requirement).await, refused(Refusal::Signature));
}

#[tokio::test]
async fn max_age_and_acr_values_hold_tokens_to_the_challenge() {
    use stepup_guard::ChallengeOptions;
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(ENVIRONMENT)
        .key(our_key())
        .single_use_store(InProcessStore::new())
        .challenge(ChallengeOptions::new().max_age(120).acr_values(["totp", "passkey"]))
        .build()
        .unwrap();
    let at = |claims: Value, now| {
        let guard = guard.clone();
        async move { guard.check_at(Some(&eddsa("k1", &claims)), &wallet_export(), now).await }
    };
    assert!(at(ours(), NOW + 120).await.is_ok());
    assert_eq!(at(ours(), NOW + 121).await, refused(Refusal::TooOld));
    assert_eq!(at(with("iat", Value::Null), NOW).await, refused(Refusal::TooOld));
    assert_eq!(at(with("amr", json!(["email"])), NOW).await, refused(Refusal::Method));
}

#[test]
fn a_guard_needs_issuer_audience_keys_and_a_store() {
    use stepup_guard::BuildError;
    let store = || InProcessStore::new();
    assert_eq!(
        Guard::builder().audience("a").key(our_key()).single_use_store(store()).build().err(),
        Some(BuildError::NoIssuer)
    );
    assert_eq!(
        Guard::builder().issuer("i").key(our_key()).single_use_store(store()).build().err(),
        Some(BuildError::NoAudience)
    );
    assert_eq!(
        Guard::builder().issuer("i").audience("a").single_use_store(store()).build().err(),
        Some(BuildError::NoKeys)
    );
    assert_eq!(
        Guard::builder().issuer("i").audience("a").key(our_key()).build().err(),
        Some(BuildError::NoSingleUseStore)
    );
    assert!(matches!(
        Guard::builder().issuer("i").audience("a").jwks_url("ftp://x/jwks").single_use_store(store()).build(),
        Err(BuildError::Key(stepup_guard::KeyError::Url(_)))
    ));
    assert!(matches!(
        Key::from_pem(stepup_guard::Algorithm::Rs256, EDDSA_PUBLIC.as_bytes(), None),
        Err(stepup_guard::KeyError::Unreadable { algorithm: "RS256", .. })
    ));
}
