//! Every string a page shows, in every language idgate speaks, and the choice of language.
//!
//! Templates never hold text of their own: they show `t.<key>` from the catalogue of the
//! page's [`Lang`]. A string may name `{app}` (the app's title), which the template replaces.
//! The language is the first of the browser's `Accept-Language` that idgate speaks, else the
//! app's default, else English.

use std::collections::BTreeMap;

/// A language of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    It,
}

/// Longest `Accept-Language` header read; past it the header is ignored (browsers send a few
/// dozen bytes).
const MAX_ACCEPT_LANGUAGE: usize = 512;

impl Lang {
    /// Every language, in the order they are listed.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::It];

    /// The BCP 47 tag (`lang` of the page).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    /// `en`, `it` (any case, with or without a region), else none.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        Self::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.tag()))
    }

    /// The language of a page for a request with `headers`: the browser's first choice that
    /// idgate speaks (by `q`), else `default`.
    pub fn choose(headers: &http::HeaderMap, default: Lang) -> Lang {
        headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_ACCEPT_LANGUAGE)
            .and_then(|v| {
                accept_language::parse(v)
                    .iter()
                    .find_map(|tag| Lang::parse(tag))
            })
            .unwrap_or(default)
    }

    /// This language's strings, by key.
    pub fn strings(self) -> BTreeMap<&'static str, &'static str> {
        let table = match self {
            Lang::En => EN,
            Lang::It => IT,
        };
        table.iter().copied().collect()
    }
}

/// English.
const EN: &[(&str, &str)] = &[
    ("skip_to_content", "Skip to content"),
    ("chooser_title", "Sign in"),
    ("chooser_heading", "Sign in to {app}"),
    ("chooser_intro", "Choose how you want to sign in."),
    ("chooser_with", "Continue with"),
    (
        "chooser_none",
        "No sign-in method is set up for this site yet.",
    ),
    ("callback_title", "Signing you in"),
    ("callback_heading", "Signing you in…"),
    ("callback_wait", "This takes a moment."),
    (
        "callback_nojs",
        "Your browser does not run scripts: continue with the button.",
    ),
    ("callback_continue", "Continue"),
    ("callback_failed", "Sign-in could not be completed"),
    (
        "callback_failed_text",
        "The sign-in link is no longer valid, or it was already used.",
    ),
    ("start_again", "Start again"),
    ("what_to_do", "What you can do"),
    ("signed_out_title", "Signed out"),
    ("signed_out_heading", "You are signed out"),
    ("signed_out_text", "Your session has ended on this device."),
    ("sign_in_again", "Sign in again"),
    ("error_title", "Something went wrong"),
    ("error_code", "Error code"),
    ("error_bad_request", "This link is not valid"),
    (
        "error_bad_request_text",
        "The address that brought you here is incomplete or not allowed.",
    ),
    (
        "error_bad_request_todo",
        "Go back to the site and start again from its sign-in button.",
    ),
    ("error_login_failed", "Sign-in could not be completed"),
    (
        "error_login_failed_text",
        "The sign-in took too long, was already used, or was cancelled.",
    ),
    (
        "error_login_failed_todo",
        "Start again: a new sign-in takes a moment.",
    ),
    ("error_not_signed_in", "You are not signed in"),
    (
        "error_not_signed_in_text",
        "This page needs you to sign in first.",
    ),
    (
        "error_not_signed_in_todo",
        "Sign in, then come back to this page.",
    ),
    ("error_forbidden", "Access denied"),
    (
        "error_forbidden_text",
        "You do not have access to this page.",
    ),
    (
        "error_forbidden_todo",
        "If you think you should, ask the site's administrator.",
    ),
    ("error_account_inactive", "Your account is not active"),
    (
        "error_account_inactive_text",
        "You signed in, but your account here is disabled.",
    ),
    (
        "error_account_inactive_todo",
        "Ask the site's administrator to enable it.",
    ),
    ("error_not_found", "Page not found"),
    ("error_not_found_text", "There is nothing at this address."),
    (
        "error_not_found_todo",
        "Check the address, or go back to the site.",
    ),
    (
        "error_idp_unavailable",
        "The sign-in service is not answering",
    ),
    (
        "error_idp_unavailable_text",
        "The service that checks your identity is slow or down.",
    ),
    (
        "error_idp_unavailable_todo",
        "Wait a minute, then start again.",
    ),
    ("error_unavailable", "Sign-in is unavailable"),
    (
        "error_unavailable_text",
        "A service sign-in depends on is down for now.",
    ),
    ("error_unavailable_todo", "Wait a minute, then start again."),
    ("error_too_many", "Too many sign-in attempts"),
    (
        "error_too_many_text",
        "This device or network started more sign-ins than idgate allows in a short time.",
    ),
    ("error_too_many_todo", "Wait a minute, then start again."),
    ("error_internal", "Something went wrong"),
    (
        "error_internal_text",
        "An unexpected problem stopped the sign-in.",
    ),
    (
        "error_internal_todo",
        "Start again; if it happens again, tell the site's administrator.",
    ),
    ("sessions_title", "Your sessions"),
    ("sessions_heading", "Where you are signed in"),
    (
        "sessions_intro",
        "End a session you do not recognise: that device is signed out.",
    ),
    ("sessions_unknown_device", "Unknown device"),
    ("sessions_this_device", "this device"),
    ("sessions_app", "Site"),
    ("sessions_address", "Address"),
    ("sessions_started", "Signed in"),
    ("sessions_last_seen", "Last active"),
    ("sessions_end", "End this session"),
    ("sessions_end_others", "End all other sessions"),
];

/// Italian.
const IT: &[(&str, &str)] = &[
    ("skip_to_content", "Vai al contenuto"),
    ("chooser_title", "Accedi"),
    ("chooser_heading", "Accedi a {app}"),
    ("chooser_intro", "Scegli come vuoi accedere."),
    ("chooser_with", "Continua con"),
    (
        "chooser_none",
        "Per questo sito non è ancora configurato alcun metodo di accesso.",
    ),
    ("callback_title", "Accesso in corso"),
    ("callback_heading", "Accesso in corso…"),
    ("callback_wait", "Ci vuole solo un momento."),
    (
        "callback_nojs",
        "Il tuo browser non esegue script: prosegui con il pulsante.",
    ),
    ("callback_continue", "Continua"),
    (
        "callback_failed",
        "Non è stato possibile completare l'accesso",
    ),
    (
        "callback_failed_text",
        "Il link di accesso non è più valido, oppure è già stato usato.",
    ),
    ("start_again", "Ricomincia"),
    ("what_to_do", "Cosa puoi fare"),
    ("signed_out_title", "Disconnesso"),
    ("signed_out_heading", "Sei uscito"),
    (
        "signed_out_text",
        "La tua sessione su questo dispositivo è terminata.",
    ),
    ("sign_in_again", "Accedi di nuovo"),
    ("error_title", "Qualcosa è andato storto"),
    ("error_code", "Codice di errore"),
    ("error_bad_request", "Questo link non è valido"),
    (
        "error_bad_request_text",
        "L'indirizzo che ti ha portato qui è incompleto o non ammesso.",
    ),
    (
        "error_bad_request_todo",
        "Torna al sito e ricomincia dal suo pulsante di accesso.",
    ),
    (
        "error_login_failed",
        "Non è stato possibile completare l'accesso",
    ),
    (
        "error_login_failed_text",
        "L'accesso è scaduto, è già stato usato oppure è stato annullato.",
    ),
    (
        "error_login_failed_todo",
        "Ricomincia: un nuovo accesso richiede un momento.",
    ),
    ("error_not_signed_in", "Non hai effettuato l'accesso"),
    (
        "error_not_signed_in_text",
        "Per questa pagina devi prima accedere.",
    ),
    (
        "error_not_signed_in_todo",
        "Accedi, poi torna a questa pagina.",
    ),
    ("error_forbidden", "Accesso negato"),
    ("error_forbidden_text", "Non hai accesso a questa pagina."),
    (
        "error_forbidden_todo",
        "Se pensi di doverlo avere, chiedi all'amministratore del sito.",
    ),
    ("error_account_inactive", "Il tuo account non è attivo"),
    (
        "error_account_inactive_text",
        "Hai effettuato l'accesso, ma qui il tuo account è disattivato.",
    ),
    (
        "error_account_inactive_todo",
        "Chiedi all'amministratore del sito di attivarlo.",
    ),
    ("error_not_found", "Pagina non trovata"),
    ("error_not_found_text", "A questo indirizzo non c'è nulla."),
    (
        "error_not_found_todo",
        "Controlla l'indirizzo oppure torna al sito.",
    ),
    (
        "error_idp_unavailable",
        "Il servizio di accesso non risponde",
    ),
    (
        "error_idp_unavailable_text",
        "Il servizio che verifica la tua identità è lento o non disponibile.",
    ),
    (
        "error_idp_unavailable_todo",
        "Attendi un minuto, poi ricomincia.",
    ),
    ("error_unavailable", "L'accesso non è disponibile"),
    (
        "error_unavailable_text",
        "Un servizio da cui dipende l'accesso per ora non è disponibile.",
    ),
    (
        "error_unavailable_todo",
        "Attendi un minuto, poi ricomincia.",
    ),
    ("error_too_many", "Troppi tentativi di accesso"),
    (
        "error_too_many_text",
        "Questo dispositivo o questa rete ha avviato troppi accessi in poco tempo.",
    ),
    ("error_too_many_todo", "Attendi un minuto, poi ricomincia."),
    ("error_internal", "Qualcosa è andato storto"),
    (
        "error_internal_text",
        "Un problema inatteso ha interrotto l'accesso.",
    ),
    (
        "error_internal_todo",
        "Ricomincia; se succede ancora, avvisa l'amministratore del sito.",
    ),
    ("sessions_title", "Le tue sessioni"),
    ("sessions_heading", "Dove hai effettuato l'accesso"),
    (
        "sessions_intro",
        "Termina una sessione che non riconosci: quel dispositivo verrà disconnesso.",
    ),
    ("sessions_unknown_device", "Dispositivo sconosciuto"),
    ("sessions_this_device", "questo dispositivo"),
    ("sessions_app", "Sito"),
    ("sessions_address", "Indirizzo"),
    ("sessions_started", "Accesso"),
    ("sessions_last_seen", "Ultima attività"),
    ("sessions_end", "Termina questa sessione"),
    ("sessions_end_others", "Termina tutte le altre sessioni"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key_once_and_no_empty_string() {
        let keys = |t: &'static [(&'static str, &'static str)]| {
            t.iter().map(|(k, _)| *k).collect::<Vec<_>>()
        };
        for table in [EN, IT] {
            let mut k = keys(table);
            let n = k.len();
            k.sort_unstable();
            k.dedup();
            assert_eq!(k.len(), n, "a key twice");
            assert!(table.iter().all(|(_, v)| !v.trim().is_empty()));
        }
        assert_eq!(Lang::En.strings().keys().collect::<Vec<_>>(), {
            Lang::It.strings().keys().collect::<Vec<_>>()
        });
    }

    #[test]
    fn the_browser_s_first_spoken_choice_wins_else_the_default() {
        let with = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::ACCEPT_LANGUAGE, v.parse().unwrap());
            h
        };
        assert_eq!(
            Lang::choose(&with("it-IT,it;q=0.9,en;q=0.8"), Lang::En),
            Lang::It
        );
        assert_eq!(
            Lang::choose(&with("en-GB;q=0.5, it;q=0.7"), Lang::En),
            Lang::It
        );
        assert_eq!(Lang::choose(&with("de-DE, en;q=0.3"), Lang::It), Lang::En);
        assert_eq!(Lang::choose(&with("de-DE, fr"), Lang::It), Lang::It);
        assert_eq!(Lang::choose(&http::HeaderMap::new(), Lang::It), Lang::It);
        let long = format!("{},it", "x-y;q=0.1,".repeat(60));
        assert_eq!(
            Lang::choose(&with(&long), Lang::En),
            Lang::En,
            "too long: ignored"
        );
    }
}
