//! The language reference, `docs/language.md`, checked against the implementation.
//!
//! The document's fenced code blocks follow these conventions, so that every example
//! in it is true:
//!
//! - ` ```fsm ` is a complete machine that checks clean: no error and no warning.
//! - ` ```fsm-fragment ` is a piece of a machine (one or more items, or a whole
//!   `machine`); it must parse, wrapped in `machine Fragment { ... }` unless it is one.
//! - ` ```fsm-broken ` is a complete machine with problems. The next fenced block is a
//!   ` ```text ` block with exactly what `fsm check` prints for it; its first line, the
//!   first headline, names the file. Inside a `### FSMnnn` section the broken machine
//!   must be reported with that code.
//! - A ` ```json ` block is the JSON form of the first diagnostic of the broken machine
//!   before it.
//!
//! After a deliberate change of a diagnostic, `UPDATE_DOCS=1 cargo test -p tests --test
//! integration docs::` writes what the tools now print into the document.
//!
//! Every code of [`Code::ALL`] has its `### FSMnnn — title` section, which starts with
//! its severity, and a row in the table of codes.

use std::path::PathBuf;

use statemachine_dsl::{Code, Diagnostic, SourceFile, check, parse};

fn doc_path() -> PathBuf {
    tests::workspace_root().join("docs/language.md")
}

fn doc() -> String {
    tests::read(&doc_path())
}

/// A fenced code block of the document.
#[derive(Debug)]
struct Block {
    /// The info string after the opening fence: `fsm`, `text`, ...
    info: String,
    body: String,
    /// The 1-based line of the opening fence.
    line: usize,
    /// The 1-based line of the closing fence.
    end_line: usize,
    /// The `### FSMnnn` code of the section the block is in, if any.
    section: Option<String>,
}

impl Block {
    /// The body as a file's text: ending in a newline, as files do.
    fn source(&self) -> String {
        format!("{}\n", self.body)
    }

    fn place(&self) -> String {
        format!("docs/language.md:{}", self.line)
    }
}

/// The code a heading documents: `### FSM007 — no initial state` is `FSM007`.
fn heading_code(line: &str) -> Option<&str> {
    let code = line.strip_prefix("### ")?.split_whitespace().next()?;
    let digits = code.strip_prefix("FSM")?;
    (digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = doc.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let mut body = Vec::new();
            let mut end_line = index + 1;
            for (inner_index, inner) in lines.by_ref() {
                end_line = inner_index + 1;
                if inner.trim() == "```" {
                    break;
                }
                body.push(inner.get(indent..).unwrap_or(inner.trim_start()));
            }
            blocks.push(Block {
                info: info.trim().to_owned(),
                body: body.join("\n"),
                line: index + 1,
                end_line,
                section: section.clone(),
            });
        } else if line.starts_with('#') {
            section = heading_code(line).map(str::to_owned);
        }
    }
    blocks
}

fn render(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    SourceFile::new(name, source).render_all(diagnostics)
}

/// Trailing blanks are not significant in Markdown (editors strip them).
fn normalized(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

#[test]
fn every_code_has_a_section() {
    let doc = doc();
    let headings: Vec<&str> = doc.lines().filter_map(heading_code).collect();
    let mut problems = Vec::new();
    for code in Code::ALL {
        let count = headings.iter().filter(|h| **h == code.as_str()).count();
        if count != 1 {
            problems.push(format!(
                "{code} ({}) has {count} `### {code} — ...` headings; it needs exactly one",
                code.summary()
            ));
        }
    }
    for heading in &headings {
        if !Code::ALL.iter().any(|c| c.as_str() == *heading) {
            problems.push(format!(
                "`### {heading}` documents a code that does not exist"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_code_section_states_its_severity_and_is_in_the_table() {
    let doc = doc();
    let lines: Vec<&str> = doc.lines().collect();
    let mut problems = Vec::new();
    for code in Code::ALL {
        let severity = code.severity().to_string();
        let row = format!("| {code} | {severity} |");
        if !lines.iter().any(|l| l.starts_with(&row)) {
            problems.push(format!("the table of codes has no row `{row} ... |`"));
        }
        let Some(at) = lines
            .iter()
            .position(|l| heading_code(l) == Some(code.as_str()))
        else {
            continue; // reported by `every_code_has_a_section`
        };
        let first_paragraph = lines[at + 1..].iter().find(|l| !l.trim().is_empty());
        let mut word = severity.clone();
        word[..1].make_ascii_uppercase();
        let marker = format!("**{word}.**");
        if !first_paragraph.is_some_and(|l| l.starts_with(&marker)) {
            problems.push(format!(
                "the section of {code} should start with `{marker}`, its severity"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_code_section_has_a_broken_and_a_fixed_machine() {
    let blocks = blocks(&doc());
    let mut problems = Vec::new();
    for code in Code::ALL {
        let in_section = |info: &str| {
            blocks
                .iter()
                .any(|b| b.info == info && b.section.as_deref() == Some(code.as_str()))
        };
        if !in_section("fsm-broken") {
            problems.push(format!(
                "the section of {code} has no ```fsm-broken example"
            ));
        }
        if !in_section("fsm") {
            problems.push(format!("the section of {code} has no fixed ```fsm example"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn valid_machines_check_clean() {
    let blocks = blocks(&doc());
    let valid: Vec<&Block> = blocks.iter().filter(|b| b.info == "fsm").collect();
    assert!(valid.len() > 30, "expected the document's valid machines");
    let mut problems = Vec::new();
    for block in valid {
        let source = block.source();
        let checked = check(&source);
        if !checked.diagnostics.is_empty() {
            problems.push(format!(
                "{}: this ```fsm machine should check clean, but:\n{}",
                block.place(),
                render("example.fsm", &source, &checked.diagnostics)
            ));
        } else if checked.model.is_none() {
            problems.push(format!("{}: no model for a clean machine", block.place()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn fragments_parse() {
    let blocks = blocks(&doc());
    let fragments: Vec<&Block> = blocks.iter().filter(|b| b.info == "fsm-fragment").collect();
    assert!(!fragments.is_empty(), "expected the document's fragments");
    let mut problems = Vec::new();
    for block in fragments {
        let source = if block.body.trim_start().starts_with("machine") {
            block.source()
        } else {
            format!("machine Fragment {{\n{}\n}}\n", block.body)
        };
        if let Err(diagnostics) = parse(&source) {
            problems.push(format!(
                "{}: this ```fsm-fragment does not parse:\n{}",
                block.place(),
                render("fragment.fsm", &source, &diagnostics)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The code of a broken machine's section is among its diagnostics.
#[test]
fn broken_machines_report_the_code_of_their_section() {
    let blocks = blocks(&doc());
    let mut problems = Vec::new();
    let mut broken = 0;
    for block in blocks.iter().filter(|b| b.info == "fsm-broken") {
        broken += 1;
        let source = block.source();
        let diagnostics = check(&source).diagnostics;
        if diagnostics.is_empty() {
            problems.push(format!(
                "{}: this ```fsm-broken machine checks clean",
                block.place()
            ));
            continue;
        }
        if let Some(code) = &block.section
            && !diagnostics.iter().any(|d| d.code.as_str() == code)
        {
            problems.push(format!(
                "{}: the example of {code} is not reported with {code}, but:\n{}",
                block.place(),
                render("example.fsm", &source, &diagnostics)
            ));
        }
    }
    assert!(broken > 30, "expected the document's broken machines");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// What a block that shows the tools' output should hold: the index of the block and
/// its expected body.
fn expected_outputs(blocks: &[Block]) -> Result<Vec<(usize, String)>, String> {
    let mut outputs = Vec::new();
    // The last broken machine and the file name its output shows.
    let mut last: Option<(String, &Block)> = None;
    for (i, block) in blocks.iter().enumerate() {
        match block.info.as_str() {
            "fsm-broken" => {
                let output = blocks.get(i + 1).filter(|b| b.info == "text").ok_or_else(|| {
                    format!(
                        "{}: a ```fsm-broken machine must be followed by a ```text block with its diagnostics",
                        block.place()
                    )
                })?;
                let name = output.body.split(':').next().unwrap_or_default().trim();
                let name = if name.is_empty() { "example.fsm" } else { name };
                let source = block.source();
                let diagnostics = check(&source).diagnostics;
                outputs.push((i + 1, render(name, &source, &diagnostics)));
                last = Some((name.to_owned(), block));
            }
            "json" => {
                let (name, broken) = last.as_ref().ok_or_else(|| {
                    format!("{}: no ```fsm-broken machine before it", block.place())
                })?;
                let source = broken.source();
                let diagnostics = check(&source).diagnostics;
                let first = diagnostics
                    .first()
                    .ok_or_else(|| format!("{}: the machine has no diagnostic", broken.place()))?;
                let file = SourceFile::new(name, &source);
                let json = file.to_json(first);
                let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
                outputs.push((i, pretty));
            }
            _ => {}
        }
    }
    Ok(outputs)
}

/// Every output shown is what `fsm check` prints for the machine above it, and every
/// JSON example what `fsm check --message-format json` prints (pretty-printed here).
///
/// After a deliberate change of a message, run the tests with `UPDATE_DOCS=1` to write
/// the new outputs into the document, then review the difference.
#[test]
fn outputs_are_what_the_tools_print() {
    let doc = doc();
    let blocks = blocks(&doc);
    let outputs = expected_outputs(&blocks).unwrap_or_else(|e| panic!("{e}"));
    assert!(outputs.len() > 30, "expected the document's outputs");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        update(&doc, &blocks, &outputs);
        return;
    }
    let mut problems = Vec::new();
    for (i, expected) in &outputs {
        let block = &blocks[*i];
        let same = if block.info == "json" {
            let shown: Result<serde_json::Value, _> = serde_json::from_str(&block.body);
            let expected: serde_json::Value =
                serde_json::from_str(expected).expect("the JSON output parses");
            shown.is_ok_and(|shown| shown == expected)
        } else {
            normalized(&block.body) == normalized(expected)
        };
        if !same {
            problems.push(format!(
                "{}: this is not what the tool prints; it prints:\n{expected}",
                block.place()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\n(after a deliberate change, UPDATE_DOCS=1 cargo test -p tests --test integration docs:: \
         writes the new outputs into docs/language.md)",
        problems.join("\n\n")
    );
}

/// Rewrites the bodies of the output blocks, through a temporary file so that the other
/// tests never read half a document.
fn update(doc: &str, blocks: &[Block], outputs: &[(usize, String)]) {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut next = 0; // the next line of `lines` to copy
    for (i, expected) in outputs {
        let block = &blocks[*i];
        let fence = lines[block.line - 1];
        let indent = &fence[..fence.len() - fence.trim_start().len()];
        out.extend(lines[next..block.line].iter().map(|l| (*l).to_owned()));
        out.extend(expected.trim_end().lines().map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{indent}{l}")
            }
        }));
        next = block.end_line - 1;
    }
    out.extend(lines[next..].iter().map(|l| (*l).to_owned()));
    let mut text = out.join("\n");
    text.push('\n');
    let path = doc_path();
    let temp = path.with_extension("md.tmp");
    std::fs::write(&temp, text).expect("docs/ is writable");
    std::fs::rename(&temp, &path).expect("docs/ is writable");
}

#[test]
fn every_keyword_is_listed() {
    let grammar = tests::read(&tests::workspace_root().join("statemachine-dsl/src/grammar.pest"));
    let rule = grammar
        .split("\nkeyword = @{")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("grammar.pest has a `keyword` rule");
    let keywords: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
    assert!(
        keywords.len() > 20,
        "expected the keywords, found {keywords:?}"
    );
    let doc = doc();
    let listed = doc
        .split("**Keywords**")
        .nth(1)
        .and_then(|rest| rest.split("```text").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the document lists the keywords in a ```text block after **Keywords**");
    let listed: Vec<&str> = listed.split_whitespace().collect();
    let missing: Vec<&&str> = keywords.iter().filter(|k| !listed.contains(k)).collect();
    let extra: Vec<&&str> = listed.iter().filter(|k| !keywords.contains(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "keywords missing from the document: {missing:?}; listed but not keywords: {extra:?}"
    );
}

/// The anchor GitHub gives a heading: `### FSM007 — no initial state` is
/// `fsm007--no-initial-state`.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn links_within_the_document_resolve() {
    let doc = doc();
    let mut in_fence = false;
    let mut anchors = Vec::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            anchors.push(anchor(line));
        }
    }
    let broken: Vec<&str> = doc
        .split("](#")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !anchors.iter().any(|a| a == target))
        .collect();
    assert!(broken.is_empty(), "links to no heading: {broken:?}");
}
