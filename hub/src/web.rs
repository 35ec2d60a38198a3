//! The web interface's pages, in French (default) and English. Plain HTML, no script.

use std::fmt::Write as _;

use crate::store::{EnrolledOperator, Submission};

/// Smallest count ever shown (disclosure rule: 1 to 10 are hidden).
pub const SMALL_CELL_THRESHOLD: i64 = 11;

/// Page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// French.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The query-string code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

fn t(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}th{{background:#eef}}.num{{text-align:right}}</style>\
         </head><body>{body}</body></html>",
        lang.code(),
        escape(title)
    )
}

/// The login page; `failed` shows the error line.
pub fn login(lang: Lang, failed: Option<()>) -> String {
    let mut body = format!(
        "<h1>Synchro</h1><h2>{}</h2>",
        t(lang, "Connexion", "Sign in")
    );
    if failed.is_some() {
        let _ = write!(
            body,
            "<p role=\"alert\">{}</p>",
            t(
                lang,
                "Identifiant ou mot de passe incorrect.",
                "Wrong account or password."
            )
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/login?lang={}\"><p><label>{} <input name=\"username\" autocomplete=\"username\"></label></p>\
         <p><label>{} <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p>\
         <p><button type=\"submit\">{}</button></p></form><p><a href=\"/login?lang={}\">{}</a></p>",
        lang.code(),
        t(lang, "Identifiant", "Account"),
        t(lang, "Mot de passe", "Password"),
        t(lang, "Se connecter", "Sign in"),
        t(lang, "en", "fr"),
        t(lang, "English", "Français"),
    );
    page(lang, "Synchro", &body)
}

/// Submissions received per operator and month.
pub fn dashboard(
    lang: Lang,
    user: &str,
    territory: &str,
    operators: &[EnrolledOperator],
    subs: &[Submission],
) -> String {
    let mut body = format!(
        "<h1>Synchro — {}</h1><p>{} <strong>{}</strong> · <a href=\"/?lang={}\">{}</a></p>",
        escape(territory),
        t(lang, "Connecté :", "Signed in:"),
        escape(user),
        t(lang, "en", "fr"),
        t(lang, "English", "Français"),
    );
    let mut periods: Vec<&str> = subs.iter().map(|s| s.period.as_str()).collect();
    periods.sort_unstable();
    periods.dedup();
    let _ = write!(
        body,
        "<h2>{}</h2><table id=\"submissions\"><thead><tr><th>{}</th>",
        t(
            lang,
            "Lots reçus par opérateur et par mois",
            "Batches received per operator and month"
        ),
        t(lang, "Opérateur", "Operator")
    );
    for p in &periods {
        let _ = write!(body, "<th>{}</th>", escape(p));
    }
    body.push_str("</tr></thead><tbody>");
    for op in operators {
        let _ = write!(
            body,
            "<tr><td>{} <small>({}){}</small></td>",
            escape(&op.display_name),
            escape(&op.id),
            if op.active {
                ""
            } else {
                t(lang, " — désactivé", " — disabled")
            }
        );
        for p in &periods {
            match subs
                .iter()
                .find(|s| s.operator_id == op.id && s.period == *p)
            {
                // Counts from 1 to 10 are never shown (small-cell rule, threshold 11), and no
                // total is shown, so a hidden count cannot be recomputed.
                Some(s) if s.row_count >= SMALL_CELL_THRESHOLD => {
                    let _ = write!(
                        body,
                        "<td class=\"num\" data-operator=\"{}\" data-period=\"{}\">{} {}</td>",
                        escape(&op.id),
                        escape(p),
                        s.row_count,
                        t(lang, "dossiers", "records")
                    );
                }
                Some(_) => {
                    let _ = write!(
                        body,
                        "<td data-operator=\"{}\" data-period=\"{}\">{}</td>",
                        escape(&op.id),
                        escape(p),
                        t(lang, "reçu", "received")
                    );
                }
                None => body.push_str("<td>—</td>"),
            }
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        "<p>{}</p>",
        t(
            lang,
            "Les chiffres de dossiers reçus sont des volumes techniques par lot ; les indicateurs publiés (personnes, situations, flux) passent par la protection des petits effectifs.",
            "Received record counts are technical batch volumes; published indicators (people, situations, flows) go through small-cell protection."
        )
    );
    page(lang, "Synchro", &body)
}
