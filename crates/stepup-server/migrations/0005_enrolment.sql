-- The scopes of the elevated token that started an enrolment: the verification that completes it may mint no more.
ALTER TABLE mfa_devices ADD COLUMN enrolment_scopes TEXT;
-- At most one unfinished TOTP enrolment per user: a new one replaces it (ON CONFLICT on this index). Unfinished
-- enrolments of earlier versions are dropped to make room for the index; their users simply start again.
DELETE FROM mfa_devices WHERE verified = 0;
CREATE UNIQUE INDEX mfa_devices_one_pending ON mfa_devices (user_id) WHERE verified = 0;
