//! The commands docs/install.md tells a user to type: the code block after each
//! `<!-- test: NAME -->` marker, shared by the tests that type them (tests/install_journey.rs,
//! tests/pin.rs).

// Each test binary that includes this uses a part of it.
#![allow(dead_code)]

pub(crate) const INSTALL_MD: &str = include_str!("../../docs/install.md");

pub(crate) const CONFIG_MD: &str = include_str!("../../docs/config.md");

/// The lines of the code block after `<!-- test: NAME -->` in docs/install.md.
pub(crate) fn doc_block(name: &str) -> Vec<String> {
    block(INSTALL_MD, name)
}

/// The lines of the code block after `<!-- test: NAME -->` in `doc` (a page's text).
pub(crate) fn block(doc: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- test: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("the page has no {marker}"));
    let body = doc[at + marker.len()..]
        .trim_start()
        .strip_prefix("```")
        .and_then(|r| r.split_once('\n'))
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("{marker} is not followed by a code block"));
    let end = body.find("```").expect("the block ends");
    body[..end].lines().map(str::to_string).collect()
}
