//! The canonical layout of a `.fsm` file.
use crate::diagnostic::Diagnostic;

pub fn format(source: &str) -> Result<String, Vec<Diagnostic>> {
    crate::parse(source).map(|_| source.to_owned())
}
