//! A real OpenSSH server for the tunnel tests, in inetd mode inside a server's network namespace
//! (tests/integration/netns.rs): the client's `ProxyCommand` runs `sshd -i` there, one per
//! connection, so no TCP listener is needed. Its own host key, a user key, a `HOME` whose
//! `.profile` puts pm2-port and the test PM2 on `PATH` (as an nvm install would), and the
//! sandbox's `PM2_HOME` for every session.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::netns::Netns;
use crate::support::*;

pub struct SshServer {
    pub dir: PathBuf,
    /// An ssh client configuration naming the server `testhost`.
    pub config: PathBuf,
}

fn keygen(path: &std::path::Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

impl SshServer {
    /// The server of `sb`, reached in `ns`.
    pub fn in_netns(sb: &Sandbox, ns: &Netns) -> SshServer {
        let sshd = PathBuf::from("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "OpenSSH's server is not installed: `apt-get install openssh-server` (bash tests/run.sh does)"
        );
        let dir = sb.root.path().join("ssh");
        let home = dir.join("home");
        let bin = dir.join("bin");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("pm2-port")).unwrap();
        std::os::unix::fs::symlink(pm2_bin(), bin.join("pm2")).unwrap();
        fs::write(
            home.join(".profile"),
            format!("export PATH=\"{}:$PATH\"\n", bin.display()),
        )
        .unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("id"));
        keygen(&dir.join("other_id"));
        fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        // Privilege separation needs this directory, which only the service's start creates.
        fs::create_dir_all("/run/sshd").unwrap();

        let sshd_config = dir.join("sshd_config");
        fs::write(
            &sshd_config,
            format!(
                "HostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\n\
                 SetEnv HOME={home} PM2_HOME={pm2} PM2_PORT_STATE_DIR={state}\n",
                d = dir.display(),
                home = home.display(),
                pm2 = sb.home.display(),
                state = sb.state.display(),
            ),
        )
        .unwrap();
        // Its log goes to a file (`-E`): on stderr it would reach the tunnel's.
        let proxy = ns.proxy_command(&format!(
            "{} -i -f {} -E {}",
            sshd.display(),
            sshd_config.display(),
            dir.join("sshd.log").display()
        ));
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let config = dir.join("ssh_config");
        fs::write(
            &config,
            format!(
                "Host testhost\n  HostName 127.0.0.1\n  ProxyCommand {proxy}\n  User {user}\n  IdentityFile {d}/id\n\
                 IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n",
                d = dir.display()
            ),
        )
        .unwrap();
        SshServer { dir, config }
    }
}

impl SshServer {
    /// The `HOME` of the server's sessions.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// Put `script` on the sessions' `PATH` as `pm2-port` in place of the real one (atomically,
    /// so a list running meanwhile sees one or the other). For fault injection.
    pub fn fake_pm2_port(&self, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.dir.join("bin");
        let tmp = bin.join("pm2-port.new");
        fs::write(&tmp, script).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, bin.join("pm2-port")).unwrap();
    }
}
