-- Dynamic's credential chain names: a wallet credential's chain is `eip155`, not the connector's `EVM`
-- (Dynamic's client skips wallets whose chain name it does not know).
UPDATE credentials SET chain = 'eip155' WHERE chain IN ('EVM', 'evm', 'ETH');
-- The user's default MFA device (PUT /users/mfa/{id}).
ALTER TABLE mfa_devices ADD COLUMN is_default BIGINT NOT NULL DEFAULT 0;
-- Whether shown recovery codes are acknowledged (PUT /users, SdkUser.mfaBackupCodeAcknowledgement).
ALTER TABLE users ADD COLUMN mfa_backup_code_acknowledgement TEXT;
