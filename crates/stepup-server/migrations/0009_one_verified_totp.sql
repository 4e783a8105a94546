-- One verified authenticator app per user, as Dynamic has it, held by the database: the route's check alone could
-- be raced (an enrolment started while another one completed), leaving two verified devices.
CREATE UNIQUE INDEX mfa_devices_one_verified_totp ON mfa_devices (user_id) WHERE verified = 1 AND kind = 'totp';
