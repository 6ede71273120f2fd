//! `[server]`: where idgate listens, whom it believes, who may administer it, and how many
//! connections it serves at once. Validated here from the raw section; `server.default_app`
//! is settled by the caller once the apps are known.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::raw::RawServer;
use super::{duration, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
pub struct ServerConfig {
    pub listen: Vec<ListenAddr>,
    pub trusted_peers: Vec<IpNet>,
    /// The app anonymous browsers are sent to (the only one, or `server.default_app`).
    pub default_app: Option<String>,
    pub shutdown_grace: Duration,
    /// Mode and group of the unix sockets.
    pub socket: SocketPerms,
    /// Peers allowed the administrative endpoints without a token (`server.admin_peers`).
    pub admin_peers: Vec<IpNet>,
    /// The administrative endpoints' bearer token (`server.admin_token_file`).
    pub admin_token: Option<crate::crypto::Secret>,
    /// Connections served at once (`server.max_connections`).
    pub max_connections: usize,
    /// The time a connection has to send each request's head, from its accept and from each
    /// answer (`server.header_timeout`); then it is closed.
    pub header_timeout: Duration,
}

/// Permissions given to a unix socket once bound, so that Nginx's user can connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPerms {
    pub mode: u32,
    /// `None`: the process's group.
    pub gid: Option<u32>,
}

impl Default for SocketPerms {
    fn default() -> Self {
        Self {
            mode: 0o660,
            gid: None,
        }
    }
}

/// `server.socket_mode` / `server.socket_group`: an octal mode without bits beyond 0777 and a
/// group that exists (a name from `group_file`, i.e. `/etc/group`, or a number).
pub(super) fn socket_perms(
    mode: Option<&str>,
    group: Option<&str>,
    group_file: &str,
) -> Result<SocketPerms, ConfigError> {
    let mode = match mode {
        None => 0o660,
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "server.socket_mode",
                    format!("`{m}` is not an octal mode such as \"0660\""),
                )
            })?,
    };
    let gid = match group {
        None => None,
        Some(g) => Some(
            g.parse::<u32>()
                .ok()
                .or_else(|| {
                    group_file.lines().find_map(|line| {
                        let mut fields = line.split(':');
                        let name = fields.next()?;
                        (name == g).then(|| fields.nth(1)?.parse().ok())?
                    })
                })
                .ok_or_else(|| {
                    ConfigError::invalid("server.socket_group", format!("no group named `{g}`"))
                })?,
        ),
    };
    Ok(SocketPerms { mode, gid })
}

/// The `[server]` section, checked; `default_app` is left for the caller.
pub(super) fn validate(
    raw: &RawServer,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ServerConfig, ConfigError> {
    let listen = raw
        .listen
        .iter()
        .map(|l| parse_listen(l))
        .collect::<Result<Vec<_>, _>>()?;
    if listen.is_empty() {
        return Err(ConfigError::invalid(
            "server.listen",
            "needs at least one address",
        ));
    }
    let trusted_peers = match &raw.trusted_peers {
        None => vec![ipnet_or_default("127.0.0.0/8"), ipnet_or_default("::1/128")],
        Some(list) => list
            .iter()
            .map(|s| parse_net(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ConfigError::invalid("server.trusted_peers", m))?,
    };
    let shutdown_grace = duration("server.shutdown_grace", raw.shutdown_grace.clone(), "10s")?;
    let admin_peers = raw
        .admin_peers
        .iter()
        .flatten()
        .map(|s| parse_net(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| ConfigError::invalid("server.admin_peers", m))?;
    let admin_token = match &raw.admin_token_file {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(resolve(p))
                .map_err(|e| ConfigError::invalid("server.admin_token_file", e.to_string()))?;
            let token = text.trim();
            if token.len() < 32 {
                return Err(ConfigError::invalid(
                    "server.admin_token_file",
                    "the token must be at least 32 characters (e.g. `idgate keygen \
                     --algorithm HS256` output, or 32 random bytes in base64)",
                ));
            }
            Some(crate::crypto::Secret::new(token))
        }
    };
    let max_connections = match raw.max_connections {
        Some(0) => {
            return Err(ConfigError::invalid(
                "server.max_connections",
                "must be at least 1",
            ))
        }
        Some(n) => n,
        None => 4096,
    };
    let header_timeout = duration("server.header_timeout", raw.header_timeout.clone(), "30s")?;
    let socket = socket_perms(
        raw.socket_mode.as_deref(),
        raw.socket_group.as_deref(),
        &std::fs::read_to_string("/etc/group").unwrap_or_default(),
    )?;
    Ok(ServerConfig {
        listen,
        trusted_peers,
        default_app: None,
        shutdown_grace,
        socket,
        admin_peers,
        admin_token,
        max_connections,
        header_timeout,
    })
}

fn parse_listen(s: &str) -> Result<ListenAddr, ConfigError> {
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ConfigError::invalid(
                "server.listen",
                "`unix:` needs a socket path",
            ));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
        ConfigError::invalid(
            "server.listen",
            format!("`{s}` is neither `IP:PORT` nor `unix:/path`"),
        )
    })
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR such as 10.0.0.0/8"))
}

fn ipnet_or_default(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|_| IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_mode_and_group() {
        let groups = "root:x:0:\nwww-data:x:33:\nidgate:x:998:\n";
        assert_eq!(
            socket_perms(None, None, groups).unwrap(),
            SocketPerms::default()
        );
        let p = socket_perms(Some("0666"), Some("www-data"), groups).unwrap();
        assert_eq!((p.mode, p.gid), (0o666, Some(33)));
        assert_eq!(
            socket_perms(Some("660"), Some("42"), groups).unwrap().gid,
            Some(42)
        );
        for (mode, group, key) in [
            (Some("0999"), None, "server.socket_mode"),
            (Some("01777"), None, "server.socket_mode"),
            (None, Some("nginx"), "server.socket_group"),
        ] {
            match socket_perms(mode, group, groups) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{other:?}"),
            }
        }
    }
}
