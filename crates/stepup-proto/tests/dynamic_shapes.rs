//! Answers in the shapes Dynamic's real API sends them, as its generated models (`@dynamic-labs/sdk-api-core`
//! 0.0.1125, the one `@dynamic-labs-sdk/client` 1.27.1 uses) define them: every field name and casing as there,
//! credential chains as `eip155`, the session in `minifiedJwt`, nulls where Dynamic sends nulls, and many fields
//! this crate does not read, which must be ignored. The engine reads these same types, so a field it would misread
//! here, it would misread against Dynamic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![recursion_limit = "256"]

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stepup_proto::*;

fn read<T: DeserializeOwned>(sample: Value) -> T {
    serde_json::from_value(sample.clone()).unwrap_or_else(|e| {
        panic!("{} does not read Dynamic's shape: {e}\n{sample:#}", std::any::type_name::<T>())
    })
}

/// An `SdkUser` as Dynamic's API answers it: profile fields, visits, metadata, scope, KYC fields, and credentials
/// with Dynamic's mixed casing (`wallet_name`, `name_service`, `lastSelectedAt`...).
fn dynamic_user() -> Value {
    json!({
        "id": "9f3b2a7e-0c1d-4e5f-8a9b-1c2d3e4f5a6b",
        "projectEnvironmentId": "2762a57b-faa4-41ce-9f16-abff9300e2c9",
        "sessionId": "0b1a2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        "lastVerifiedCredentialId": "c7d6e5f4-0000-4000-8000-000000000001",
        "alias": null, "country": null, "firstName": "Alice", "lastName": null, "jobTitle": null, "username": "alice",
        "email": "alice@example.com", "phoneNumber": null, "policiesConsent": null, "tShirtSize": null, "team": null,
        "firstVisit": "2026-11-30T09:12:44.123Z", "lastVisit": "2026-12-01T08:00:00.000Z", "newUser": false,
        "metadata": {"plan": "pro"}, "mfaBackupCodeAcknowledgement": "pending", "scope": "requiresAdditionalAuth",
        "lists": [], "missingFields": [],
        "btcWallet": null, "kdaWallet": null, "ltcWallet": null, "ckbWallet": null, "kasWallet": null, "dogeWallet": null,
        "emailNotification": null, "discordNotification": null, "newsletterNotification": null,
        "verifiedCredentials": [
            {"id": "c7d6e5f4-0000-4000-8000-000000000001", "format": "email", "email": "alice@example.com",
             "public_identifier": "alice@example.com", "signInEnabled": true, "lastSelectedAt": null,
             "verifiedAt": "2026-11-30T09:12:44.000Z"},
            {"id": "c7d6e5f4-0000-4000-8000-000000000002", "format": "blockchain",
             "address": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23", "chain": "eip155",
             "name_service": {}, "public_identifier": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23",
             "wallet_name": "metamask", "wallet_provider": "browserExtension",
             "wallet_properties": {"hardwareWallet": null}, "wallet_additional_addresses": [],
             "signInEnabled": true, "lastSelectedAt": "2026-12-01T07:59:59.000Z", "verifiedAt": null},
            {"id": "c7d6e5f4-0000-4000-8000-000000000003", "format": "blockchain",
             "address": "0x00000000000000000000000000000000000000aa", "chain": "eip155",
             "wallet_name": "dynamicwaas", "wallet_provider": "embeddedWallet",
             "wallet_properties": {"version": "V3", "thresholdSignatureScheme": "TWO_OF_TWO"},
             "embedded_wallet_id": "emb-1", "signInEnabled": false},
            {"id": "c7d6e5f4-0000-4000-8000-000000000004", "format": "oauth", "oauth_provider": "google",
             "oauth_username": "alice", "oauth_display_name": "Alice", "oauth_account_id": "1234",
             "oauth_emails": ["alice@example.com"], "oauth_account_photos": [], "oauth_metadata": {},
             "previous_users": [], "signInEnabled": true},
            {"id": "c7d6e5f4-0000-4000-8000-000000000005", "format": "phoneNumber", "phoneNumber": "5551234567",
             "phoneCountryCode": "1", "isoCountryCode": "US", "public_identifier": "+15551234567",
             "signInEnabled": true}
        ]
    })
}

#[test]
fn a_verify_answer_carries_the_session_in_minified_jwt() {
    let answer: VerifyResponse = read(json!({
        "mfaToken": null, "jwt": "legacy.jwt.sig", "minifiedJwt": "eyJh.eyJz.c2ln", "user": dynamic_user(),
        "expiresAt": 1_795_000_000u64, "elevatedAccessToken": "eyJh.eyJzY29wZSI.c2ln"
    }));
    assert_eq!(answer.minified_jwt.unwrap().expose_secret(), "eyJh.eyJz.c2ln");
    assert_eq!(answer.jwt.unwrap().expose_secret(), "legacy.jwt.sig");
    assert_eq!(answer.mfa_token, None, "null is absent");
    assert_eq!(answer.expires_at, 1_795_000_000);
    let user = answer.user;
    assert_eq!(user.mfa_backup_code_acknowledgement, Some(MfaBackupCodeAcknowledgement::Pending));
    assert_eq!(user.session_id.as_deref(), Some("0b1a2c3d-4e5f-6071-8293-a4b5c6d7e8f9"));
    assert_eq!(user.verified_credentials.len(), 5);
    let wallet = &user.verified_credentials[1];
    assert_eq!(wallet.chain.as_deref(), Some("eip155"));
    assert_eq!(chain::connector_chain(wallet.chain.as_deref().unwrap()), Some("EVM"));
    assert_eq!(wallet.wallet_provider, Some(WalletProvider::BrowserExtension));
    assert!(!wallet.is_embedded_wallet());
    assert!(user.verified_credentials[2].is_embedded_wallet());
    assert_eq!(user.verified_credentials[3].format, CredentialFormat::Oauth);
    assert_eq!(user.verified_credentials[4].phone_country_code.as_deref(), Some("1"));
    // No elevated token: `null`, as Dynamic sends when none was asked for.
    let plain: VerifyResponse =
        read(json!({"user": dynamic_user(), "expiresAt": 1, "elevatedAccessToken": null}));
    assert_eq!(plain.elevated_access_token, None);
    assert_eq!(plain.minified_jwt, None);
}

#[test]
fn an_update_self_answer_is_a_verify_answer_and_more() {
    let answer: UpdateSelfResponse = read(json!({
        "minifiedJwt": "a.b.c", "jwt": "a.b.c", "user": dynamic_user(), "expiresAt": 1_795_000_000u64,
        "elevatedAccessToken": "e.p.s", "nextView": "verify-sms",
        "smsVerification": {"verificationUUID": "v-9", "phoneNumber": "5551234567", "phoneCountryCode": "1",
                            "isoCountryCode": "US"}
    }));
    assert_eq!(answer.next_view, NextView::VerifySms);
    assert_eq!(answer.verify.minified_jwt.unwrap().expose_secret(), "a.b.c");
    assert_eq!(answer.sms_verification.unwrap().verification_uuid, "v-9");
}

#[test]
fn step_up_checks_mfa_lists_and_recovery_codes() {
    let check: StepUpCheckResponse = read(json!({
        "isRequired": true,
        "credentials": [
            {"id": "d-1", "format": "totp", "type": "totp", "alias": "Authenticator"},
            {"id": "ext", "format": "externalUser"}
        ],
        "defaultCredentialId": "d-1", "futureField": {"x": 1}
    }));
    assert_eq!(check.credentials[1].format, CredentialFormat::ExternalUser);
    let device = json!({"type": "totp", "verified": true, "id": "d-1", "createdAt": "2026-11-30T09:12:44.123Z",
                        "verifiedAt": null, "default": true, "alias": null});
    let passkey = json!({"id": "pk-1", "alias": null, "userAgent": "Mozilla/5.0", "origin": "https://app.example.com",
                         "credentialId": "AbCd", "createdAt": "2026-11-30T09:12:44.123Z", "updatedAt": null,
                         "storage": {"name": "iCloud Keychain", "icon": "https://example.com/icon.svg"}});
    let methods: MfaMethodsResponse = read(json!({
        "devices": [device.clone()], "passkeys": [passkey.clone()], "userHasVerifiedMfaMethods": true
    }));
    assert_eq!(methods.devices[0].default, Some(true));
    assert_eq!(methods.devices[0].verified_at, None);
    assert_eq!(methods.passkeys[0].user_agent.as_deref(), Some("Mozilla/5.0"));
    let devices: MfaDevicesResponse = read(json!({"count": 1, "devices": [device]}));
    assert_eq!(devices.devices[0].kind, Some(MfaDeviceType::Totp));
    let passkeys: UserPasskeysResponse = read(json!({"count": 1, "passkeys": [passkey]}));
    assert_eq!(passkeys.passkeys[0].credential_id, "AbCd");
    let codes: RecoveryCodesResponse =
        read(json!({"count": 10, "recoveryCodes": ["aaaa-bbbb", "cccc-dddd"]}));
    assert_eq!(codes.recovery_codes[1].expose_secret(), "cccc-dddd");
    let registration: TotpRegistration = read(json!({
        "id": "d-2", "type": "totp", "secret": "JBSWY3DPEHPK3PXP",
        "uri": "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example"
    }));
    assert_eq!(registration.kind, MfaDeviceType::Totp);
}

#[test]
fn external_auth_answers_the_token_alone() {
    // Dynamic's `ExternalAuthAssertionResponse`.
    let answer: ExternalAuthResponse = read(json!({"elevatedAccessToken": "e.p.s"}));
    assert_eq!(answer.elevated_access_token.expose_secret(), "e.p.s");
    assert_eq!(answer.minified_jwt, None);
    // The reference server's, a whole VerifyResponse: the session is read too.
    let answer: ExternalAuthResponse = read(json!({
        "elevatedAccessToken": "e.p.s", "minifiedJwt": "s.p.s", "jwt": "s.p.s", "user": dynamic_user(), "expiresAt": 1
    }));
    assert_eq!(answer.minified_jwt.unwrap().expose_secret(), "s.p.s");
    let request: ExternalAuthVerifyRequest = read(json!({"jwt": "b.p.s", "sessionPublicKey": "02ab"}));
    assert_eq!(request.jwt.expose_secret(), "b.p.s");
}

#[test]
fn requests_as_dynamics_client_writes_them() {
    // Passkey registration: `clientDataJson`, `createMfaToken`, the extensions it keeps.
    let registration: PasskeyRegisterRequest = read(json!({
        "id": "cred", "rawId": "cred", "type": "public-key", "authenticatorAttachment": "platform",
        "response": {"attestationObject": "o2Nm", "clientDataJson": "eyJ0", "transports": ["internal"]},
        "clientExtensionResults": {"credProps": {"rk": true}}, "createMfaToken": {"singleUse": true}
    }));
    assert_eq!(registration.response.client_data_json, "eyJ0");
    // Wallet verification: the connector chain, the network, the extra addresses.
    let wallet: WalletVerifyRequest = read(json!({
        "signedMessage": "0x12", "messageToSign": "localhost wants you to sign in...",
        "publicWalletAddress": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23", "chain": "EVM",
        "walletName": "metamaskevm", "walletProvider": "browserExtension", "network": "1",
        "additionalWalletAddresses": [], "requestedScopes": ["wallet:export"]
    }));
    assert!(chain::same_chain(&wallet.chain, "eip155"));
    let fields: UserFields = read(json!({"mfaBackupCodeAcknowledgement": "complete"}));
    assert_eq!(fields.mfa_backup_code_acknowledgement, Some(MfaBackupCodeAcknowledgement::Complete));
}

#[test]
fn errors_and_settings() {
    let error: ErrorBody =
        read(json!({"error": "Invalid OTP", "code": "mfa_invalid_code", "payload": {"attemptsLeft": 2}}));
    assert_eq!(error.code, ErrorCode::MfaInvalidCode);
    let error: ErrorBody = read(json!({"error": "Invalid external auth", "code": "invalid_external_auth"}));
    assert_eq!(error.code, ErrorCode::InvalidExternalAuth);
    let settings: ProjectSettings = read(json!({
        "environmentName": "live", "chains": [{"name": "EVM", "enabled": true, "networks": []}], "kyc": [],
        "design": {"modal": {"theme": "dark"}}, "general": {"displayName": "Example"}, "privacy": {},
        "providers": [{"provider": "emailOnly"}], "networks": [], "sdk": {"featureFlags": {}},
        "security": {"mfa": {"enabled": true, "required": false, "availableMethods": ["totp", "passkey"],
                             "actions": [{"action": "wallet.waas.export", "required": true}]},
                     "externalAuth": {"enabled": false}}
    }));
    assert_eq!(settings.security["mfa"]["actions"][0]["action"], "wallet.waas.export");
}
