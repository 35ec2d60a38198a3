//! The DPO report: keys and fingerprints, operators, retention settings and purge history,
//! audit checkpoint — in French (default) or English. It holds no personal data and no count of
//! people, so it needs no small-cell protection.

use std::fmt::Write as _;

use synchro_shared::batch::signing_key_fingerprint;

use crate::service::{Hub, HubError};
use crate::web::Lang;

fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Renders the report.
pub async fn dpo_report(hub: &Hub, lang: Lang) -> Result<String, HubError> {
    let fr = lang == Lang::Fr;
    let t = |f: &'static str, e: &'static str| if fr { f } else { e };
    let c = &hub.cfg.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} — {}\n",
        t("Rapport DPO Synchro", "Synchro DPO report"),
        c.territory
    );
    let _ = writeln!(s, "## {}\n", t("Clés", "Keys"));
    let identity = synchro_keys::hub::load_identity(&hub.cfg.resolve(&c.keys.identity))?;
    let _ = writeln!(
        s,
        "- {} : {}",
        t(
            "Empreinte de la clé publique du hub (age)",
            "Hub public key fingerprint (age)"
        ),
        synchro_keys::hub::recipient_fingerprint(&identity.to_public())
    );
    let _ = writeln!(
        s,
        "- {} : `{}`",
        t(
            "Clé de vérification du journal d'audit",
            "Audit log verifier key"
        ),
        hub.verifier_key()
    );
    let _ = writeln!(
        s,
        "- {} : {:?}",
        t(
            "Époques du secret du territoire acceptées",
            "Accepted linkage-secret epochs"
        ),
        c.linkage.accepted_epochs
    );
    for (epoch, fp) in &c.linkage.fingerprints {
        let _ = writeln!(s, "  - {} {epoch} : {fp}", t("époque", "epoch"));
    }
    let _ = writeln!(
        s,
        "- {}",
        t(
            "Le hub ne détient pas le secret du territoire.",
            "The hub does not hold the linkage secret."
        )
    );
    let _ = writeln!(
        s,
        "\n## {}\n",
        t("Opérateurs inscrits", "Enrolled operators")
    );
    for op in hub.store.operators().await? {
        let fp = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &op.signing_public_key,
        )
        .map(|k| signing_key_fingerprint(&k))
        .unwrap_or_default();
        let _ = writeln!(
            s,
            "- {} ({}) — {} — {} {} — {} {fp}",
            op.display_name,
            op.id,
            if op.active {
                t("actif", "active")
            } else {
                t("désactivé", "disabled")
            },
            t("inscrit le", "enrolled"),
            date(op.enrolled_at),
            t("clé de signature", "signing key"),
        );
    }
    let r = &c.retention;
    let _ = writeln!(s, "\n## {}\n", t("Durées de conservation", "Retention"));
    let _ = writeln!(
        s,
        "- {} : {} {}",
        t("Enregistrements pseudonymisés", "Pseudonymised records"),
        r.records_months_after_last_contact,
        t(
            "mois après le dernier contact",
            "months after the last contact"
        )
    );
    let _ = writeln!(
        s,
        "- {} : {} {}",
        t("Lots chiffrés bruts", "Raw encrypted batches"),
        r.raw_batches_days,
        t("jours", "days")
    );
    let _ = writeln!(
        s,
        "- {} : {} {}",
        t("Journal d'audit", "Audit log"),
        r.audit_years,
        t("ans", "years")
    );
    let _ = writeln!(s, "\n## {}\n", t("Purges effectuées", "Purges run"));
    let mut purges = 0;
    let mut by_month: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, leaf) in hub.store.audit_leaves().await? {
        let v: serde_json::Value = serde_json::from_str(&leaf).unwrap_or_default();
        if v["action"] == "purge" {
            purges += 1;
            let d = &v["details"];
            let _ = writeln!(
                s,
                "- {} : {} {}, {} {}",
                date(v["at"].as_i64().unwrap_or(0)),
                d["records"],
                t("enregistrements", "records"),
                d["raw_batches"],
                t("lots bruts", "raw batches")
            );
        }
    }
    if purges == 0 {
        let _ = writeln!(s, "- {}", t("aucune", "none"));
    }
    for sub in hub.store.submissions().await? {
        *by_month.entry(sub.period).or_default() += 1;
    }
    let _ = writeln!(
        s,
        "\n## {}\n",
        t("Lots reçus par mois", "Batches received per month")
    );
    for (period, n) in by_month {
        let _ = writeln!(s, "- {period} : {n} {}", t("lot(s)", "batch(es)"));
    }
    let _ = writeln!(
        s,
        "\n## {}\n",
        t(
            "Dernier checkpoint signé (à conserver)",
            "Latest signed checkpoint (keep it)"
        )
    );
    let _ = writeln!(s, "```\n{}```", hub.checkpoint().await?);
    Ok(s)
}
