//! The SQL both databases share, and the macro that implements [`super::Store`] with it.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`, `LIKE … ESCAPE`), so one text serves both; what differs between them —
//! connection setup, pragmas, migrations, column types — lives in `sqlite.rs` and
//! `postgres.rs`. A statement that must differ gets a method of its own in each file.

pub(super) const INSERT_USER: &str = "INSERT INTO users \
    (id, username, email, password_hash, display_name, search_name, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *";

pub(super) const FETCH_USER: &str = "SELECT * FROM users WHERE id = $1";

pub(super) const FETCH_USER_BY_EMAIL: &str = "SELECT * FROM users WHERE lower(email) = $1";

pub(super) const FETCH_USER_BY_USERNAME: &str =
    "SELECT * FROM users WHERE lower(username) = lower($1)";

pub(super) const LIST_USERS: &str = "SELECT * FROM users \
    WHERE ($1 IS NULL OR lower(username) LIKE $1 ESCAPE '\\' OR search_name LIKE $1 ESCAPE '\\') \
      AND ($2 IS NULL OR lower(username) > $2) \
    ORDER BY lower(username) LIMIT $3";

pub(super) const UPDATE_USER_PROFILE: &str = "UPDATE users SET \
    display_name = COALESCE($2, display_name), \
    search_name = COALESCE($3, search_name), \
    avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END, \
    status = CASE WHEN $6 THEN $7 ELSE status END, \
    updated_at = $8 \
    WHERE id = $1 RETURNING *";

pub(super) const UPDATE_LAST_SEEN: &str = "UPDATE users SET last_seen = $2 WHERE id = $1";

pub(super) const INSERT_REVOCATION: &str =
    "INSERT INTO token_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";

pub(super) const LIST_REVOCATIONS: &str =
    "SELECT jti, expires_at FROM token_revocations WHERE expires_at > $1";

pub(super) const DELETE_EXPIRED_REVOCATIONS: &str =
    "DELETE FROM token_revocations WHERE expires_at <= $1";

/// `SELECT * FROM users WHERE id IN ($1, …, $n) ORDER BY lower(username)`.
pub(super) fn users_by_ids(n: usize) -> String {
    let placeholders: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT * FROM users WHERE id IN ({}) ORDER BY lower(username)",
        placeholders.join(", ")
    )
}

/// Implements [`super::Store`] for a store type with a `pool` field and a `kind` name.
macro_rules! impl_store {
    ($store:ty, $kind:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn kind(&self) -> &'static str {
                $kind
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn insert_user(&self, user: &NewUser) -> Result<UserRow, StoreError> {
                sqlx::query_as::<_, UserRow>(queries::INSERT_USER)
                    .bind(user.id)
                    .bind(user.username.as_str())
                    .bind(user.email.as_str())
                    .bind(&user.password_hash)
                    .bind(user.display_name.as_str())
                    .bind(user.display_name.as_str().to_lowercase())
                    .bind(user.created_at)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::store::conflict_on_unique)
            }

            async fn fetch_user(&self, id: Uuid) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::FETCH_USER)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn fetch_user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::FETCH_USER_BY_EMAIL)
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn fetch_user_by_username(
                &self,
                username: &str,
            ) -> Result<Option<UserRow>, StoreError> {
                Ok(
                    sqlx::query_as::<_, UserRow>(queries::FETCH_USER_BY_USERNAME)
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn list_users(&self, query: &UserQuery) -> Result<Vec<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(queries::LIST_USERS)
                    .bind(query.prefix.as_deref().map($crate::store::like_prefix))
                    .bind(query.after_username.as_deref())
                    .bind(i64::from(query.limit))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn list_users_by_ids(&self, ids: &[Uuid]) -> Result<Vec<UserRow>, StoreError> {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = queries::users_by_ids(chunk.len());
                    let mut q = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    rows.extend(q.fetch_all(&self.pool).await?);
                }
                rows.sort_by_key(|r| r.username.to_lowercase());
                Ok(rows)
            }

            async fn update_user_profile(
                &self,
                id: Uuid,
                patch: &ProfilePatch,
                now: DateTime<Utc>,
            ) -> Result<Option<UserRow>, StoreError> {
                let name = patch.display_name.as_ref().map(|d| d.as_str().to_owned());
                Ok(sqlx::query_as::<_, UserRow>(queries::UPDATE_USER_PROFILE)
                    .bind(id)
                    .bind(name.as_deref())
                    .bind(name.as_deref().map(str::to_lowercase))
                    .bind(patch.avatar_url.is_some())
                    .bind(patch.avatar_url.clone().flatten())
                    .bind(patch.status.is_some())
                    .bind(patch.status.clone().flatten())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn update_last_seen(
                &self,
                id: Uuid,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(queries::UPDATE_LAST_SEEN)
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_revocation(
                &self,
                jti: Uuid,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(queries::INSERT_REVOCATION)
                    .bind(jti)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_revocations(&self, now: i64) -> Result<Vec<(Uuid, i64)>, StoreError> {
                Ok(sqlx::query_as::<_, (Uuid, i64)>(queries::LIST_REVOCATIONS)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn delete_expired_revocations(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(queries::DELETE_EXPIRED_REVOCATIONS)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}
