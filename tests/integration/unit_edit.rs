//! Editing units through the engine (`unit.*`, what the window's editor calls): a new unit's
//! skeleton, validation of text without saving (the messages `gitvisor validate` prints, at
//! their lines), a commit refused while the text has errors (nothing written), a commit that
//! runs, drafts that survive the engine, uncommitted edits shown and discarded, a removal that
//! stops the service.

use gitvisor_protocol::{
    Client, ClientError, UnitCommit, UnitDelete, UnitDiscard, UnitDraft, UnitGet, UnitValidate,
};
use gitvisor_testkit::Home;

use crate::home;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn client(h: &Home) -> Client {
    let socket = h.path().join("gitvisor.sock");
    Client::connect(&socket, &h.path().display().to_string(), "unit-edit test").await.expect("connect")
}

#[test]
fn a_unit_is_checked_as_typed_committed_only_when_valid_and_removed_in_a_commit() {
    let mut h = home();
    h.start_daemon();
    let rt = rt();
    let head = |h: &Home| h.git(&["rev-parse", "HEAD"]);
    rt.block_on(async {
        let mut c = client(&h).await;
        // A new unit starts as a skeleton, with nothing committed.
        let t = c.call(UnitGet { name: "api".into() }).await.unwrap();
        assert_eq!(t.file, "api.service");
        assert_eq!(t.committed, None);
        assert!(t.text.contains("[Service]\nExecStart=\n"), "{}", t.text);

        // Validation as typed: the same words `gitvisor validate` prints, at their lines.
        let bad = "[Service]\nExecStart=/bin/sleep 1000\nRestartSec=soon\n";
        let found = c.call(UnitValidate { name: "api".into(), text: bad.into() }).await.unwrap();
        assert_eq!(found.errors, 1);
        let d = &found.diagnostics[0];
        assert_eq!((d.line, d.severity.as_str(), d.key.as_deref()), (3, "error", Some("RestartSec")));
        std::fs::write(h.work().join("api.service"), bad).unwrap();
        let printed = h.run(&["validate", &h.work().join("api.service").display().to_string()]);
        let printed = String::from_utf8_lossy(&printed.stdout).to_string();
        assert!(printed.contains(&format!(":3: RestartSec: {}", d.message)), "{printed}\n{d:?}");

        // A commit of text with errors is refused and writes nothing.
        let before = head(&h);
        let refused = c.call(UnitCommit { name: "api".into(), text: bad.into(), message: None }).await;
        match refused {
            Err(ClientError::Rpc(e)) => {
                assert!(e.message.contains("api.service:3: RestartSec"), "{}", e.message);
                assert!(e.message.contains("nothing was committed"), "{}", e.message);
            }
            other => panic!("a unit with errors was not refused: {other:?}"),
        }
        assert_eq!(head(&h), before);
        assert!(!h.services().join("api.service").exists(), "nothing written");

        // A valid text: committed with its message, applied at once.
        let good = format!("{}[Install]\nWantedBy=default.target\n", h.sh_unit_text("exec sleep 1000", ""));
        let r = c
            .call(UnitCommit { name: "api".into(), text: good.clone(), message: Some("Add the api".into()) })
            .await
            .unwrap();
        assert!(r.commit.is_some());
        assert_eq!(h.git(&["log", "-1", "--format=%s"]), "Add the api");
        h.wait_state("api", "running");
        // The same text again: nothing to commit.
        let again =
            c.call(UnitCommit { name: "api".into(), text: good.clone(), message: None }).await.unwrap();
        assert_eq!(again.commit, None);

        // A draft is kept in the home and outlives the engine.
        let draft = good.replace("sleep 1000", "sleep 2000");
        let t = c.call(UnitDraft { name: "api".into(), text: Some(draft.clone()) }).await.unwrap();
        assert_eq!(t.draft.as_deref(), Some(draft.as_str()));
        assert_eq!(t.text, draft, "editing starts from the draft");
    });
    h.stop_daemon();
    h.start_daemon();
    rt.block_on(async {
        let mut c = client(&h).await;
        let t = c.call(UnitGet { name: "api.service".into() }).await.unwrap();
        assert!(t.draft.as_deref().is_some_and(|d| d.contains("sleep 2000")), "{t:?}");
        let t = c.call(UnitDraft { name: "api".into(), text: None }).await.unwrap();
        assert_eq!(t.draft, None);

        // Uncommitted edits in the repository are shown, and can be discarded.
        let committed = t.committed.clone().unwrap();
        std::fs::write(h.services().join("api.service"), committed.replace("sleep 1000", "sleep 3000"))
            .unwrap();
        let t = c.call(UnitGet { name: "api".into() }).await.unwrap();
        assert!(t.pending.as_deref().is_some_and(|p| p.contains("sleep 3000")), "{t:?}");
        let t = c.call(UnitDiscard { name: "api".into() }).await.unwrap();
        assert_eq!(t.pending, None);
        assert_eq!(std::fs::read_to_string(h.services().join("api.service")).unwrap(), committed);

        // A removal is a commit; the service stops and goes.
        let pid = h.pid("api").unwrap();
        let r = c.call(UnitDelete { name: "api".into(), message: None }).await.unwrap();
        assert_eq!(r.message, "Remove api.service");
        assert_eq!(h.git(&["log", "-1", "--format=%s"]), "Remove api.service");
        h.wait_until("api gone from status", || h.try_service("api").is_none());
        h.wait_until("api's process ended", || !gitvisor_testkit::alive(pid));
        // Not committed: nothing to remove, and the name of an instance is refused.
        let e = c.call(UnitDelete { name: "api".into(), message: None }).await.unwrap_err();
        assert!(e.to_string().contains("not committed"), "{e}");
        let e = c.call(UnitGet { name: "web@8080".into() }).await.unwrap_err();
        assert!(e.to_string().contains("is an instance: edit its template web@.service"), "{e}");
    });
}
