//! The admin token check of `DELETE /delete`.

/// Why a request is not allowed to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `MEMORY_ADMIN_TOKEN` is unset: deletion is off (403).
    Disabled,
    /// No or a wrong bearer token (401).
    BadToken,
}

/// Checks an `Authorization` header value against the configured token.
pub fn check_admin(configured: Option<&str>, header: Option<&[u8]>) -> Result<(), Denied> {
    let Some(expected) = configured else {
        return Err(Denied::Disabled);
    };
    let presented = header
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default();
    if constant_time_eq(presented, expected.as_bytes()) {
        Ok(())
    } else {
        Err(Denied::BadToken)
    }
}

/// Compares in time that depends only on the lengths, never on where the
/// first difference is, so the token cannot be guessed byte by byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    // black_box keeps the optimiser from adding an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn admin_check() {
        assert_eq!(check_admin(None, Some(b"Bearer x")), Err(Denied::Disabled));
        assert_eq!(check_admin(Some("x"), None), Err(Denied::BadToken));
        assert_eq!(check_admin(Some("x"), Some(b"x")), Err(Denied::BadToken));
        assert_eq!(
            check_admin(Some("x"), Some(b"Bearer y")),
            Err(Denied::BadToken)
        );
        assert_eq!(check_admin(Some("x"), Some(b"Bearer x")), Ok(()));
    }
}
