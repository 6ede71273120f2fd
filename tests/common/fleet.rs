//! Scaled-out deployments for the process-level tests: one IdP, several idgate processes on one
//! config (each on a fixed loopback port, so it can be stopped and started again where Nginx
//! expects it), and one Nginx whose `upstream idgate` lists them all.

use std::time::Duration;

use super::{
    config_toml, free_port, last_lines, wait_for, Browser, Idgate, Idp, Nginx, Setup, Stack,
};

/// IdP + `n` idgate instances + Nginx. `stack.idgate` is the first instance, `others` the rest.
pub struct Fleet {
    pub stack: Stack,
    pub others: Vec<Idgate>,
}

impl Fleet {
    /// Starts `n` instances of `setup`'s config behind one Nginx.
    pub fn start(setup: Setup, n: usize) -> Self {
        Self::start_with_files(setup, n, &[])
    }

    /// Like [`Fleet::start`], with `files` (name, content) written next to every instance's
    /// config (e.g. a rule file the config names).
    pub fn start_with_files(setup: Setup, n: usize, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let port = free_port();
        let site = format!("http://127.0.0.1:{port}");
        let idp = Idp::start(&[format!("{site}/web-login/oauth/callback")], &[]);
        let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
        let mut instances: Vec<Idgate> = (0..n)
            .map(|i| {
                let d = dir.path().join(format!("i{i}"));
                std::fs::create_dir_all(&d).unwrap();
                for f in std::fs::read_dir(dir.path()).unwrap() {
                    let f = f.unwrap();
                    if f.file_type().unwrap().is_file() {
                        std::fs::copy(f.path(), d.join(f.file_name())).unwrap();
                    }
                }
                let listen = format!("listen = [\"127.0.0.1:{}\"]", free_port());
                Idgate::start(&d, &config.replace("listen = [\"127.0.0.1:0\"]", &listen))
            })
            .collect();
        let addrs: Vec<_> = instances.iter().map(|i| i.addr).collect();
        let nginx = Nginx::start_multi(&dir.path().join("nginx"), port, &addrs);
        let first = instances.remove(0);
        Self {
            stack: Stack {
                dir,
                nginx,
                idgate: first,
                idp,
            },
            others: instances,
        }
    }

    pub fn site(&self) -> String {
        self.stack.site()
    }

    /// The tail of Nginx's error log (for a failed test's message).
    pub fn nginx_errors(&self) -> String {
        let log = std::fs::read_to_string(self.stack.nginx.prefix.join("logs/error.log"))
            .unwrap_or_default();
        format!("nginx error.log (last 30 lines):\n{}", last_lines(&log, 30))
    }

    /// Every instance, the first one first.
    pub fn all(&self) -> Vec<&Idgate> {
        std::iter::once(&self.stack.idgate)
            .chain(self.others.iter())
            .collect()
    }

    /// Instance `i` (0 is `stack.idgate`).
    pub fn instance_mut(&mut self, i: usize) -> &mut Idgate {
        match i {
            0 => &mut self.stack.idgate,
            _ => &mut self.others[i - 1],
        }
    }

    /// Logs `user` in through Nginx; returns the browser, holding the session's cookies.
    pub async fn login(&self, user: &str) -> Browser {
        let browser = Browser::new();
        let resp = super::login(&self.stack, &browser, "/", user).await;
        assert_eq!(resp.status(), 200, "login of {user}");
        browser
    }

    /// The `Cookie` header a logged-in `browser` sends to the site.
    pub fn cookie_header(&self, browser: &Browser) -> String {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&self.site()).unwrap();
        browser
            .jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

impl Idgate {
    /// Stops the process as systemd does (SIGTERM), waits for it to exit, and starts it again
    /// with the same config on the same address.
    pub fn restart(&mut self) {
        let status = self.proc.terminate();
        assert!(
            status.is_some_and(|s| s.success()),
            "idgate exits 0 on SIGTERM: {status:?}\n{}",
            self.proc.log_tail()
        );
        let dir = self.config.parent().unwrap().to_owned();
        let config = std::fs::read_to_string(&self.config).unwrap();
        let again = Idgate::start(&dir, &config);
        assert_eq!(
            again.addr, self.addr,
            "started again where Nginx expects it"
        );
        *self = again;
    }

    /// Sends SIGHUP and waits for the log line saying the new configuration serves.
    pub fn reload(&self) {
        let before = self.reloads();
        self.proc.signal("HUP");
        wait_for("idgate to reload", Duration::from_secs(30), || {
            (self.reloads() > before).then_some(())
        });
    }

    fn reloads(&self) -> usize {
        self.proc
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("configuration reloaded"))
            .count()
    }
}
