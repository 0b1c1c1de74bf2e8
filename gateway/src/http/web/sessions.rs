//! Approvers' sessions on the web page. Signing in trades the approver token (long-lived, kept by the approver)
//! for a random session id with an expiry, kept in this process only: the cookie never carries the token, a
//! session can be ended (logout), and each session has its own CSRF token that every form carries back.
//!
//! Sessions live in memory: a restart (or another replica) asks the approver to sign in again, which costs a
//! second and keeps no session secret in the database. A session remembers the SHA-256 of the token it was begun
//! with, and every request in it checks that the approver still holds that token in the configuration in force
//! (`Core::approver_session_stands`): removing an approver, or replacing their token, ends their sessions on
//! every replica at their next click, without the replicas sharing sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// How long a session lasts after signing in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The most sessions kept at once; signing in beyond it drops the oldest.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in approver.
#[derive(Debug, Clone)]
pub struct Session {
    pub approver: String,
    /// The SHA-256 of the approver token the session was begun with.
    pub token_sha256: [u8; 32],
    pub csrf: String,
    expires: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `approver`, signed in with a token of SHA-256 `token_sha256`; its id (for the
    /// cookie) and the session.
    pub fn start(&self, approver: &str, token_sha256: [u8; 32]) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            approver: approver.to_owned(),
            token_sha256,
            csrf: random_hex(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `presented` is the session's CSRF token `expected` (compared in constant time).
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// 256 random bits, hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_ends() {
        let sessions = Sessions::default();
        let (id, session) = sessions.start("alice", [1; 32]);
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.get(&id).map(|s| s.approver), Some("alice".to_owned()));
        assert!(csrf_matches(&session.csrf, &session.csrf));
        assert!(!csrf_matches(&session.csrf, "guess"));
        let (other, _) = sessions.start("alice", [1; 32]);
        assert_ne!(id, other, "every sign-in is a new session");
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        assert!(sessions.get(&other).is_some());
    }
}
