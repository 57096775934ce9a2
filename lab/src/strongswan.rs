//! strongSwan 5.9 (Debian's charon with the kernel-libipsec plugin) as a real IKEv2/ESP peer on a
//! lab node: the reference implementation that our datapath and IKE engine are compared with and
//! tested against.
//!
//! Each [`Charon`] runs `/usr/lib/ipsec/charon` inside a lab node's network namespace with
//! - a private `/run` (a per-instance folder bind-mounted over `/run` in a mount namespace of its
//!   own, because the pid file path `/var/run/charon.pid` is compiled in),
//! - its own `strongswan.conf` (through `STRONGSWAN_CONF`) that loads exactly the plugins listed in
//!   [`PLUGINS`], including kernel-libipsec (ESP in userspace through a TUN device `ipsec0`, as
//!   this kernel has no XFRM ESP), and its own VICI socket,
//! - a log file with `chd = 4`, so the CHILD_SA keys appear in it (Debian's build has no
//!   save-keys plugin), and `ike = 2`,
//! - a `swanctl.conf` generated from [`Connection`]s, loaded with `swanctl --load-all`.
//!
//! Everything lives in one mode-0700 folder under the temp dir named after the namespace; the
//! `swanctl.conf` (PSKs) and the log (keys) are mode 0600. Dropping the value kills charon and
//! removes the folder; the `/run` bind mount exists only in charon's private mount namespace and
//! disappears with it.
//!
//! kernel-libipsec facts to keep in mind: it always encapsulates ESP in UDP 4500 (it fakes a NAT
//! so that IKE floats to 4500, even with `encap = no`), and it routes the remote traffic
//! selectors into `ipsec0` through routes in table 220 (`ip route show table 220`), which take
//! precedence over the lab's plain routes between the sites.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use vpn_lab::{Lab, LabSpec, Node, strongswan::{Charon, Connection, Psk}};
//! let lab = Lab::up(LabSpec::default())?;
//! let psk = Psk::random()?;
//! let (conn_a, conn_b) = Connection::lab_pair(&psk);
//! let a = Charon::start(&lab, Node::RouterA)?;
//! let b = Charon::start(&lab, Node::RouterB)?;
//! a.load(&[conn_a])?;
//! b.load(&[conn_b])?;
//! a.initiate("net")?;
//! a.wait_installed("net", std::time::Duration::from_secs(10))?;
//! # Ok(()) }
//! ```

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::Read as _,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{Lab, Node, addr, netns};

/// The charon daemon Debian installs.
pub const CHARON_BIN: &str = "/usr/lib/ipsec/charon";
/// The plugins every instance loads (`load_modular = no`): enough for PSK, raw public key
/// (PKCS#8 private keys) and certificate authentication, the usual algorithms, userspace ESP (kernel-libipsec) and VICI.
pub const PLUGINS: &str = "random nonce openssl aes sha1 sha2 hmac gcm gmp curve25519 kdf pem \
                           pkcs1 pkcs8 pubkey x509 kernel-libipsec kernel-netlink socket-default vici";
/// The default IKE proposal: AES-256-GCM-16, PRF HMAC-SHA2-256, DH group 14.
pub const DEFAULT_IKE_PROPOSAL: &str = "aes256gcm16-prfsha256-modp2048";
/// The default ESP proposal: AES-256-GCM-16 (no PFS for the CHILD_SA of IKE_AUTH anyway).
pub const DEFAULT_ESP_PROPOSAL: &str = "aes256gcm16";

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The folders `swanctl --load-all` scans next to swanctl.conf; created empty so it stays quiet.
const SWANCTL_DIRS: &[&str] = &[
    "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa",
    "ecdsa", "bliss", "pkcs8", "pkcs12",
];

/// A pre-shared key.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk(pub Vec<u8>);

impl Psk {
    /// 32 random bytes.
    pub fn random() -> anyhow::Result<Psk> {
        let mut key = vec![0u8; 32];
        fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
        Ok(Psk(key))
    }

    /// The key as swanctl.conf writes it: `0x` and hex.
    pub fn to_swanctl(&self) -> String {
        let mut s = String::from("0x");
        for b in &self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Psk({} bytes)", self.0.len())
    }
}

/// The algorithm of a key made by [`KeyFiles::generate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA with this many bits.
    Rsa(u32),
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

/// A key pair in PEM files: the private key (PKCS#8, mode 0600) and the public key (SPKI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFiles {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
}

impl KeyFiles {
    /// Generates `DIR/NAME.key` and `DIR/NAME.pub` with `openssl genpkey` / `openssl pkey`.
    pub fn generate(dir: &Path, name: &str, algorithm: KeyAlgorithm) -> anyhow::Result<KeyFiles> {
        let private_key = dir.join(format!("{name}.key"));
        let public_key = dir.join(format!("{name}.pub"));
        // Created empty with mode 0600 first, so the key is never readable by others.
        fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&private_key)?;
        let bits;
        let options: &[&str] = match algorithm {
            KeyAlgorithm::Rsa(n) => {
                bits = format!("rsa_keygen_bits:{n}");
                &["-algorithm", "RSA", "-pkeyopt", &bits]
            }
            KeyAlgorithm::EcdsaP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyAlgorithm::Ed25519 => &["-algorithm", "ED25519"],
        };
        let run = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .context("running openssl")?;
            if !out.status.success() {
                bail!(
                    "openssl {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        let key = private_key.to_string_lossy().into_owned();
        let public = public_key.to_string_lossy().into_owned();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["-out", &key]);
        run(&args)?;
        run(&["pkey", "-in", &key, "-pubout", "-out", &public])?;
        Ok(KeyFiles {
            private_key,
            public_key,
        })
    }
}

/// Raw public key authentication (swanctl `auth = pubkey` with `pubkeys`, no certificates):
/// this side's key pair and the peer's public key, copied into the instance's swanctl
/// folders (`pkcs8/`, `pubkey/`) by [`Charon::load`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubkeyAuth {
    pub local: KeyFiles,
    /// The peer's public key (PEM SPKI).
    pub remote_public_key: PathBuf,
}

/// What charon does with a CHILD_SA config once it is loaded (`children.NAME.start_action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAction {
    /// Wait: as responder, or until [`Charon::initiate`] is called.
    #[default]
    None,
    /// Install a trap policy and negotiate on the first matching packet.
    Trap,
    /// Initiate right after loading.
    Start,
}

impl StartAction {
    fn as_str(self) -> &'static str {
        match self {
            StartAction::None => "none",
            StartAction::Trap => "trap",
            StartAction::Start => "start",
        }
    }
}

/// What charon does when dead peer detection declares the peer dead (`dpd_action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpdAction {
    #[default]
    Clear,
    Trap,
    Restart,
}

impl DpdAction {
    fn as_str(self) -> &'static str {
        match self {
            DpdAction::Clear => "clear",
            DpdAction::Trap => "trap",
            DpdAction::Restart => "restart",
        }
    }
}

/// One IKEv2 connection with one CHILD_SA and PSK authentication (a `connections.NAME` section
/// of swanctl.conf and its `secrets.ike-NAME` entry), or raw public keys ([`PubkeyAuth`]).
#[derive(Clone, Debug)]
pub struct Connection {
    /// The connection (IKE_SA config) name.
    pub name: String,
    /// The CHILD_SA config name.
    pub child: String,
    /// `local_addrs`: this side's address (also the IKE source address).
    pub local_addr: String,
    /// `remote_addrs`: the peer's address.
    pub remote_addr: String,
    /// This side's IKE identity (an IP address or a FQDN, as strongSwan parses it).
    pub local_id: String,
    pub remote_id: String,
    pub psk: Psk,
    /// Raw public keys instead of the PSK (`None`: PSK).
    pub pubkey: Option<PubkeyAuth>,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    /// IKE proposals, most preferred first (strongSwan syntax, e.g. `aes256gcm16-prfsha256-modp2048`).
    pub ike_proposals: Vec<String>,
    /// ESP proposals (e.g. `aes256gcm16`; add a DH group such as `-modp2048` for PFS on rekeying).
    pub esp_proposals: Vec<String>,
    /// MOBIKE (off in tests: AWS does not use it).
    pub mobike: bool,
    /// Force UDP encapsulation (`encap = yes`). kernel-libipsec encapsulates regardless.
    pub encap: bool,
    pub start_action: StartAction,
    /// `dpd_delay`; `None` disables DPD.
    pub dpd_delay: Option<Duration>,
    pub dpd_action: DpdAction,
    /// IKE_SA `rekey_time`; `None` keeps strongSwan's default (4 h).
    pub ike_rekey_time: Option<Duration>,
    /// IKE_SA `over_time` (hard lifetime beyond the rekey time); `None`: 10 % of `rekey_time`.
    pub ike_over_time: Option<Duration>,
    /// CHILD_SA `rekey_time`; `None` keeps strongSwan's default (1 h).
    pub child_rekey_time: Option<Duration>,
}

impl Connection {
    /// A connection named `name` with a CHILD_SA named `child`, identities equal to the addresses,
    /// the default proposals, no MOBIKE, no forced encapsulation, no DPD, start action none.
    pub fn new(
        name: &str,
        child: &str,
        local_addr: impl ToString,
        remote_addr: impl ToString,
        local_ts: &str,
        remote_ts: &str,
        psk: &Psk,
    ) -> Connection {
        let (local_addr, remote_addr) = (local_addr.to_string(), remote_addr.to_string());
        Connection {
            name: name.to_owned(),
            child: child.to_owned(),
            local_id: local_addr.clone(),
            remote_id: remote_addr.clone(),
            local_addr,
            remote_addr,
            psk: psk.clone(),
            pubkey: None,
            local_ts: vec![local_ts.to_owned()],
            remote_ts: vec![remote_ts.to_owned()],
            ike_proposals: vec![DEFAULT_IKE_PROPOSAL.to_owned()],
            esp_proposals: vec![DEFAULT_ESP_PROPOSAL.to_owned()],
            mobike: false,
            encap: false,
            start_action: StartAction::None,
            dpd_delay: None,
            dpd_action: DpdAction::Clear,
            ike_rekey_time: None,
            ike_over_time: None,
            child_rekey_time: None,
        }
    }

    /// The standard lab's site-to-site tunnel (no NAT): connection `lab`, CHILD_SA `net`,
    /// 10.1.0.0/24 <-> 10.2.0.0/24, for router-a and router-b in that order.
    pub fn lab_pair(psk: &Psk) -> (Connection, Connection) {
        (
            Connection::new(
                "lab",
                "net",
                addr::ROUTER_A_WAN,
                addr::ROUTER_B_WAN,
                addr::SITE_A,
                addr::SITE_B,
                psk,
            ),
            Connection::new(
                "lab",
                "net",
                addr::ROUTER_B_WAN,
                addr::ROUTER_A_WAN,
                addr::SITE_B,
                addr::SITE_A,
                psk,
            ),
        )
    }

    /// Like [`Connection::lab_pair`] for a lab built with NAT ([`crate::LabSpec::nat`]):
    /// router-a binds its private WAN address (10.0.1.10) and both ends identify it by its public
    /// one (198.51.100.1), as with an EC2 instance behind its Elastic IP.
    pub fn lab_pair_nat(psk: &Psk) -> (Connection, Connection) {
        let (mut a, b) = Connection::lab_pair(psk);
        a.local_addr = addr::ROUTER_A_WAN_PRIVATE.to_string();
        (a, b)
    }

    /// [`Connection::lab_pair`] or [`Connection::lab_pair_nat`], whichever fits `lab`.
    pub fn lab_pair_for(lab: &Lab, psk: &Psk) -> (Connection, Connection) {
        if lab.has_nat() {
            Connection::lab_pair_nat(psk)
        } else {
            Connection::lab_pair(psk)
        }
    }

    /// The `connections { NAME { ... } }` entry.
    fn connection_section(&self) -> String {
        let mut s = String::new();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(s, "  {} {{", self.name);
        let _ = writeln!(s, "    version = 2");
        let _ = writeln!(s, "    local_addrs = {}", self.local_addr);
        let _ = writeln!(s, "    remote_addrs = {}", self.remote_addr);
        let _ = writeln!(s, "    proposals = {}", self.ike_proposals.join(", "));
        let _ = writeln!(s, "    mobike = {}", yes_no(self.mobike));
        let _ = writeln!(s, "    encap = {}", yes_no(self.encap));
        if let Some(delay) = self.dpd_delay {
            let _ = writeln!(s, "    dpd_delay = {}s", delay.as_secs().max(1));
        }
        if let Some(t) = self.ike_rekey_time {
            let _ = writeln!(s, "    rekey_time = {}s", t.as_secs());
        }
        if let Some(t) = self.ike_over_time {
            let _ = writeln!(s, "    over_time = {}s", t.as_secs());
        }
        match &self.pubkey {
            None => {
                let _ = writeln!(
                    s,
                    "    local {{\n      auth = psk\n      id = {}\n    }}",
                    self.local_id
                );
                let _ = writeln!(
                    s,
                    "    remote {{\n      auth = psk\n      id = {}\n    }}",
                    self.remote_id
                );
            }
            Some(_) => {
                let (local, remote) = self.pubkey_files();
                let _ = writeln!(
                    s,
                    "    local {{\n      auth = pubkey\n      id = {}\n      pubkeys = {local}\n    }}",
                    self.local_id
                );
                let _ = writeln!(
                    s,
                    "    remote {{\n      auth = pubkey\n      id = {}\n      pubkeys = {remote}\n    }}",
                    self.remote_id
                );
            }
        }
        let _ = writeln!(s, "    children {{");
        let _ = writeln!(s, "      {} {{", self.child);
        let _ = writeln!(s, "        local_ts = {}", self.local_ts.join(", "));
        let _ = writeln!(s, "        remote_ts = {}", self.remote_ts.join(", "));
        let _ = writeln!(
            s,
            "        esp_proposals = {}",
            self.esp_proposals.join(", ")
        );
        let _ = writeln!(s, "        start_action = {}", self.start_action.as_str());
        let _ = writeln!(s, "        dpd_action = {}", self.dpd_action.as_str());
        if let Some(t) = self.child_rekey_time {
            let _ = writeln!(s, "        rekey_time = {}s", t.as_secs());
        }
        let _ = writeln!(s, "      }}\n    }}\n  }}");
        s
    }

    /// The names of this side's and the peer's public key in `swanctl/pubkey/`.
    fn pubkey_files(&self) -> (String, String) {
        (
            format!("{}-local.pem", self.name),
            format!("{}-remote.pem", self.name),
        )
    }

    fn secret_section(&self) -> String {
        if self.pubkey.is_some() {
            // The private key is a file in swanctl/pkcs8/, not a secret of swanctl.conf.
            return String::new();
        }
        format!(
            "  ike-{} {{\n    id-1 = {}\n    id-2 = {}\n    secret = {}\n  }}\n",
            self.name,
            self.local_id,
            self.remote_id,
            self.psk.to_swanctl()
        )
    }
}

/// A complete swanctl.conf for `connections`.
pub fn swanctl_conf(connections: &[Connection]) -> String {
    let mut s = String::from("connections {\n");
    for c in connections {
        s.push_str(&c.connection_section());
    }
    s.push_str("}\nsecrets {\n");
    for c in connections {
        s.push_str(&c.secret_section());
    }
    s.push_str("}\n");
    s
}

/// Settings of one charon instance beyond the fixed ones.
#[derive(Clone, Debug, Default)]
pub struct CharonOptions {
    /// Extra `key = value` lines (or whole subsections) inside the `charon { }` section of
    /// strongswan.conf, e.g. `retransmit_tries = 2`.
    pub extra_charon_settings: String,
}

/// A charon daemon inside a lab node's network namespace. Dropping it kills charon and removes
/// its folder.
pub struct Charon {
    child: Option<Child>,
    ns: String,
    dir: PathBuf,
}

impl Charon {
    /// Starts charon on `node` and waits until its VICI socket answers.
    pub fn start(lab: &Lab, node: Node) -> anyhow::Result<Charon> {
        Self::start_with(lab, node, &CharonOptions::default())
    }

    /// Like [`Charon::start`], with extra strongswan.conf settings.
    pub fn start_with(lab: &Lab, node: Node, options: &CharonOptions) -> anyhow::Result<Charon> {
        Self::start_in_namespace(&lab.ns(node), options)
    }

    /// Starts charon in the network namespace named `ns` (one that the caller created).
    pub fn start_in_namespace(ns: &str, options: &CharonOptions) -> anyhow::Result<Charon> {
        let dir = std::env::temp_dir().join(format!("{ns}-charon"));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir_all(dir.join("run"))
            .with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        for sub in SWANCTL_DIRS {
            fs::create_dir_all(dir.join("swanctl").join(sub))?;
        }
        // Created here with mode 0600 because it will hold the CHILD_SA keys; charon appends.
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join("charon.log"))?;
        let mut charon = Charon {
            child: None,
            ns: ns.to_owned(),
            dir,
        };
        fs::write(charon.conf_path(), charon.strongswan_conf(options))?;

        let stdout = fs::File::create(charon.dir.join("charon.stdout"))?;
        let script = format!(
            "mount --bind '{}' /run && exec {CHARON_BIN}",
            charon.dir.join("run").display()
        );
        // `ip netns exec` enters the network namespace and a fresh mount namespace; the unshare
        // makes sure the bind mount stays private to charon whatever the propagation there.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "unshare", "--mount", "--propagation"])
            .args(["private", "sh", "-c", &script])
            .env("STRONGSWAN_CONF", charon.conf_path())
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stdout)
            .spawn()
            .with_context(|| format!("starting charon in {ns}"))?;
        charon.child = Some(child);
        charon.wait_ready()?;
        Ok(charon)
    }

    fn strongswan_conf(&self, options: &CharonOptions) -> String {
        format!(
            "charon {{\n\
             \x20 load_modular = no\n\
             \x20 load = {PLUGINS}\n\
             \x20 plugins {{\n\
             \x20   vici {{\n      socket = {uri}\n    }}\n\
             \x20 }}\n\
             \x20 filelog {{\n\
             \x20   lab {{\n\
             \x20     path = {log}\n\
             \x20     default = 1\n\
             \x20     ike = 2\n\
             \x20     chd = 4\n\
             \x20     time_format = %b %e %T\n\
             \x20     flush_line = yes\n\
             \x20   }}\n\
             \x20 }}\n\
             \x20 syslog {{\n    daemon {{\n      default = -1\n    }}\n  }}\n\
             {extra}\n\
             }}\n",
            uri = self.vici_uri(),
            log = self.log_path().display(),
            extra = options.extra_charon_settings,
        )
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "charon in {} exited during start-up ({status}):\n{}\n{}",
                    self.ns,
                    fs::read_to_string(self.dir.join("charon.stdout")).unwrap_or_default(),
                    self.log()
                );
            }
            if self.vici_socket().exists() && self.swanctl(&["--stats"]).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "charon in {} not answering on {} after {START_TIMEOUT:?}:\n{}",
                    self.ns,
                    self.vici_uri(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The network namespace charon runs in.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// charon's process id (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// This instance's folder (mode 0700).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The strongswan.conf this instance uses (also what `swanctl` gets as `STRONGSWAN_CONF`).
    pub fn conf_path(&self) -> PathBuf {
        self.dir.join("strongswan.conf")
    }

    /// The generated swanctl.conf (mode 0600; written by [`Charon::load`]).
    pub fn swanctl_conf_path(&self) -> PathBuf {
        self.dir.join("swanctl").join("swanctl.conf")
    }

    pub fn vici_socket(&self) -> PathBuf {
        self.dir.join("charon.vici")
    }

    /// `unix://...`, for `swanctl --uri`.
    pub fn vici_uri(&self) -> String {
        format!("unix://{}", self.vici_socket().display())
    }

    /// charon's log (mode 0600): IKE at level 2 and CHILD_SA keys (`chd = 4`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("charon.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `swanctl ARGS --uri <this instance>` (from the host: the VICI socket is a file) and
    /// returns its output; fails with the output if it exits non-zero.
    pub fn swanctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output = Command::new("swanctl")
            .args(args)
            .args(["--uri", &self.vici_uri()])
            .env("STRONGSWAN_CONF", self.conf_path())
            .output()
            .context("running swanctl")?;
        if !output.status.success() {
            bail!(
                "swanctl {} failed ({}): {}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output)
    }

    /// Writes swanctl.conf (mode 0600) for `connections`, copies the key files of public-key
    /// connections into the swanctl folders (private keys mode 0600), and loads it all
    /// (`swanctl --load-all`); connections loaded earlier and absent now are unloaded.
    pub fn load(&self, connections: &[Connection]) -> anyhow::Result<()> {
        let swanctl = self.swanctl_conf_path();
        let swanctl = swanctl.parent().context("swanctl folder")?;
        for c in connections {
            let Some(keys) = &c.pubkey else { continue };
            let (local, remote) = c.pubkey_files();
            let private = swanctl.join("pkcs8").join(format!("{}.pem", c.name));
            let _ = fs::remove_file(&private);
            let pem = fs::read(&keys.local.private_key)
                .with_context(|| format!("reading {}", keys.local.private_key.display()))?;
            fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&private)
                .and_then(|mut f| {
                    use std::io::Write as _;
                    f.write_all(&pem)
                })
                .with_context(|| format!("writing {}", private.display()))?;
            for (from, to) in [
                (&keys.local.public_key, local),
                (&keys.remote_public_key, remote),
            ] {
                fs::copy(from, swanctl.join("pubkey").join(&to))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
        let path = self.swanctl_conf_path();
        let _ = fs::remove_file(&path);
        fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| {
                use std::io::Write as _;
                f.write_all(swanctl_conf(connections).as_bytes())
            })
            .with_context(|| format!("writing {}", path.display()))?;
        let file = path.to_string_lossy().into_owned();
        self.swanctl(&["--load-all", "--noprompt", "--file", &file])?;
        Ok(())
    }

    /// Initiates CHILD_SA `child` (and its IKE_SA if needed) and waits for the result
    /// (`swanctl --initiate --child NAME`, at most 30 s).
    pub fn initiate(&self, child: &str) -> anyhow::Result<()> {
        self.swanctl(&["--initiate", "--child", child, "--timeout", "30"])
            .with_context(|| format!("initiating {child} in {}:\n{}", self.ns, self.log()))?;
        Ok(())
    }

    /// Deletes IKE_SA `ike` and its CHILD_SAs (`swanctl --terminate --ike NAME`).
    pub fn terminate_ike(&self, ike: &str) -> anyhow::Result<()> {
        self.swanctl(&["--terminate", "--ike", ike, "--timeout", "10"])?;
        Ok(())
    }

    /// The IKE_SAs and CHILD_SAs charon has now (`swanctl --list-sas --raw`).
    pub fn list_sas(&self) -> anyhow::Result<Vec<IkeSa>> {
        let output = self.swanctl(&["--list-sas", "--raw"])?;
        parse_list_sas(&String::from_utf8_lossy(&output.stdout))
    }

    /// The first CHILD_SA named `child` in state INSTALLED, if any.
    pub fn installed_child(&self, child: &str) -> anyhow::Result<Option<ChildSa>> {
        Ok(self
            .list_sas()?
            .into_iter()
            .flat_map(|ike| ike.children)
            .find(|c| c.name == child && c.state == "INSTALLED"))
    }

    /// The CHILD_SA keys charon logged (`chd = 4`), one entry per CHILD_SA in the order they
    /// were derived (rekeyed CHILD_SAs add entries).
    pub fn logged_child_keys(&self) -> Vec<LoggedChildKeys> {
        parse_logged_child_keys(&self.log())
    }

    /// Polls until CHILD_SA `child` is INSTALLED; fails with the log after `timeout`.
    pub fn wait_installed(&self, child: &str, timeout: Duration) -> anyhow::Result<ChildSa> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(sa) = self.installed_child(child)? {
                return Ok(sa);
            }
            if Instant::now() > deadline {
                bail!(
                    "CHILD_SA {child} not installed in {} after {timeout:?}:\n{}",
                    self.ns,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then SIGKILL after 5 s; removes the folder. Errors if charon had already died.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("charon already stopped")?;
        if let Some(status) = child.try_wait()? {
            bail!(
                "charon in {} had exited ({status}):\n{}",
                self.ns,
                self.log()
            );
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An IKE_SA from `swanctl --list-sas --raw`.
#[derive(Clone, Debug, Default)]
pub struct IkeSa {
    /// The connection name.
    pub name: String,
    /// ESTABLISHED, CONNECTING, ...
    pub state: String,
    pub children: Vec<ChildSa>,
    /// Every `key=value` of the IKE_SA (local-host, remote-port, initiator-spi, encr-alg, ...).
    pub fields: BTreeMap<String, String>,
}

/// A CHILD_SA from `swanctl --list-sas --raw`.
#[derive(Clone, Debug, Default)]
pub struct ChildSa {
    /// The CHILD_SA config name.
    pub name: String,
    /// INSTALLED, REKEYED, ...
    pub state: String,
    pub spi_in: u32,
    pub spi_out: u32,
    /// UDP encapsulation (always true with kernel-libipsec).
    pub encap: bool,
    pub bytes_in: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub packets_out: u64,
    /// Every `key=value` of the CHILD_SA (encr-alg, local-ts, rekey-time, ...).
    pub fields: BTreeMap<String, String>,
}

/// A node of swanctl's raw (VICI message) dump: `key=value`, `key=[a b]` and `name {...}`.
#[derive(Debug, Default)]
struct RawSection {
    values: BTreeMap<String, String>,
    sections: Vec<(String, RawSection)>,
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_list = false;
    for ch in text.chars() {
        match ch {
            '[' => {
                in_list = true;
                current.push(ch);
            }
            ']' => {
                in_list = false;
                current.push(ch);
            }
            '{' | '}' if !in_list => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                tokens.push(ch.to_string());
            }
            c if c.is_whitespace() && !in_list => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn parse_section(tokens: &[String], pos: &mut usize) -> RawSection {
    let mut section = RawSection::default();
    let mut last_key: Option<String> = None;
    while *pos < tokens.len() {
        let token = &tokens[*pos];
        *pos += 1;
        if token == "}" {
            break;
        }
        if tokens.get(*pos).is_some_and(|t| t == "{") {
            *pos += 1;
            let sub = parse_section(tokens, pos);
            section.sections.push((token.clone(), sub));
            last_key = None;
        } else if let Some((key, value)) = token.split_once('=') {
            section.values.insert(key.to_owned(), value.to_owned());
            last_key = Some(key.to_owned());
        } else if let Some(key) = &last_key {
            // A value with spaces (an identity such as "C=CH, O=..." would be split).
            if let Some(v) = section.values.get_mut(key) {
                v.push(' ');
                v.push_str(token);
            }
        }
    }
    section
}

fn hex_u32(s: Option<&String>) -> u32 {
    s.and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap_or_default()
}

fn num(s: Option<&String>) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// Parses the output of `swanctl --list-sas --raw`: one `list-sa event {NAME {...}}` per IKE_SA.
pub fn parse_list_sas(text: &str) -> anyhow::Result<Vec<IkeSa>> {
    let tokens = tokenize(text);
    let mut pos = 0;
    let root = parse_section(&tokens, &mut pos);
    let mut sas = Vec::new();
    for (event, body) in &root.sections {
        if !event.ends_with("event") {
            continue;
        }
        for (name, ike) in &body.sections {
            let mut children = Vec::new();
            for (label, list) in &ike.sections {
                if label != "child-sas" {
                    continue;
                }
                for (_, child) in &list.sections {
                    let v = &child.values;
                    children.push(ChildSa {
                        name: v.get("name").cloned().unwrap_or_default(),
                        state: v.get("state").cloned().unwrap_or_default(),
                        spi_in: hex_u32(v.get("spi-in")),
                        spi_out: hex_u32(v.get("spi-out")),
                        encap: v.get("encap").is_some_and(|e| e == "yes"),
                        bytes_in: num(v.get("bytes-in")),
                        packets_in: num(v.get("packets-in")),
                        bytes_out: num(v.get("bytes-out")),
                        packets_out: num(v.get("packets-out")),
                        fields: v.clone(),
                    });
                }
            }
            sas.push(IkeSa {
                name: name.clone(),
                state: ike.values.get("state").cloned().unwrap_or_default(),
                children,
                fields: ike.values.clone(),
            });
        }
    }
    Ok(sas)
}

/// CHILD_SA keying material as charon logs it at `chd = 4` (initiator = the IKE initiator of the
/// exchange that created the CHILD_SA). For AES-GCM the encryption keys include the 4-byte salt;
/// the integrity keys are empty for AEAD algorithms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoggedChildKeys {
    pub encryption_initiator: Vec<u8>,
    pub encryption_responder: Vec<u8>,
    pub integrity_initiator: Vec<u8>,
    pub integrity_responder: Vec<u8>,
}

/// Parses the `encryption initiator key => 36 bytes @ 0x...` blocks (and the integrity ones) of a
/// charon log: each followed by hex-dump lines `   0: AE 5D ... ascii`.
pub fn parse_logged_child_keys(log: &str) -> Vec<LoggedChildKeys> {
    let mut result: Vec<LoggedChildKeys> = Vec::new();
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        let Some(pos) = line.find(" key => ") else {
            continue;
        };
        let label = line[..pos].rsplit(']').next().unwrap_or_default().trim();
        let len: usize = line[pos + 8..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut key = Vec::with_capacity(len);
        while key.len() < len {
            let Some(dump) = lines.next() else { break };
            // "...[CHD]    0: AE 5D 91 ...  ascii": 16 bytes a line, fewer on the last.
            let Some((_, hex)) = dump.split_once(": ") else {
                break;
            };
            let take = (len - key.len()).min(16);
            key.extend(
                hex.split_whitespace()
                    .take(take)
                    .filter_map(|b| u8::from_str_radix(b, 16).ok()),
            );
        }
        // A new CHILD_SA starts with its encryption initiator key.
        if label == "encryption initiator" || result.is_empty() {
            result.push(LoggedChildKeys::default());
        }
        let entry = result.last_mut().expect("pushed above");
        match label {
            "encryption initiator" => entry.encryption_initiator = key,
            "encryption responder" => entry.encryption_responder = key,
            "integrity initiator" => entry.integrity_initiator = key,
            "integrity responder" => entry.integrity_responder = key,
            _ => {}
        }
    }
    result
        .into_iter()
        .filter(|k| !k.encryption_initiator.is_empty())
        .collect()
}

/// Whether a charon process runs in network namespace `ns` (to check that one is gone).
pub fn charon_running_in(ns: &str) -> anyhow::Result<bool> {
    let output = netns::ip(&["netns", "pids", ns])?;
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "charon") {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "list-sa event {lab {uniqueid=1 version=2 state=ESTABLISHED \
        local-host=198.51.100.1 local-port=4500 local-id=198.51.100.1 remote-host=198.51.100.2 \
        remote-port=4500 remote-id=198.51.100.2 initiator=yes initiator-spi=6bd18bddb6754c64 \
        responder-spi=898045fcae14f54f nat-remote=yes nat-any=yes encr-alg=AES_GCM_16 \
        encr-keysize=256 prf-alg=PRF_HMAC_SHA2_256 dh-group=MODP_2048 established=9 \
        rekey-time=14370 child-sas {net-2 {name=net uniqueid=2 reqid=1 state=INSTALLED \
        mode=TUNNEL protocol=ESP encap=yes spi-in=167c4b71 spi-out=fadbaa17 encr-alg=AES_GCM_16 \
        encr-keysize=256 bytes-in=252 packets-in=3 use-in=0 bytes-out=252 packets-out=3 \
        use-out=0 rekey-time=3243 life-time=3959 install-time=1 local-ts=[10.1.0.0/24] \
        remote-ts=[10.2.0.0/24 10.3.0.0/24]}}}}\nlist-sas reply {}\n";

    #[test]
    fn parses_list_sas_raw() {
        let sas = parse_list_sas(SAMPLE).unwrap();
        assert_eq!(sas.len(), 1);
        let ike = &sas[0];
        assert_eq!(ike.name, "lab");
        assert_eq!(ike.state, "ESTABLISHED");
        assert_eq!(ike.fields["remote-port"], "4500");
        assert_eq!(ike.children.len(), 1);
        let child = &ike.children[0];
        assert_eq!(child.name, "net");
        assert_eq!(child.state, "INSTALLED");
        assert_eq!(child.spi_in, 0x167c_4b71);
        assert_eq!(child.spi_out, 0xfadb_aa17);
        assert!(child.encap);
        assert_eq!((child.packets_in, child.bytes_out), (3, 252));
        assert_eq!(child.fields["remote-ts"], "[10.2.0.0/24 10.3.0.0/24]");
    }

    #[test]
    fn parses_logged_child_keys() {
        let log = "Nov 26 07:19:18 08[CHD] seed => 64 bytes @ 0x7f69817b5940
Nov 26 07:19:18 08[CHD]    0: 99 2E E7 DC 59 26 CE 7C D2 C1 6B B3 FC D9 EA 4A  ....Y&.|..k....J
Nov 26 07:19:18 08[CHD] encryption initiator key => 20 bytes @ 0x7f695000b290
Nov 26 07:19:18 08[CHD]    0: AE 5D 91 C2 98 68 81 F0 56 70 D5 DB 17 C9 DA 18  .]...h..Vp......
Nov 26 07:19:18 08[CHD]   16: 86 3D 45 51                                      .=EQ
Nov 26 07:19:18 08[CHD] encryption responder key => 4 bytes @ 0x7f695000b2c0
Nov 26 07:19:18 08[CHD]    0: BF 99 E5 0B                                      AB C
Nov 26 07:19:18 08[CHD] adding inbound ESP SA
";
        let keys = parse_logged_child_keys(log);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].encryption_initiator.len(), 20);
        assert_eq!(&keys[0].encryption_initiator[..2], &[0xae, 0x5d]);
        assert_eq!(
            &keys[0].encryption_initiator[16..],
            &[0x86, 0x3d, 0x45, 0x51]
        );
        assert_eq!(keys[0].encryption_responder, vec![0xbf, 0x99, 0xe5, 0x0b]);
        assert!(keys[0].integrity_initiator.is_empty());
    }

    #[test]
    fn no_sas_parses_to_nothing() {
        assert!(parse_list_sas("list-sas reply {}\n").unwrap().is_empty());
    }

    #[test]
    fn swanctl_conf_with_raw_public_keys() {
        let (_, mut b) = Connection::lab_pair(&Psk(vec![0xab; 4]));
        b.pubkey = Some(PubkeyAuth {
            local: KeyFiles {
                private_key: "/k/b.key".into(),
                public_key: "/k/b.pub".into(),
            },
            remote_public_key: "/k/a.pub".into(),
        });
        let conf = swanctl_conf(&[b]);
        for needle in [
            "auth = pubkey\n      id = 198.51.100.2\n      pubkeys = lab-local.pem",
            "auth = pubkey\n      id = 198.51.100.1\n      pubkeys = lab-remote.pem",
        ] {
            assert!(conf.contains(needle), "{needle} missing in\n{conf}");
        }
        assert!(!conf.contains("auth = psk"), "{conf}");
        assert!(!conf.contains("0xabababab"), "{conf}");
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }

    #[test]
    fn swanctl_conf_has_the_settings() {
        let psk = Psk(vec![0xab; 4]);
        let (mut a, _) = Connection::lab_pair(&psk);
        a.dpd_delay = Some(Duration::from_secs(10));
        a.start_action = StartAction::Trap;
        let conf = swanctl_conf(&[a]);
        for needle in [
            "local_addrs = 198.51.100.1",
            "remote_addrs = 198.51.100.2",
            "proposals = aes256gcm16-prfsha256-modp2048",
            "esp_proposals = aes256gcm16",
            "mobike = no",
            "encap = no",
            "dpd_delay = 10s",
            "start_action = trap",
            "local_ts = 10.1.0.0/24",
            "remote_ts = 10.2.0.0/24",
            "secret = 0xabababab",
            "id-2 = 198.51.100.2",
        ] {
            assert!(conf.contains(needle), "{needle} missing in\n{conf}");
        }
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }
}
