//! The graphs of every machine in `machines/`: insta snapshots of the DOT and Mermaid
//! exports, so that a change to a machine or to the exporters shows up in review as a
//! diff of the picture, and a check that the graphs committed beside each machine
//! (`machines/X.dot`, `machines/X.mmd`) are what the exporters produce today.

use std::path::Path;

use statemachine_dsl::{Model, check, to_dot, to_mermaid};

/// One graph language: how the committed file is named and how to regenerate it.
struct Format {
    /// The committed file's extension, and the snapshot name's suffix.
    extension: &'static str,
    /// The value of `fsm graph --format`.
    flag: &'static str,
    export: fn(&Model) -> String,
}

const FORMATS: [Format; 2] = [
    Format {
        extension: "dot",
        flag: "dot",
        export: to_dot,
    },
    Format {
        extension: "mmd",
        flag: "mermaid",
        export: to_mermaid,
    },
];

/// The model of a machine that the repository ships, which must check clean.
fn model(path: &Path) -> Model {
    let checked = check(&tests::read(path));
    checked.model.unwrap_or_else(|| {
        panic!(
            "{} has errors, so it has no graph: {:?}",
            path.display(),
            checked.diagnostics
        )
    })
}

/// `order` for `machines/order.fsm`.
fn stem(path: &Path) -> String {
    let name = tests::file_name(path);
    name.strip_suffix(".fsm").unwrap_or(&name).to_owned()
}

#[test]
fn there_are_machines_to_graph() {
    // Without this, an emptied or moved `machines/` folder would make every test
    // below pass by checking nothing.
    let names: Vec<String> = tests::machines()
        .iter()
        .map(|p| tests::file_name(p))
        .collect();
    assert!(names.contains(&"order.fsm".to_owned()), "{names:?}");
}

#[test]
fn graphs_match_their_snapshots() {
    for path in tests::machines() {
        let model = model(&path);
        for format in &FORMATS {
            let graph = (format.export)(&model);
            // The snapshot is named after the machine and format alone (for example
            // `graphs__order.dot.snap`), so a new machine gets its own snapshots and
            // the file name tells which picture it holds.
            insta::with_settings!({
                prepend_module_to_snapshot => false,
                omit_expression => true,
                input_file => &path,
            }, {
                insta::assert_snapshot!(format!("graphs__{}.{}", stem(&path), format.extension), graph);
            });
        }
    }
}

#[test]
fn committed_graphs_are_up_to_date() {
    let mut stale = Vec::new();
    for path in tests::machines() {
        let model = model(&path);
        for format in &FORMATS {
            let committed = path.with_extension(format.extension);
            let expected = (format.export)(&model);
            let actual = std::fs::read_to_string(&committed).ok();
            if actual.as_deref() != Some(expected.as_str()) {
                let state = if actual.is_some() {
                    "is stale"
                } else {
                    "is missing"
                };
                let fsm = format!("machines/{}.fsm", stem(&path));
                let out = format!("machines/{}.{}", stem(&path), format.extension);
                stale.push(format!(
                    "{out} {state}; regenerate it with\n    \
                     cargo run -p statemachine-dsl --bin fsm -- graph {fsm} --format {} -o {out}",
                    format.flag
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the committed graphs do not match their machines:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_edge_of_the_order_machine_is_drawn_once() {
    // The reference machine declares 14 transitions; `cancel: pending, confirmed`
    // leaves two states, so the graph has 15 edges plus the initial arrow.
    let path = tests::workspace_root().join("machines/order.fsm");
    let model = model(&path);
    let dot = to_dot(&model);
    assert_eq!(dot.matches(" -> ").count(), 16, "{dot}");
    assert_eq!(dot.matches("style=dashed").count(), 3, "{dot}");
    let mermaid = to_mermaid(&model);
    // 15 labelled edges, the initial arrow and three terminal arrows.
    assert_eq!(mermaid.matches(" --> ").count(), 19, "{mermaid}");
    assert_eq!(mermaid.matches(" : override ").count(), 3, "{mermaid}");
    assert!(mermaid.contains(
        "    confirmed --> paid : pay [payment_authorized and not fraud_hold] by customer, system\n"
    ));
    assert!(dot.contains(
        "    paid -> processing [label=\"start_processing\\nby system, support, admin\\nwithin business_hours\"];\n"
    ));
}
