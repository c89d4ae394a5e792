//! Password hashing with argon2id (OWASP's minimum parameters: 19 MiB, 2 passes, 1 lane),
//! stored as PHC strings so that the parameters travel with each hash and can be raised
//! later without breaking old ones.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool, never on the async
//! workers. Checking a login for an unknown account still hashes (against a dummy hash),
//! so that "no such account" and "wrong password" take the same time.

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use domain::user::{NewPassword, PasswordHash};
use password_hash::rand_core::OsRng;
use password_hash::{PasswordHash as ParsedHash, SaltString};

/// Hashing failed: the machine is out of memory or the blocking pool is gone.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

/// Hashes new passwords and checks offered ones.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    /// A hash of a random password nobody knows, checked when the account does not exist.
    dummy: PasswordHash,
}

impl PasswordHasher {
    /// Prepares the hasher (one hash, for the dummy).
    ///
    /// # Errors
    /// [`HashingError`] when hashing fails.
    pub async fn new() -> Result<Self, HashingError> {
        let secret = SaltString::generate(&mut OsRng);
        let dummy = hash_blocking(secret.as_str().to_owned()).await?;
        Ok(Self { dummy })
    }

    /// Hashes a new password with a fresh random salt.
    ///
    /// # Errors
    /// [`HashingError`] when hashing fails.
    pub async fn hash(&self, password: &NewPassword) -> Result<PasswordHash, HashingError> {
        hash_blocking(password.expose().to_owned()).await
    }

    /// Whether `offered` matches `stored`. With no stored hash (no such account, or one
    /// that cannot sign in) the dummy is checked instead and the answer is always false,
    /// after the same work.
    pub async fn verify(&self, offered: &str, stored: Option<&PasswordHash>) -> bool {
        let (phc, known) = match stored {
            Some(hash) => (hash.as_phc().to_owned(), true),
            None => (self.dummy.as_phc().to_owned(), false),
        };
        let offered = offered.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            ParsedHash::new(&phc)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(offered.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matches
    }
}

async fn hash_blocking(password: String) -> Result<PasswordHash, HashingError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| PasswordHash::from_phc(hash.to_string()))
            .map_err(|e| HashingError(e.to_string()))
    })
    .await
    .map_err(|e| HashingError(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> NewPassword {
        NewPassword::parse(text).expect("a valid password")
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_in_phc_form_and_never_holds_the_password() {
        let hasher = PasswordHasher::new().await.expect("hasher");
        let hash = hasher
            .hash(&password("correct horse battery"))
            .await
            .expect("hash");
        assert!(
            hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_phc()
        );
        assert!(!hash.as_phc().contains("correct horse battery"));
    }

    #[tokio::test]
    async fn the_right_password_verifies_and_others_do_not() {
        let hasher = PasswordHasher::new().await.expect("hasher");
        let hash = hasher
            .hash(&password("correct horse battery"))
            .await
            .expect("hash");
        assert!(hasher.verify("correct horse battery", Some(&hash)).await);
        assert!(!hasher.verify("correct horse batterz", Some(&hash)).await);
        assert!(!hasher.verify("", Some(&hash)).await);
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = PasswordHasher::new().await.expect("hasher");
        let first = hasher
            .hash(&password("correct horse battery"))
            .await
            .expect("hash");
        let second = hasher
            .hash(&password("correct horse battery"))
            .await
            .expect("hash");
        assert_ne!(first, second, "a fresh salt each time");
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new().await.expect("hasher");
        assert!(!hasher.verify("anything at all", None).await);
        assert!(!hasher.verify(hasher.dummy.as_phc(), None).await);
    }
}
