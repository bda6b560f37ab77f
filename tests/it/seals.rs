//! Seals, through the real binary against the Snipe-IT simulator: a normal full run finds a
//! user read exactly as when it was last found unchanged quiet without mapping it, and
//! anything that could map it otherwise (a change in Entra, a write, a deactivation, an
//! edited config) has it mapped and compared again.

use serde_json::{Value, json};

use crate::drift::{Setup, user};
use crate::util::write;

/// How many users the run knew unchanged by their seals, and its counts.
fn sealed(report: &Value) -> (u64, Value) {
    (
        report["unchanged_by_seal"].as_u64().unwrap(),
        report["counts"].clone(),
    )
}

#[test]
fn a_user_read_as_when_last_found_unchanged_is_quiet_by_its_seal_until_anything_changes() {
    let setup = Setup::new(
        &[
            user("e1", "ann", None),
            user("e2", "bob", None),
            user("e3", "cy", None),
        ],
        // Every run reads Entra in full, as one whose filter delta cannot follow does.
        "delta = no",
    );
    // The first run creates everyone (a reconciliation: no seals); the second maps everyone,
    // finds them unchanged and seals them; the third maps nobody.
    assert_eq!(setup.run(&[])["counts"]["created"], 3);
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["unchanged"]), (0, &json!(3)));
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["unchanged"]), (3, &json!(3)));

    // A change in Entra: bob is mapped and written; after the write his seal no longer
    // holds, so the next run maps him again, and seals him once he is found unchanged.
    setup.entra("e2", json!({"jobTitle": "Lead"}));
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["updated"]), (2, &json!(1)));
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Lead");
    assert_eq!(sealed(&setup.run(&[])).0, 2);
    assert_eq!(sealed(&setup.run(&[])).0, 3);

    // Cy leaves and comes back exactly as she was: her text is the same, but the state
    // remembers her deactivated, so her seal does not hold and she is reactivated.
    setup.graph.with(|g| g.tenant.soft_delete("e3"));
    assert_eq!(setup.run(&[])["counts"]["deactivated"], 1);
    setup.graph.with(|g| g.tenant.restore("e3"));
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["reactivated"]), (2, &json!(1)));
    assert_eq!(setup.column("cy@contoso.com", "activated"), true);
    assert_eq!(sealed(&setup.run(&[])).0, 3);

    // A config edited where it cannot change a record keeps the seals; an edited mapping
    // may map everyone otherwise, so nobody's seal holds. `plan` keeps no seals, so the run
    // after it maps everyone again.
    let config = setup.dir.path().join("userload.ini");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}max_deactivations = 50\n")).unwrap();
    assert_eq!(sealed(&setup.run(&[])).0, 3);
    let shipped = std::fs::read_to_string(crate::util::repo().join("mappings/snipeit.toml"));
    write(
        setup.dir.path(),
        "edited.toml",
        &format!("# edited\n{}", shipped.unwrap()),
    );
    std::fs::write(&config, format!("{text}mapping = edited.toml\n")).unwrap();
    let (code, stdout, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["unchanged"]), (0, &json!(3)));
    assert_eq!(sealed(&setup.run(&[])).0, 3);

    // A user whose target user was deleted by hand is quiet by its seal until the listing
    // shows it gone: then it is read again and created, and not counted as sealed.
    setup.snipe.with(|s| {
        let (id, _) = s.user_named("cy@contoso.com").unwrap();
        s.users.remove(&id);
    });
    let (by_seal, counts) = sealed(&setup.run(&[]));
    assert_eq!((by_seal, &counts["created"]), (2, &json!(1)));
    assert!(
        setup
            .snipe
            .with(|s| s.user_named("cy@contoso.com").is_some())
    );

    // A reconciliation compares every user with the target: no seal is used.
    let (by_seal, counts) = sealed(&setup.run(&["--full"]));
    assert_eq!((by_seal, &counts["unchanged"]), (0, &json!(3)));
}
