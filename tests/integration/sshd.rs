//! A real OpenSSH server on loopback for the tunnel tests: its own host key, a user key, a
//! `HOME` whose `.profile` puts pm2-port and the test PM2 on `PATH` (as an nvm install would), and
//! the sandbox's `PM2_HOME` for every session.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

pub struct SshServer {
    child: Child,
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
    pub fn start(sb: &Sandbox) -> SshServer {
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

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let sshd_config = dir.join("sshd_config");
        fs::write(
            &sshd_config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
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
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(&sshd_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        wait_for(10, "sshd to listen", || {
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
                .ok()
        });
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let config = dir.join("ssh_config");
        fs::write(
            &config,
            format!(
                "Host testhost\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {d}/id\n\
                 IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n",
                d = dir.display()
            ),
        )
        .unwrap();
        SshServer { child, dir, config }
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

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
