//! Users and their verified credentials.

use stepup_proto::CredentialFormat;

use rusqlite::named_params;

use super::{Store, StoreError, with_pool};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// Id (UUID).
    pub id: String,
    /// Environment.
    pub environment_id: String,
    /// Email, if any.
    pub email: Option<String>,
    /// Phone number (E.164-ish, as given), if any.
    pub phone_number: Option<String>,
    /// `pending` while shown recovery codes are not acknowledged, `complete` after; `None` before any were shown.
    pub mfa_backup_code_acknowledgement: Option<String>,
}

/// A verified credential of a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CredentialRow {
    /// Id (UUID).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// `email`, `phoneNumber` or `blockchain` (stored by its wire name).
    #[sqlx(try_from = "String")]
    pub format: CredentialFormat,
    /// Email address.
    pub email: Option<String>,
    /// Phone number without country code.
    pub phone_number: Option<String>,
    /// Country calling code.
    pub phone_country_code: Option<String>,
    /// ISO country code.
    pub iso_country_code: Option<String>,
    /// Wallet address (checksummed).
    pub address: Option<String>,
    /// Wallet chain.
    pub chain: Option<String>,
    /// Wallet name.
    pub wallet_name: Option<String>,
    /// Wallet provider.
    pub wallet_provider: Option<String>,
    /// An embedded wallet (never qualifies for step-up).
    pub embedded: bool,
    /// Whether the user may sign in with it.
    pub sign_in_enabled: bool,
}

/// What is needed to add a credential.
pub type NewCredential = CredentialRow;

impl CredentialRow {
    /// A credential of `format` for `user_id` with nothing else set (fill in the rest with struct update):
    /// not embedded, not for sign-in.
    #[must_use]
    pub fn new(id: String, user_id: String, format: CredentialFormat) -> Self {
        Self {
            id,
            user_id,
            format,
            email: None,
            phone_number: None,
            phone_country_code: None,
            iso_country_code: None,
            address: None,
            chain: None,
            wallet_name: None,
            wallet_provider: None,
            embedded: false,
            sign_in_enabled: false,
        }
    }
}

impl Store {
    /// Inserts a user.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_user(&self, user: &UserRow, now: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, environment_id, email, phone_number, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&user.id)
            .bind(&user.environment_id)
            .bind(&user.email)
            .bind(&user.phone_number)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A user of an environment.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn user(&self, environment_id: &str, user_id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, environment_id, email, phone_number, mfa_backup_code_acknowledgement FROM users \
             WHERE id = $1 AND environment_id = $2",
        )
        .bind(user_id)
        .bind(environment_id)
        .fetch_optional(pool)
        .await?))
    }

    /// Sets whether the user's recovery codes are acknowledged (`pending`, `complete`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_backup_code_acknowledgement(
        &self,
        user_id: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE users SET mfa_backup_code_acknowledgement = $2 WHERE id = $1")
                .bind(user_id)
                .bind(value)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Adds a credential.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_credential(&self, c: &NewCredential, now: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO credentials (id, user_id, format, email, phone_number, phone_country_code, iso_country_code, \
                 address, chain, wallet_name, wallet_provider, embedded, sign_in_enabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(c.format.as_str())
            .bind(&c.email)
            .bind(&c.phone_number)
            .bind(&c.phone_country_code)
            .bind(&c.iso_country_code)
            .bind(&c.address)
            .bind(&c.chain)
            .bind(&c.wallet_name)
            .bind(&c.wallet_provider)
            .bind(i64::from(c.embedded))
            .bind(i64::from(c.sign_in_enabled))
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A user's credentials, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn credentials(&self, user_id: &str) -> Result<Vec<CredentialRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, user_id, format, email, phone_number, phone_country_code, iso_country_code, address, chain, \
                 wallet_name, wallet_provider, embedded <> 0 AS embedded, sign_in_enabled <> 0 AS sign_in_enabled \
                 FROM credentials WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        }))
    }
}

/// A user's row joined with one of their credentials (or none): [`Store::user_with_credentials`].
#[derive(sqlx::FromRow)]
struct UserCredentialRow {
    #[sqlx(flatten)]
    user: UserRow,
    c_id: Option<String>,
    c_format: Option<String>,
    c_email: Option<String>,
    c_phone_number: Option<String>,
    phone_country_code: Option<String>,
    iso_country_code: Option<String>,
    address: Option<String>,
    chain: Option<String>,
    wallet_name: Option<String>,
    wallet_provider: Option<String>,
    embedded: Option<bool>,
    sign_in_enabled: Option<bool>,
}

impl UserCredentialRow {
    /// The row as rusqlite reads it (the columns `FromRow` reads).
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user: UserRow {
                id: row.get("id")?,
                environment_id: row.get("environment_id")?,
                email: row.get("email")?,
                phone_number: row.get("phone_number")?,
                mfa_backup_code_acknowledgement: row.get("mfa_backup_code_acknowledgement")?,
            },
            c_id: row.get("c_id")?,
            c_format: row.get("c_format")?,
            c_email: row.get("c_email")?,
            c_phone_number: row.get("c_phone_number")?,
            phone_country_code: row.get("phone_country_code")?,
            iso_country_code: row.get("iso_country_code")?,
            address: row.get("address")?,
            chain: row.get("chain")?,
            wallet_name: row.get("wallet_name")?,
            wallet_provider: row.get("wallet_provider")?,
            embedded: row.get("embedded")?,
            sign_in_enabled: row.get("sign_in_enabled")?,
        })
    }

    /// The credential of this row, if the user has any.
    fn credential(self) -> Option<CredentialRow> {
        Some(CredentialRow {
            id: self.c_id?,
            user_id: self.user.id,
            format: CredentialFormat::from(self.c_format?),
            email: self.c_email,
            phone_number: self.c_phone_number,
            phone_country_code: self.phone_country_code,
            iso_country_code: self.iso_country_code,
            address: self.address,
            chain: self.chain,
            wallet_name: self.wallet_name,
            wallet_provider: self.wallet_provider,
            embedded: self.embedded.unwrap_or(false),
            sign_in_enabled: self.sign_in_enabled.unwrap_or(false),
        })
    }
}

impl Store {
    /// [`Store::user`] and [`Store::credentials`] in one statement (a `LEFT JOIN`): every answer that carries the
    /// user reads both, and each statement is a hand-off to the database (docs/benchmarks.md). `None` when the
    /// user is not in the environment.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn user_with_credentials(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> Result<Option<(UserRow, Vec<CredentialRow>)>, StoreError> {
        const USER_WITH_CREDENTIALS: &str = "SELECT u.id, u.environment_id, u.email, u.phone_number, \
             u.mfa_backup_code_acknowledgement, \
             c.id AS c_id, c.format AS c_format, c.email AS c_email, c.phone_number AS c_phone_number, \
             c.phone_country_code, c.iso_country_code, c.address, c.chain, c.wallet_name, c.wallet_provider, \
             c.embedded <> 0 AS embedded, c.sign_in_enabled <> 0 AS sign_in_enabled \
             FROM users u LEFT JOIN credentials c ON c.user_id = u.id \
             WHERE u.id = $1 AND u.environment_id = $2 ORDER BY c.created_at, c.id";
        // Read by every verify answer: on the calling thread where it can be (CallingThreadSqlite).
        let on_calling_thread = self.on_calling_thread(|connection| {
            connection
                .prepare_cached(USER_WITH_CREDENTIALS)?
                .query_map(named_params! {"$1": user_id, "$2": environment_id}, UserCredentialRow::read)?
                .collect()
        });
        let rows: Vec<UserCredentialRow> = match on_calling_thread {
            Some(rows) => rows?,
            None => with_pool!(self, |pool| sqlx::query_as(USER_WITH_CREDENTIALS)
                .bind(user_id)
                .bind(environment_id)
                .fetch_all(pool)
                .await?),
        };
        let Some(first) = rows.first() else { return Ok(None) };
        let user = first.user.clone();
        let credentials = rows.into_iter().filter_map(UserCredentialRow::credential).collect();
        Ok(Some((user, credentials)))
    }
}

impl Store {
    /// The user of `environment_id` who has a sign-in-enabled credential at `destination` (an email address,
    /// or `+<country code><number>`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn user_by_destination(
        &self,
        environment_id: &str,
        destination: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT c.user_id AS user_id FROM credentials c JOIN users u ON u.id = c.user_id \
             WHERE u.environment_id = $1 AND c.sign_in_enabled = 1 AND \
             ((c.format = 'email' AND c.email = $2) OR \
              (c.format = 'phoneNumber' AND '+' || c.phone_country_code || c.phone_number = $2)) \
             ORDER BY c.created_at LIMIT 1",
        )
        .bind(environment_id)
        .bind(destination)
        .fetch_optional(pool)
        .await?))
    }
}
