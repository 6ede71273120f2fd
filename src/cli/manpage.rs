//! `idgate manpage` (hidden): the man page the package installs as `idgate(1)`, generated from
//! the clap definitions, so that a command or an option is described once, where it is defined,
//! and the page cannot fall behind the binary. The sections clap knows nothing of (signals, exit
//! status, environment, files) are written here, next to the exit codes they describe.

use std::io::Write;

use clap::CommandFactory;

use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};

/// What the page says under DESCRIPTION.
const DESCRIPTION: &str = "idgate answers Nginx auth_request subrequests with 200, 401 or 403 \
and identity headers, runs the OpenID Connect or OAuth2 login with the configured identity \
providers, merges their users with the project's own users and groups, and issues its own \
signed session tokens.\n\n\
The configuration file (--config, default /etc/idgate/idgate.toml) is TOML; every key is \
described in the commented example the package installs there. Unknown keys are an error.";

/// Writes the whole page (roff) to `out`.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command().long_about(DESCRIPTION);
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("idgate {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    out.write_all(b".SH COMMANDS\n")?;
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        commands(out, "", sub)?;
    }
    out.write_all(fixed_sections().as_bytes())
}

/// One `.TP` entry per command (`users set-groups`, …), with its arguments and its help.
fn commands(out: &mut dyn Write, parent: &str, cmd: &clap::Command) -> std::io::Result<()> {
    let name = format!("{parent}{}", cmd.get_name());
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            commands(out, &format!("{name} "), sub)?;
        }
        return Ok(());
    }
    let mut usage = format!(".TP\n.B {}", escape(&name));
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
    {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        let takes_value = arg.get_action().takes_values();
        let shown = match (arg.get_long(), takes_value) {
            (Some(long), true) => format!("\\-\\-{} \\fI{}\\fR", escape(long), escape(&value)),
            (Some(long), false) => format!("\\-\\-{}", escape(long)),
            (None, _) => format!("\\fI{}\\fR", escape(&value)),
        };
        let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let shown = if many { format!("{shown}...") } else { shown };
        if arg.is_required_set() {
            usage.push_str(&format!(" {shown}"));
        } else {
            usage.push_str(&format!(" [{shown}]"));
        }
    }
    usage.push('\n');
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    usage.push_str(&escape(&about));
    usage.push('\n');
    out.write_all(usage.as_bytes())
}

/// Text safe in roff: backslashes and hyphens escaped, no line starting with a control character.
fn escape(text: &str) -> String {
    let body = text.replace('\\', "\\\\").replace('-', "\\-");
    body.lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// SIGNALS, EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO.
fn fixed_sections() -> String {
    format!(
        r#".SH SIGNALS
.TP
.B SIGTERM
Stop accepting connections and let requests in flight finish for
.B [server] shutdown_grace
(default 10s), then exit 0.
.TP
.B SIGINT
Stop at once, without waiting for open requests.
.TP
.B SIGHUP
Reload the configuration, the keys and the rule files: a complete new state is built and swapped
in at once; a configuration that does not validate is refused with a log line and the previous
one keeps serving. Listen addresses need a restart.
.SH EXIT STATUS
0 success; {EXIT_RUNTIME} runtime failure; 2 usage error; {EXIT_CONFIG} bad configuration (EX_CONFIG;
systemd does not restart the service on it).
.SH ENVIRONMENT
.TP
.B RUST_LOG
Overrides
.BR "[log] level" ,
e.g.
.IR info,idgate=debug .
.TP
.B REDIS_HOSTS\fR, \fBUSERS_CRUD_BASE_URL\fR, \fBMIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH\fR, ...
With
.BR mia_config ,
the variables of the services idgate replaces, under the same names; see migrating.md.
.SH FILES
.TP
.I /etc/idgate/idgate.toml
The configuration (root:idgate, 0640).
.TP
.I /etc/idgate/signing.pem
The signing key the package generates when none exists.
.TP
.I /var/lib/idgate/
The embedded store (sessions and users).
.TP
.I /etc/nginx/snippets/idgate/
The Nginx snippets to include.
.TP
.I /usr/share/doc/idgate/
The README, operations.md (install, upgrade, key rotation, metrics, troubleshooting),
migrating.md and security.md.
.SH SEE ALSO
.BR nginx (8),
.BR systemctl (1),
.BR systemd.exec (5)
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        let mut out = Vec::new();
        render(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_visible_command_and_its_options_are_on_the_page() {
        let page = page();
        for command in [
            "serve",
            "check\\-config",
            "keygen [\\-\\-algorithm \\fIALGORITHM\\fR] [\\-\\-out \\fIOUT\\fR] [\\-\\-public\\-jwk \\fIKEY_FILE\\fR]",
            "nginx\\-headers",
            "users set\\-groups \\fIUSER_ID\\fR [\\fIGROUPS\\fR...]",
            "users doctor [\\-\\-merge]",
            "sessions revoke",
            "sessions mint \\-\\-user \\fIUSER\\fR",
        ] {
            assert!(
                page.contains(&format!(".B {command}")),
                "{command}:\n{page}"
            );
        }
        assert!(page.contains("\\-\\-config"), "{page}");
        assert!(!page.contains("completions"), "hidden commands stay hidden");
        assert!(!page.contains(".B manpage"), "hidden commands stay hidden");
        assert!(page.contains(".SH SIGNALS") && page.contains("Reload the configuration"));
    }

    #[test]
    fn no_line_of_text_is_taken_for_a_roff_request() {
        for line in page().lines() {
            if let Some(rest) = line.strip_prefix('.') {
                let request = rest.split_whitespace().next().unwrap_or("");
                assert!(
                    [
                        "TH", "SH", "TP", "B", "BR", "I", "IR", "RB", "PP", "br", "ie", "el", "RS",
                        "RE", "IP", "SS", "nf", "fi", "in", "LP", "HP", "TQ"
                    ]
                    .contains(&request),
                    "a text line read as the request `.{request}`: {line}"
                );
            }
        }
    }
}
