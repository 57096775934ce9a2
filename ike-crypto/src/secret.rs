//! Byte strings that hold key material.
//!
//! [`SecretBytes`] wipes its buffer on drop (via [`zeroize`]) and never prints its content in
//! `Debug`: only the length is shown, so an accidental `{:?}` of a key struct in a log line
//! cannot leak keys.

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Key material: zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (the caller's `Vec` is moved, not copied).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies `bytes` into a new secret buffer.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer is empty (e.g. no integrity key for an AEAD).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality (length is not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }

    pub(crate) fn from_zeroizing(z: Zeroizing<Vec<u8>>) -> Self {
        Self(z.to_vec())
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let d = format!("{s:?}");
        assert_eq!(d, "SecretBytes([REDACTED; 4])");
        assert!(!d.to_lowercase().contains("de"));
    }

    #[test]
    fn ct_eq_checks_length_and_content() {
        let s = SecretBytes::from_slice(b"abc");
        assert!(s.ct_eq(b"abc"));
        assert!(!s.ct_eq(b"abd"));
        assert!(!s.ct_eq(b"ab"));
    }
}
