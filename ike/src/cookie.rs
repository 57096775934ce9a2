//! Stateless cookies against IKE_SA_INIT floods (RFC 7296 section 2.6): once a listener holds
//! `cookie_threshold` half-open IKE SAs, an IKE_SA_INIT request gets only `N(COOKIE)` back,
//! with no state kept, unless it carries a cookie we made:
//! `cookie = <secret version> | HMAC-SHA-256(secret, Ni | IPi | SPIi)`. The secret changes every
//! five minutes; cookies made with the previous one are still accepted. Above `max_half_open`
//! half-open SAs, requests are dropped outright (memory stays bounded under any flood).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use subtle::ConstantTimeEq as _;
use vpn_ike_crypto::prf::PrfAlgorithm;

/// How long one secret makes cookies.
const ROTATE_EVERY: Duration = Duration::from_secs(300);

/// When cookies are asked for, and when new half-open SAs are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfOpenLimits {
    /// Half-open SAs from which on an IKE_SA_INIT must carry a valid cookie (strongSwan's
    /// `cookie_threshold` default is 30).
    pub cookie_threshold: usize,
    /// Half-open SAs from which on new IKE_SA_INIT requests are dropped.
    pub max_half_open: usize,
}

impl Default for HalfOpenLimits {
    fn default() -> Self {
        HalfOpenLimits {
            cookie_threshold: 30,
            max_half_open: 5000,
        }
    }
}

struct Secret {
    version: u8,
    key: [u8; 32],
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// The listener's cookie secrets.
pub(crate) struct CookieJar {
    current: Secret,
    previous: Option<Secret>,
    made_at: Instant,
}

fn cookie(secret: &Secret, ni: &[u8], ip: IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
    let ip = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mac = PrfAlgorithm::HmacSha256.prf(&secret.key, &[ni, &ip, spi_i].concat());
    let mut out = Vec::with_capacity(1 + mac.as_bytes().len());
    out.push(secret.version);
    out.extend_from_slice(mac.as_bytes());
    out
}

impl CookieJar {
    pub(crate) fn new(now: Instant, rng: &mut dyn CryptoRng) -> Self {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        CookieJar {
            current: Secret { version: 0, key },
            previous: None,
            made_at: now,
        }
    }

    fn rotate(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        if now.saturating_duration_since(self.made_at) < ROTATE_EVERY {
            return;
        }
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let next = Secret {
            version: self.current.version.wrapping_add(1),
            key,
        };
        self.previous = Some(std::mem::replace(&mut self.current, next));
        self.made_at = now;
    }

    /// A cookie for this initiator (nonce, address, SPI).
    pub(crate) fn make(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        ni: &[u8],
        ip: IpAddr,
        spi_i: &[u8; 8],
    ) -> Vec<u8> {
        self.rotate(now, rng);
        cookie(&self.current, ni, ip, spi_i)
    }

    /// Whether `presented` is a cookie we made for this initiator with a live secret.
    pub(crate) fn check(&self, presented: &[u8], ni: &[u8], ip: IpAddr, spi_i: &[u8; 8]) -> bool {
        let Some(&version) = presented.first() else {
            return false;
        };
        [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .filter(|s| s.version == version)
            .any(|s| bool::from(cookie(s, ni, ip, spi_i).ct_eq(presented)))
    }
}
