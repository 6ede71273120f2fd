//! `[apps.X.introspection]` and `[apps.X.audiences]` in a whole config: the key each mistake
//! is named by, and the defaults.

use super::*;

fn with(extra: &str) -> Result<Config, ConfigError> {
    load(&format!("{MINIMAL}\n{extra}"))
}

fn refusal(extra: &str) -> String {
    match with(extra) {
        Ok(_) => panic!("accepted: {extra}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn introspection_defaults_and_mistakes() {
    let c = with("[apps.web.introspection]\nprovider = \"dev\"\n").unwrap();
    let i = c.apps["web"].introspection.clone().unwrap();
    assert_eq!(i.cache_ttl, std::time::Duration::from_secs(60));
    assert_eq!(i.cache_entries, 10_000);
    assert_eq!(i.max_in_flight, 32);
    assert!(i.machines.is_empty() && i.audience.is_none() && i.client_ids.is_none());
    assert!(c.apps["web"].audiences.is_empty());

    let e = refusal("[apps.web.introspection]\nprovider = \"nope\"\n");
    assert!(
        e.contains("apps.web.introspection.provider") && e.contains("`nope`"),
        "{e}"
    );
    let e = refusal("[apps.web.introspection]\nprovider = \"dev\"\ncache_ttl = \"2h\"\n");
    assert!(e.contains("apps.web.introspection.cache_ttl"), "{e}");
    let e = refusal("[apps.web.introspection]\nprovider = \"dev\"\ncache_entries = 0\n");
    assert!(e.contains("apps.web.introspection.cache_entries"), "{e}");
    for bad in ["0", "1025"] {
        let e = refusal(&format!(
            "[apps.web.introspection]\nprovider = \"dev\"\nmax_in_flight = {bad}\n"
        ));
        assert!(e.contains("apps.web.introspection.max_in_flight"), "{e}");
    }
    let c = with("[apps.web.introspection]\nprovider = \"dev\"\nmax_in_flight = 1024\n").unwrap();
    assert_eq!(
        c.apps["web"].introspection.as_ref().unwrap().max_in_flight,
        1024
    );
    let e = refusal(
        "[apps.web.introspection]\nprovider = \"dev\"\n[apps.web.introspection.machines.job]\nuser_id = \"\"\n",
    );
    assert!(
        e.contains("apps.web.introspection.machines.job.user_id"),
        "{e}"
    );
    let e = refusal(
        "[apps.web.providers.gh]\ntype = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
         [apps.web.introspection]\nprovider = \"gh\"\n",
    );
    assert!(e.contains("plain OAuth2"), "{e}");
}

#[test]
fn audiences_in_a_whole_config() {
    let c = with("[apps.web.audiences.orders]\nclaims = [\"sub\", \"email\"]\n").unwrap();
    let a = &c.apps["web"].audiences["orders"];
    assert_eq!(a.claims, ["sub", "email"]);
    assert_eq!(a.lifetime, std::time::Duration::from_secs(300));
    let e = refusal("[apps.web.audiences.orders]\nlifetime = \"10m\"\n");
    assert!(e.contains("apps.web.audiences.orders.lifetime"), "{e}");
}
