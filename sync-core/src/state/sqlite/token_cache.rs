//! The state file as the Fxiaoke SDK's token cache.
//!
//! Each `fxk3` start would otherwise fetch a new corp access token, and the vendor allows ten
//! token calls a minute: a service restarted by a supervisor fifteen times in a minute was
//! refused (30004) and stopped. Kept in the state file, a token fetched by one process is used
//! by the next until it is due, as the SDK's reuse window allows.

use super::SqliteStore;
use chrono::{DateTime, Utc};
use fxiaoke_sdk::{CacheError, CorpToken, TokenCache, TokenKey};
use rusqlite::{OptionalExtension, params};

fn time(ms: i64) -> Result<DateTime<Utc>, CacheError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| format!("token time {ms} out of range").into())
}

#[async_trait::async_trait]
impl TokenCache for SqliteStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError> {
        let row: Option<(String, String, i64, i64)> = self
            .lock()
            .query_row(
                "SELECT token, corp_id, issued_at, expires_at FROM tokens WHERE key = ?1",
                [key.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((token, corp_id, issued, expires)) = row else {
            return Ok(None);
        };
        Ok(Some(CorpToken::new(
            token,
            corp_id,
            time(issued)?,
            time(expires)?,
        )))
    }

    async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError> {
        self.lock().execute(
            "INSERT INTO tokens (key, token, corp_id, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO UPDATE SET token = excluded.token, corp_id = excluded.corp_id,
                 issued_at = excluded.issued_at, expires_at = excluded.expires_at",
            params![
                key.to_string(),
                token.expose_token(),
                token.corp_id(),
                token.issued_at().timestamp_millis(),
                token.expires_at().timestamp_millis()
            ],
        )?;
        Ok(())
    }

    async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError> {
        self.lock()
            .execute("DELETE FROM tokens WHERE key = ?1", [key.to_string()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_outlives_the_store_that_kept_it_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let key = TokenKey::new("open.fxiaoke.com", "FSAID_1", "PERMANENT");
        let issued = DateTime::from_timestamp_millis(1_716_000_000_000).unwrap();
        let token = CorpToken::new(
            "TOKEN-VALUE",
            "FSCID_1",
            issued,
            issued + chrono::Duration::seconds(7200),
        );
        {
            let store = SqliteStore::open(&path).unwrap();
            assert!(store.get(&key).await.unwrap().is_none());
            store.put(&key, &token).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let read = store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            (
                read.expose_token(),
                read.corp_id(),
                read.issued_at(),
                read.expires_at()
            ),
            ("TOKEN-VALUE", "FSCID_1", issued, token.expires_at())
        );
        let other = TokenKey::new("open.fxiaoke.com", "FSAID_1", "ANOTHER");
        assert!(store.get(&other).await.unwrap().is_none());
        store.invalidate(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
    }
}
