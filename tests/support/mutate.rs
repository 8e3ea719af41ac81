//! Mutations of TOML texts for no-panic property tests (config files, scenario files): shared
//! by tests/config.rs and tests/fuzz.rs.

use proptest::prelude::*;

/// Mutations of a TOML text: delete, duplicate or corrupt a line, or splice in a value.
pub(crate) fn mutate(text: &str, ops: &[(u8, usize, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (op, at, s) in ops {
        if lines.is_empty() {
            lines.push(s.clone());
            continue;
        }
        let i = at % lines.len();
        match op % 5 {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                // Replace the value of a `key = value` line.
                if let Some((k, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{k}= {s}");
                }
            }
            3 => lines.insert(i, s.clone()),
            _ => {
                let l = &lines[i];
                let cut = l
                    .char_indices()
                    .nth(s.len() % (l.chars().count() + 1))
                    .map_or(l.len(), |(b, _)| b);
                lines[i] = format!("{}{s}", &l[..cut]);
            }
        }
    }
    lines.join("\n")
}

/// Values that break parsers: any text, near-misses, extremes.
pub(crate) fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-z.:/,\\- ]{0,24}",
        Just("\"\"".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"18446744073709551615s\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[[wan]]".to_string()),
        Just("\"1.2.3.4/33\"".to_string()),
        Just("\"http://127.0.0.1\"".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
        Just("\"500000000y\"".to_string()),
        Just("\"1ns\"".to_string()),
        Just("0.5".to_string()),
        Just("1.5".to_string()),
        Just("\"198.18.1.1\"".to_string()),
    ]
}
