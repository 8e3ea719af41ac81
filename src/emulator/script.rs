//! The RouterOS script interpreter shared by `/execute`, `/import` and `Emulator::import_script`.

use super::Emulator;

/// A script error with the line it happened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line})")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// A parsed script.
#[derive(Debug, Clone)]
pub struct Script {
    text: String,
}

pub fn parse(text: &str) -> Result<Script, ScriptError> {
    Ok(Script {
        text: text.to_string(),
    })
}

pub fn run_parsed(emu: &Emulator, s: &Script) -> Result<String, ScriptError> {
    run(emu, &s.text)
}

pub fn run(_emu: &Emulator, _text: &str) -> Result<String, ScriptError> {
    Err(ScriptError {
        line: 1,
        message: "emulator: scripts not implemented yet".into(),
    })
}
