//! The sysctls a router needs (seeds 001, 002, 004 set them by hand): applied at start,
//! checked for drift while running, and put back as they were on a clean shutdown.
//!
//! Written through /proc/sys, which for `net.*` keys shows the agent's own network namespace.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use vpn_config::SysctlPolicy;

/// One kernel parameter and the value we want.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Dotted name, as `sysctl` shows it (net.ipv4.ip_forward).
    pub key: String,
    pub value: String,
}

impl Setting {
    fn new(key: impl Into<String>, value: impl ToString) -> Self {
        Setting {
            key: key.into(),
            value: value.to_string(),
        }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/proc/sys").join(self.key.replace('.', "/"))
    }

    fn read(&self) -> anyhow::Result<String> {
        let path = self.path();
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    fn write(&self, value: &str) -> anyhow::Result<()> {
        let path = self.path();
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }
}

/// The settings a policy asks for; `interfaces` are those whose `rp_filter` it names.
pub fn desired(policy: &SysctlPolicy) -> Vec<Setting> {
    let flag = |b: bool| u8::from(b);
    let mut settings = vec![Setting::new("net.ipv4.ip_forward", flag(policy.ip_forward))];
    for (scope, value) in &policy.rp_filter {
        settings.push(Setting::new(
            format!("net.ipv4.conf.{scope}.rp_filter"),
            value,
        ));
    }
    for scope in ["all", "default"] {
        for (name, on) in [
            ("send_redirects", policy.send_redirects),
            ("accept_redirects", policy.accept_redirects),
            ("secure_redirects", policy.secure_redirects),
            ("accept_source_route", policy.accept_source_route),
        ] {
            settings.push(Setting::new(
                format!("net.ipv4.conf.{scope}.{name}"),
                flag(on),
            ));
        }
    }
    settings.push(Setting::new(
        "net.ipv4.tcp_mtu_probing",
        policy.tcp_mtu_probing,
    ));
    settings
}

/// A setting that no longer has the value we applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub key: String,
    pub wanted: String,
    pub found: String,
}

/// Settings applied by this agent, with the values they replaced.
pub struct AppliedSysctls {
    applied: Vec<(Setting, String)>,
    restore_on_exit: bool,
}

impl AppliedSysctls {
    /// Applies `settings`; stops at the first that cannot be written, after putting back the
    /// ones already changed.
    pub fn apply(settings: Vec<Setting>, restore_on_exit: bool) -> anyhow::Result<Self> {
        let mut done = AppliedSysctls {
            applied: Vec::new(),
            restore_on_exit: true,
        };
        for setting in settings {
            let previous = match setting.read() {
                Ok(previous) => previous,
                Err(err) => {
                    done.restore();
                    return Err(err);
                }
            };
            if previous != setting.value {
                if let Err(err) = setting.write(&setting.value) {
                    done.restore();
                    return Err(err);
                }
                tracing::info!(key = %setting.key, from = %previous, to = %setting.value, "sysctl set");
            }
            done.applied.push((setting, previous));
        }
        done.restore_on_exit = restore_on_exit;
        Ok(done)
    }

    /// Settings someone changed since we applied them.
    /// Moves to another policy (a reload): new keys are set (their values now kept for the
    /// restore), changed ones rewritten, and keys the policy no longer sets get back the
    /// value they had before the agent set them. Every new key is read before anything is
    /// written, so an unreadable key changes nothing.
    pub fn update(&mut self, settings: Vec<Setting>, restore_on_exit: bool) -> anyhow::Result<()> {
        let mut next: Vec<(Setting, String)> = Vec::with_capacity(settings.len());
        for setting in settings {
            let original = match self.applied.iter().find(|(s, _)| s.key == setting.key) {
                Some((_, original)) => original.clone(),
                None => setting.read()?,
            };
            next.push((setting, original));
        }
        let dropped: Vec<(Setting, String)> = std::mem::take(&mut self.applied)
            .into_iter()
            .filter(|(old, _)| !next.iter().any(|(s, _)| s.key == old.key))
            .collect();
        // Until each step is done, every key touched stays in the list the restore on exit
        // uses, so a failure half-way loses no original value.
        self.applied = next
            .iter()
            .cloned()
            .chain(dropped.iter().cloned())
            .collect();
        self.restore_on_exit = restore_on_exit;
        for (old, original) in dropped {
            if *original != old.value {
                old.write(&original)?;
                tracing::info!(key = %old.key, to = %original, "sysctl no longer set by the policy: restored");
            }
            self.applied.retain(|(s, _)| s.key != old.key);
        }
        for (setting, _) in &next {
            let found = setting.read()?;
            if found != setting.value {
                setting.write(&setting.value)?;
                tracing::info!(key = %setting.key, from = %found, to = %setting.value, "sysctl set");
            }
        }
        Ok(())
    }

    pub fn drift(&self) -> Vec<Drift> {
        self.applied
            .iter()
            .filter_map(|(setting, _)| match setting.read() {
                Ok(found) if found == setting.value => None,
                Ok(found) => Some(Drift {
                    key: setting.key.clone(),
                    wanted: setting.value.clone(),
                    found,
                }),
                Err(err) => Some(Drift {
                    key: setting.key.clone(),
                    wanted: setting.value.clone(),
                    found: format!("unreadable: {err:#}"),
                }),
            })
            .collect()
    }

    /// Puts back the values found at start (unless the policy says to leave ours).
    pub fn restore(self) {
        if !self.restore_on_exit {
            return;
        }
        for (setting, previous) in self.applied.into_iter().rev() {
            if previous == setting.value {
                continue;
            }
            match setting.write(&previous) {
                Ok(()) => tracing::info!(key = %setting.key, to = %previous, "sysctl restored"),
                Err(err) => tracing::warn!(error = %format!("{err:#}"), "restoring a sysctl"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_policy_becomes_the_settings_the_seeds_make_by_hand() {
        let policy = SysctlPolicy {
            manage: true,
            ip_forward: true,
            rp_filter: BTreeMap::from([("all".to_owned(), 2), ("eth0".to_owned(), 0)]),
            send_redirects: false,
            accept_redirects: false,
            secure_redirects: false,
            accept_source_route: false,
            tcp_mtu_probing: 1,
            restore_on_exit: true,
        };
        let settings = desired(&policy);
        let get = |key: &str| {
            settings
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.value.as_str())
        };
        assert_eq!(get("net.ipv4.ip_forward"), Some("1"));
        assert_eq!(get("net.ipv4.conf.all.rp_filter"), Some("2"));
        assert_eq!(get("net.ipv4.conf.eth0.rp_filter"), Some("0"));
        assert_eq!(get("net.ipv4.conf.default.send_redirects"), Some("0"));
        assert_eq!(get("net.ipv4.conf.all.accept_source_route"), Some("0"));
        assert_eq!(get("net.ipv4.tcp_mtu_probing"), Some("1"));
        assert_eq!(
            Setting::new("net.ipv4.conf.all.rp_filter", 2).path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/rp_filter")
        );
    }
}
