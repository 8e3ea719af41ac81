//! The commands docs/install.md tells a user to type: the code block after each
//! `<!-- test: NAME -->` marker, shared by the tests that type them (tests/install_journey.rs,
//! tests/pin.rs).

pub(crate) const INSTALL_MD: &str = include_str!("../../docs/install.md");

/// The lines of the code block after `<!-- test: NAME -->` in docs/install.md.
pub(crate) fn doc_block(name: &str) -> Vec<String> {
    let marker = format!("<!-- test: {name} -->");
    let at = INSTALL_MD
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/install.md has no {marker}"));
    let body = INSTALL_MD[at + marker.len()..]
        .trim_start()
        .strip_prefix("```")
        .and_then(|r| r.split_once('\n'))
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("{marker} is not followed by a code block"));
    let end = body.find("```").expect("the block ends");
    body[..end].lines().map(str::to_string).collect()
}
