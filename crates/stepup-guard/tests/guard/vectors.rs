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
    // An `alg` of kilobytes is not echoed back whole.
    let long = format!(r#"{{"alg":"{}","kid":"k1"}}"#, "X".repeat(4000));
    assert_eq!(
        check(&with_header(&long), &requirement).await,
        refused(Refusal::Algorithm { alg: "X".repeat(32) })
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
    let guard = for_reference_server()
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
    assert!(matches!(Key::from_jwks_json(b"not json"), Err(stepup_guard::KeyError::NotAJwkSet(_))));
    assert!(matches!(Key::from_jwks_json(br#"{"keys": 7}"#), Err(stepup_guard::KeyError::NotAJwkSet(_))));
    // A Redis URL that is not one is said at construction, as the store's error.
    let bad = stepup_guard::RedisStore::open("not a url").err().map(|e| e.store());
    assert_eq!(bad, Some("redis"));
}

/// P-256's group order, big-endian: `s` and `n - s` are both valid ECDSA signatures.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Review finding: a single-use ES256 token without `jti` was spent by the digest of the whole token, signature
/// included; anyone can turn `(r, s)` into `(r, n - s)`, a second valid signature, and spend it again.
#[tokio::test]
async fn a_single_use_token_without_jti_is_spent_once_whatever_its_signature() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const ES256_PUBLIC: &str = include_str!("../../../../tests/keys/es256-public.pem");
    let guard = for_reference_server()
        .key(Key::from_pem(stepup_guard::Algorithm::Es256, ES256_PUBLIC.as_bytes(), None).unwrap())
        .single_use_store(InProcessStore::new())
        .build()
        .unwrap();
    let mut claims = with("jti", Value::Null);
    claims["singleUse"] = json!(true);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = None;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    // s' = n - s, big-endian subtraction.
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let difference = i16::from(P256_ORDER[i]) - i16::from(signature[32 + i]) - borrow;
        borrow = i16::from(difference < 0);
        signature[32 + i] = (difference + 256 * borrow) as u8;
    }
    let malleated = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&signature));
    assert_ne!(malleated, token);
    assert!(guard.check_at(Some(&token), &wallet_export(), NOW).await.is_ok());
    assert_eq!(guard.check_at(Some(&malleated), &wallet_export(), NOW).await, refused(Refusal::Spent));
}

/// Review finding: an Ed25519 JWK whose `x` is shorter than 32 bytes was accepted and made jsonwebtoken panic at
/// every verification; such a key is now left out, and the good key beside it is used.
#[tokio::test]
async fn a_broken_jwk_is_left_out_and_panics_nothing() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let der: Vec<u8> = STANDARD
        .decode(EDDSA_PUBLIC.lines().filter(|l| !l.starts_with("-----")).collect::<String>())
        .unwrap();
    let good = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let document = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 16]), "kid": "k1"},
        {"kty": "OKP", "crv": "Ed25519", "x": good, "kid": "k1"},
    ]});
    let keys = Key::from_jwks_json(document.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    let mut builder = for_reference_server().single_use_store(InProcessStore::new());
    for key in keys {
        builder = builder.key(key);
    }
    let guard = builder.build().unwrap();
    assert!(guard.check_at(Some(&eddsa("k1", &ours())), &wallet_export(), NOW).await.is_ok());
}

/// Review finding: the record of a spent token was kept until `exp` plus the leeway only, by the spending
/// replica's clock; a replica running fast dropped it while a slower one still took the token. It is now kept
/// for the clock skew too.
#[tokio::test]
async fn a_spent_record_outlives_the_token_on_every_replica() {
    use std::sync::Mutex;
    use stepup_guard::{SingleUseStore, SpentToken, StoreError};
    #[derive(Default)]
    struct Recording(Mutex<Vec<u64>>);
    #[async_trait::async_trait]
    impl SingleUseStore for Recording {
        async fn spend(&self, token: SpentToken<'_>) -> Result<bool, StoreError> {
            self.0.lock().unwrap().push(token.keep_until);
            Ok(true)
        }
    }
    let store = std::sync::Arc::new(Recording::default());
    let guard = for_reference_server()
        .key(our_key())
        .shared_single_use_store(store.clone())
        .leeway(std::time::Duration::from_secs(30))
        .clock_skew(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let token = eddsa("k1", &with("singleUse", json!(true)));
    guard.check_at(Some(&token), &wallet_export(), NOW).await.unwrap();
    assert_eq!(*store.0.lock().unwrap(), vec![NOW + 300 + 30 + 60]);
}
