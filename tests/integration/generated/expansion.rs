//! The expansion of `order.fsm`, formatted by prettyplease and reviewed as a snapshot.

use statemachine_dsl::expand::Source;
use tests::{read, workspace_root};

fn expanded(name: &str) -> String {
    let text = read(&workspace_root().join("machines").join(name));
    let checked = statemachine_dsl::check(&text);
    let model = checked.model.expect("the machines check clean");
    let source = Source {
        name,
        text: &text,
        include_path: None,
    };
    let tokens = statemachine_dsl::expand(&model, source);
    let file: syn::File = syn::parse2(tokens).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn the_order_machine_expands_as_reviewed() {
    // Beside the suite's other snapshots, in tests/integration/snapshots.
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!(expanded("order.fsm"));
    });
}

#[test]
fn every_machine_expands_to_valid_rust() {
    for path in tests::machines() {
        let name = tests::file_name(&path);
        let code = expanded(&name);
        assert!(code.contains("pub struct Machine;"), "{name}");
    }
}
