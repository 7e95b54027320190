//! Graph export of a model: DOT and Mermaid.
use crate::model::Model;

pub fn to_dot(model: &Model) -> String {
    format!("digraph {} {{\n}}\n", model.name)
}

pub fn to_mermaid(_model: &Model) -> String {
    String::new()
}
