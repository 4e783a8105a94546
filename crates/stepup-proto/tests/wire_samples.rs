//! JSON samples for every wire type: each sample deserialises and serialises back to exactly the same JSON, so
//! field names (camelCase, Dynamic's snake_case keys, `verificationUUID`, `clientDataJSON`, `type`) are pinned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stepup_proto::*;

fn round_trip<T: Serialize + DeserializeOwned + std::fmt::Debug>(sample: Value) -> T {
    let parsed: T = serde_json::from_value(sample.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{sample:#}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&parsed).unwrap();
    assert_eq!(back, sample, "{} does not round-trip", std::any::type_name::<T>());
    parsed
}

fn user() -> Value {
    json!({
        "id": "u-1",
        "projectEnvironmentId": "dev",
        "email": "alice@example.com",
        "verifiedCredentials": [
            {"id": "vc-email", "format": "email", "email": "alice@example.com", "public_identifier": "alice@example.com",
             "signInEnabled": true},
            {"id": "vc-wallet", "format": "blockchain", "address": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
             "chain": "eip155", "public_identifier": "0x2c75...5c23", "wallet_name": "metamask",
             "wallet_provider": "browserExtension", "signInEnabled": true},
            {"id": "vc-embedded", "format": "blockchain", "address": "0xabc", "chain": "eip155", "wallet_name": "dynamicwaas",
             "wallet_provider": "embeddedWallet", "signInEnabled": false, "embedded_wallet_id": "emb-1"},
            {"id": "vc-phone", "format": "phoneNumber", "phoneNumber": "5551234567", "phoneCountryCode": "1",
             "isoCountryCode": "US", "signInEnabled": true}
        ]
    })
}

#[test]
fn step_up_check() {
    let request: StepUpCheckRequest = round_trip(json!({"scope": "wallet:export"}));
    assert_eq!(request.scope, TokenScope::WalletExport);
    let response: StepUpCheckResponse = round_trip(json!({
        "isRequired": true,
        "credentials": [
            {"id": "dev-totp", "format": "totp", "type": "totp", "alias": "Phone"},
            {"id": "pk-1", "format": "passkey"},
            {"id": "recovery", "format": "recoveryCode"}
        ],
        "defaultCredentialId": "dev-totp"
    }));
    assert_eq!(response.credentials[0].kind.as_deref(), Some("totp"));
    round_trip::<StepUpCheckResponse>(json!({"isRequired": false, "credentials": []}));
}

#[test]
fn sdk_user_and_verified_credentials() {
    let user: SdkUser = round_trip(user());
    assert!(user.verified_credentials[2].is_embedded_wallet());
    assert!(!user.verified_credentials[1].is_embedded_wallet());
    assert_eq!(user.verified_credentials[1].wallet_provider, Some(WalletProvider::BrowserExtension));
}

#[test]
fn verify_and_update_self_responses() {
    let verify: VerifyResponse = round_trip(json!({
        "jwt": "h.p.s", "minifiedJwt": "h.p.s", "user": user(), "expiresAt": 1_790_000_000u64,
        "elevatedAccessToken": "e.p.s"
    }));
    assert_eq!(verify.elevated_access_token.unwrap().expose_secret(), "e.p.s");
    round_trip::<VerifyResponse>(json!({"mfaToken": "m.p.s", "user": user(), "expiresAt": 1}));
    let update: UpdateSelfResponse = round_trip(json!({
        "user": user(), "expiresAt": 1_790_000_000u64, "elevatedAccessToken": "e.p.s", "nextView": "done",
        "emailVerification": {"verificationUUID": "v-1", "email": "alice@example.com"}
    }));
    assert_eq!(update.next_view, NextView::Done);
}

#[test]
fn email_and_sms_verifications() {
    round_trip::<EmailVerificationCreateRequest>(json!({"email": "alice@example.com"}));
    round_trip::<EmailVerificationCreateResponse>(
        json!({"verificationUUID": "v-1", "email": "alice@example.com"}),
    );
    round_trip::<SmsVerificationCreateRequest>(
        json!({"phoneCountryCode": "1", "phoneNumber": "5551234567", "isoCountryCode": "US"}),
    );
    round_trip::<SmsVerificationCreateResponse>(json!({
        "verificationUUID": "v-2", "phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"
    }));
    let verify: OtpVerifyRequest = round_trip(json!({
        "verificationUUID": "v-1", "verificationToken": "123456", "requestedScopes": ["wallet:export", "user:delete"]
    }));
    assert_eq!(format!("{verify:?}").matches("123456").count(), 0, "the code is redacted in Debug");
}

#[test]
fn nonces_and_wallet_verify() {
    round_trip::<NoncesResponse>(json!({"nonces": ["n1", "n2"]}));
    round_trip::<WalletVerifyRequest>(json!({
        "signedMessage": "0xsig", "messageToSign": "localhost wants you to sign in...",
        "publicWalletAddress": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23", "chain": "EVM",
        "walletName": "metamask", "walletProvider": "browserExtension", "requestedScopes": ["wallet:export"]
    }));
}

#[test]
fn passkey_authentication() {
    round_trip::<PasskeyAuthenticationOptions>(json!({
        "challenge": "Y2hhbGxlbmdl", "timeout": 300000, "rpId": "localhost", "userVerification": "required",
        "allowCredentials": [{"id": "Y3JlZA", "type": "public-key", "transports": ["internal"]}]
    }));
    // A descriptor without `type` (older servers) reads as `public-key`: authenticators skip untyped ones.
    let lenient: PasskeyAllowCredential = serde_json::from_value(json!({"id": "Y3JlZA"})).unwrap();
    assert_eq!(lenient.kind, "public-key");
    round_trip::<PasskeyAuthRequest>(json!({
        "id": "Y3JlZA", "rawId": "Y3JlZA",
        "response": {"clientDataJSON": "e30", "authenticatorData": "YXV0aA", "signature": "c2ln", "userHandle": "dQ"},
        "type": "public-key", "clientExtensionResults": {}, "requestedScopes": ["credential:link"]
    }));
}

#[test]
fn passkey_registration() {
    round_trip::<PasskeyRegistrationOptions>(json!({
        "rp": {"id": "localhost", "name": "Stepup Demo"},
        "user": {"id": "dQ", "name": "alice@example.com", "displayName": "Alice"},
        "challenge": "Y2hhbGxlbmdl",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8}],
        "timeout": 300000,
        "excludeCredentials": [],
        "authenticatorSelection": {"residentKey": "preferred", "userVerification": "required"},
        "attestation": "none"
    }));
    round_trip::<PasskeyRegisterRequest>(json!({
        "id": "Y3JlZA", "rawId": "Y3JlZA",
        "response": {"clientDataJSON": "e30", "attestationObject": "b2Jq", "transports": ["internal"]},
        "type": "public-key", "clientExtensionResults": {}, "authenticatorAttachment": "platform"
    }));
}

#[test]
fn mfa_methods_totp_and_recovery() {
    round_trip::<MfaMethodsResponse>(json!({
        "devices": [{"id": "d-1", "type": "totp", "verified": true, "createdAt": "2026-11-28T01:00:00Z",
                     "verifiedAt": "2026-11-28T01:01:00Z", "default": true, "alias": "Phone"}],
        "passkeys": [{"id": "pk-1", "credentialId": "Y3JlZA", "createdAt": "2026-11-28T01:00:00Z",
                      "alias": "Laptop", "origin": "http://localhost"}],
        "userHasVerifiedMfaMethods": true
    }));
    let registration: TotpRegistration = round_trip(json!({
        "id": "d-1", "type": "totp", "secret": "JBSWY3DPEHPK3PXP",
        "uri": "otpauth://totp/Stepup:alice?secret=JBSWY3DPEHPK3PXP&issuer=Stepup"
    }));
    assert!(
        !format!("{registration:?}").contains("JBSWY3DPEHPK3PXP"),
        "secret and URI are redacted in Debug"
    );
    round_trip::<TotpAuthRequest>(
        json!({"code": "123456", "id": "d-1", "requestedScopes": ["wallet:export"]}),
    );
    round_trip::<TotpAuthRequest>(json!({"code": "123456", "createMfaToken": {"singleUse": true}}));
    round_trip::<RecoveryAuthRequest>(json!({"code": "abcd-efgh", "requestedScopes": ["user:delete"]}));
    let codes: RecoveryCodesResponse =
        round_trip(json!({"count": 2, "recoveryCodes": ["aaaa-bbbb", "cccc-dddd"]}));
    assert!(!format!("{codes:?}").contains("aaaa-bbbb"));
}

#[test]
fn environment_calls() {
    round_trip::<JwksResponse>(json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "eA", "kid": "k1",
                                               "alg": "EdDSA", "use": "sig"}]}));
    round_trip::<ProjectSettings>(json!({
        "chains": [{"name": "EVM", "enabled": true}], "kyc": [], "design": {}, "general": {"appName": "Stepup"},
        "privacy": {}, "sdk": {}, "security": {"mfa": {"enabled": true}}
    }));
}

#[test]
fn error_body() {
    round_trip::<ErrorBody>(
        json!({"error": "Elevated access token required", "code": "elevated_access_token_required"}),
    );
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let check: StepUpCheckResponse =
        serde_json::from_value(json!({"isRequired": true, "credentials": [], "somethingNew": 1})).unwrap();
    assert!(check.is_required);
}

#[test]
fn wrong_types_are_errors_not_panics() {
    assert!(
        serde_json::from_value::<StepUpCheckResponse>(json!({"isRequired": "yes", "credentials": []}))
            .is_err()
    );
    assert!(serde_json::from_value::<VerifyResponse>(json!({"user": user(), "expiresAt": "soon"})).is_err());
    assert!(serde_json::from_value::<NoncesResponse>(json!({"nonces": "n1"})).is_err());
    assert!(serde_json::from_value::<TotpAuthRequest>(json!({"code": 123456})).is_err());
}
