//! Seeded people: one with MFA (TOTP device, recovery codes, passkey) and one without (email code, external
//! wallet). Dynamic's rule makes two people necessary: a user with MFA methods steps up by MFA only, so email
//! codes and wallet signatures are only offered to someone without MFA.

use std::sync::Arc;

use stepup_core::{CredentialId, RecoveryCode, Scope, SecretString, StepUpError};
use stepup_engine::{LocalWalletSigner, SoftwarePasskey, StepUpAuth};
use stepup_proto::{Jwt, SdkUser};

use crate::DemoError;
use crate::server::{DEMO_ORIGIN, DemoServer};
use crate::totp::{totp_code, unix_now};

/// A signed-in person: the server's record, the session JWT and the email address.
#[derive(Debug, Clone)]
pub struct Session {
    /// The server's user record.
    pub user: SdkUser,
    /// The session JWT (the engine sends it as `Authorization: Bearer`).
    pub jwt: Jwt,
    /// The email address.
    pub email: String,
}

/// A verified TOTP device: what an authenticator app would hold.
#[derive(Debug, Clone)]
pub struct TotpDevice {
    /// The server's device id.
    pub id: CredentialId,
    /// The shared secret, base32.
    pub secret: SecretString,
    /// The `otpauth://` URI (what a QR code carries; it contains the secret).
    pub uri: SecretString,
}

impl TotpDevice {
    /// The code the app shows now.
    ///
    /// # Errors
    /// [`DemoError::Totp`] for a secret that is not base32 (not one the server made).
    pub fn current_code(&self) -> Result<String, DemoError> {
        totp_code(self.secret.expose_secret(), unix_now())
    }
}

/// A person with MFA: a verified TOTP device, ten recovery codes and a software passkey.
#[derive(Debug, Clone)]
pub struct MfaPerson {
    /// The session.
    pub session: Session,
    /// The authenticator app's device.
    pub totp: TotpDevice,
    /// The recovery codes, each good once.
    pub recovery_codes: Vec<RecoveryCode>,
    /// The passkey (hand it to the engine with `passkey_authenticator`).
    pub passkey: Arc<SoftwarePasskey>,
}

/// A person without MFA: an email address and a linked external wallet held as a local key.
#[derive(Debug, Clone)]
pub struct ReauthPerson {
    /// The session.
    pub session: Session,
    /// The wallet (hand it to the engine with `wallet_signer`).
    pub wallet: Arc<LocalWalletSigner>,
}

impl DemoServer {
    /// Signs up `email` and sets up MFA through the engine's MFA management (`engine.mfa()`): an authenticator
    /// app, recovery codes and a passkey. Adding a factor needs `credential:link`, which an email code gives while
    /// the person has no MFA yet (the management calls find the token in the engine and send it); reading recovery
    /// codes needs a recent MFA, which the authenticator app's first code gives (its answer re-signs the session,
    /// and the engine adopts it). The person's session is the one the engine ends with, as an app would persist it.
    ///
    /// # Errors
    /// [`DemoError`] naming the step that failed.
    pub async fn seed_mfa_person(&self, email: &str) -> Result<MfaPerson, DemoError> {
        let mut session = self.sign_up(email, None).await?;
        let passkey = Arc::new(SoftwarePasskey::new(DEMO_ORIGIN)?);
        let engine = self.engine_for(&session).passkey_authenticator(passkey.clone()).build().await?;
        self.elevate_by_email(&engine, &session, Scope::CredentialLink).await?;
        let mfa = engine.mfa();
        let enrolment =
            mfa.add_totp_device().await.map_err(DemoError::engine("start adding the authenticator app"))?;
        let totp = TotpDevice { id: enrolment.device_id, secret: enrolment.secret, uri: enrolment.uri };
        // The first code proves the app holds the secret. It is the previous 30-second step's, so the current
        // step stays unused for the person's first step-up (the server refuses a step twice). Should a step
        // boundary pass before the server checks it, that step is out of the server's one-step window: the
        // current step's code is the one try left.
        let verify = |at: u64| {
            let (mfa, device, secret) = (&mfa, totp.id.clone(), totp.secret.clone());
            async move {
                let code = totp_code(secret.expose_secret(), at)?;
                mfa.verify_totp_device(&device, code.as_str())
                    .await
                    .map_err(DemoError::engine("verify the authenticator app"))
            }
        };
        match verify(unix_now().saturating_sub(30)).await {
            Err(DemoError::Engine { source: StepUpError::MfaInvalidCode, .. }) => verify(unix_now()).await?,
            other => other?,
        }
        let codes = mfa.recovery_codes().await.map_err(DemoError::engine("read recovery codes"))?;
        mfa.acknowledge_recovery_codes()
            .await
            .map_err(DemoError::engine("acknowledge the recovery codes"))?;
        mfa.register_passkey().await.map_err(DemoError::engine("register the passkey"))?;
        engine.reset_state().await.map_err(DemoError::engine("forget the seeding tokens"))?;
        if let Some(adopted) = engine.session() {
            session.jwt = adopted;
        }
        Ok(MfaPerson { session, totp, recovery_codes: codes.codes, passkey })
    }

    /// Signs up `email` and links a fresh local wallet key as an external wallet (MetaMask by name).
    ///
    /// # Errors
    /// [`DemoError`] naming the step that failed.
    pub async fn seed_reauth_person(&self, email: &str) -> Result<ReauthPerson, DemoError> {
        let session = self.sign_up(email, None).await?;
        let wallet = Arc::new(LocalWalletSigner::random("metamask")?);
        self.link_wallet(&session, wallet.as_ref(), false).await?;
        Ok(ReauthPerson { session, wallet })
    }

    /// Elevates `engine` for `scope` by an email code read from the outbox.
    ///
    /// # Errors
    /// [`DemoError`] naming the step that failed.
    pub async fn elevate_by_email(
        &self,
        engine: &StepUpAuth,
        session: &Session,
        scope: Scope,
    ) -> Result<(), DemoError> {
        let sent = engine.send_otp(None).await.map_err(DemoError::engine("send an email code"))?;
        let messages = self.outbox(&session.email).await?;
        let code = messages
            .into_iter()
            .find(|message| message.verification_uuid == sent.id.as_str())
            .map(|message| message.code)
            .ok_or_else(|| DemoError::NoCode { to: session.email.clone() })?;
        engine
            .verify_otp(code.as_str(), &[scope])
            .await
            .map_err(DemoError::engine("verify the email code"))?;
        Ok(())
    }
}
