//! Re-applying the base config without an outage. The template says what exists (`add` lines,
//! each tagged); imported as written, a re-import would first remove every tagged object (the
//! router without a default route, NAT or default deny for that moment, and a switched-off WAN
//! switched on again until the next reconcile). This pass rewrites the rendered text so that a
//! re-import changes objects in place:
//!
//! - each tagged `add` becomes "add when no object carries its comment, else `set` its
//!   properties" (the whole comment is the identity: hybrid PCC has two rules per tag, told
//!   apart by the word after it),
//!   and `set` leaves `disabled` alone, so a WAN the daemon switched off stays off (and a DHCP
//!   WAN's routes keep the gateway their lease script wrote);
//! - a rule missing from an ordered menu (mangle, NAT, filter) is placed before the first of the
//!   rules that follow it in the script, so an upgrade that adds a rule keeps the order;
//! - the removal of the previous import's objects runs last and spares every comment the script
//!   still makes: only what this config no longer wants goes.
//!
//! A pure text transform over the template's output: the template stays the one readable
//! description of the base config.

use std::collections::BTreeMap;

/// Menus whose rule order matters.
const ORDERED: &[&str] = &[
    "/ip/firewall/mangle",
    "/ip/firewall/nat",
    "/ip/firewall/filter",
    "/ipv6/firewall/filter",
];

/// Rewrites `body`. `cleanup` is the regex (unquoted) of the template's removal lines;
/// `dynamic_gateway` lists the WANs whose routes' gateway a lease script owns.
pub(super) fn transform(body: &str, cleanup: &str, dynamic_gateway: &[String]) -> String {
    let quoted_cleanup = format!("comment~{}", super::quote(cleanup));
    // Pass 1: per menu, the tags of plain adds in order, and every tag the script mentions.
    let mut plain: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut menu = String::new();
    for line in body.lines() {
        let line = line.trim_start();
        if let Some(m) = menu_of(line) {
            menu = m;
            continue;
        }
        for comment in comment_values(line) {
            push_unique(all.entry(menu.clone()).or_default(), comment);
        }
        if let Some(args) = line.strip_prefix("add ")
            && let Some(comment) = ours(args)
        {
            plain.entry(menu.clone()).or_default().push(comment);
        }
    }
    // Pass 2: rewrite.
    let mut out = String::with_capacity(body.len() * 2);
    let mut menu = String::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for raw in body.lines() {
        let line = raw.trim_start();
        if let Some(m) = menu_of(line) {
            menu = m;
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        if let Some(args) = line.strip_prefix("add ")
            && let Some(comment) = ours(args)
        {
            let index = seen.entry(menu.clone()).or_default();
            let later = plain
                .get(&menu)
                .map(|t| &t[(*index + 1).min(t.len())..])
                .unwrap_or(&[]);
            *index += 1;
            out.push_str(&upsert(&menu, args, &comment, later, dynamic_gateway));
            out.push('\n');
            continue;
        }
        if let Some((target, rest)) = line.split_once(" remove [find where ")
            && rest == format!("{quoted_cleanup}]")
        {
            let m = normalize(target);
            match all.get(&m).filter(|t| !t.is_empty()) {
                Some(keep) => {
                    out.push_str(&format!(
                        "{target} remove [find where {quoted_cleanup} && !(comment~{})]\n",
                        super::quote(&any_of(keep))
                    ));
                }
                None => {
                    out.push_str(raw);
                    out.push('\n');
                }
            }
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    out
}

fn upsert(
    menu: &str,
    args: &str,
    comment: &str,
    later: &[String],
    dynamic_gateway: &[String],
) -> String {
    let this = super::quote(&any_of(std::slice::from_ref(&comment.to_string())));
    let place = |args: &str| {
        if ORDERED.contains(&menu) && !later.is_empty() {
            let next = super::quote(&any_of(later));
            format!(
                ":if ([:len [find where comment~{next}]] > 0) do={{ add {args} place-before=[:pick [find where comment~{next}] 0] }} else={{ add {args} }}"
            )
        } else {
            format!("add {args}")
        }
    };
    // A switched object of a WAN the daemon has switched off (its main route disabled) is added
    // off too: a weight change adds PCC rules, and a WAN that is down must not get them enabled.
    let add = match switched_wan(comment) {
        Some((wan, route)) => {
            let main = super::quote(&format!("^uplinkd:route:{}-{route}( |$)", escape(wan)));
            let off: Vec<&str> = tokens(args)
                .into_iter()
                .filter(|t| !t.starts_with("disabled="))
                .chain(["disabled=yes"])
                .collect();
            format!(
                ":if ([:len [/ip route find where comment~{main} && disabled]] > 0) do={{ {} }} else={{ {} }}",
                place(&off.join(" ")),
                place(args)
            )
        }
        None => place(args),
    };
    let owned_gateway = menu == "/ip/route"
        && dynamic_gateway
            .iter()
            .any(|w| comment.ends_with(&format!(" gw:{w}")));
    let set: Vec<&str> = tokens(args)
        .into_iter()
        .filter(|t| {
            let name = t.split_once('=').map(|(n, _)| n);
            match name {
                // Flags (`fib`) are given at creation only.
                None => false,
                Some("disabled" | "place-before") => false,
                Some("gateway") => !owned_gateway,
                Some(_) => true,
            }
        })
        .collect();
    format!(
        ":if ([:len [find where comment~{this}]] = 0) do={{ {add} }} else={{ set [find where comment~{this}] {} }}",
        set.join(" ")
    )
}

/// The WAN of an object the daemon switches (`uplinkd:route:<WAN>-main|-table`,
/// `uplinkd:pcc:<WAN>-<k>`, `uplinkd:steer:<rule>.<WAN>-<kind>`), and which of its routes tells
/// whether the daemon has it off: `main` for the default policy, `table` for a traffic rule's
/// lines (a WAN whose own table route is off is usable by no policy).
fn switched_wan(comment: &str) -> Option<(&str, &'static str)> {
    let tag = comment.split(' ').next()?;
    let (section, name) = crate::naming::parse_tag(tag)?;
    match section {
        "route" => name
            .strip_suffix("-main")
            .or_else(|| name.strip_suffix("-table"))
            .map(|w| (w, "main")),
        "pcc" => name.rsplit_once('-').map(|(w, _)| (w, "main")),
        s if s == crate::traffic::SECTION_STEER => name
            .split_once('.')
            .and_then(|(_, rest)| rest.rsplit_once('-'))
            .map(|(w, _)| (w, "table")),
        _ => None,
    }
}

/// The regex matching exactly one of `comments`.
fn any_of(comments: &[String]) -> String {
    let alternatives: Vec<String> = comments.iter().map(|t| escape(t)).collect();
    if alternatives.len() == 1 {
        format!("^{}$", alternatives[0])
    } else {
        format!("^({})$", alternatives.join("|"))
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()[]{}|^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn push_unique(v: &mut Vec<String>, tag: String) {
    if !v.contains(&tag) {
        v.push(tag);
    }
}

/// `/ip firewall mangle` (a menu line: a path and nothing else) as `/ip/firewall/mangle`.
fn menu_of(line: &str) -> Option<String> {
    let is_menu = line.starts_with('/')
        && !line.contains('=')
        && !line.contains('[')
        && !line.contains('"')
        && !matches!(
            line.split([' ', '/']).next_back().unwrap_or(""),
            "set" | "add" | "remove" | "print" | "enable" | "disable" | "sign"
        );
    is_menu.then(|| normalize(line))
}

fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split([' ', '/']).filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// Arguments split at spaces outside quotes and brackets.
fn tokens(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut depth, mut escaped) = (0, false, 0i32, false);
    for (i, c) in args.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth -= 1,
            ' ' if !quoted && depth == 0 => {
                if i > start {
                    out.push(&args[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < args.len() {
        out.push(&args[start..]);
    }
    out
}

/// A RouterOS string's value: `"a \"b\""` is `a "b"`; a bare word is itself.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The comment of an `add`'s arguments, when it is uplinkd's (starts with a tag).
fn ours(args: &str) -> Option<String> {
    tokens(args)
        .into_iter()
        .find_map(|t| t.strip_prefix("comment="))
        .map(unquote)
        .filter(|c| c.starts_with("uplinkd:"))
}

/// Every uplinkd comment a line's `comment=` arguments carry (also inside `:if`/`:foreach`).
fn comment_values(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in line.match_indices("comment=") {
        let v = &line[at + "comment=".len()..];
        let token = tokens(v).into_iter().next().unwrap_or("");
        let token = token.trim_end_matches('}').trim_end();
        let c = unquote(token);
        if c.starts_with("uplinkd:") {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEANUP: &str = "^uplinkd:(route|filter):";

    #[test]
    fn adds_become_upserts_that_keep_disabled_and_order() {
        let body = "/ip route\n\
            add dst-address=0.0.0.0/0 gateway=\"ether1\" distance=250 disabled=yes comment=\"uplinkd:failsafe:A-main gw:A\"\n\
            /ip firewall filter\n\
            add chain=input action=accept comment=\"uplinkd:filter:one\"\n\
            add chain=input action=drop comment=\"uplinkd:filter:two\"\n\
            /ip route remove [find where comment~\"^uplinkd:(route|filter):\"]\n\
            /ip firewall filter remove [find where comment~\"^uplinkd:(route|filter):\"]\n";
        let out = transform(body, CLEANUP, &["A".to_string()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            ":if ([:len [find where comment~\"^uplinkd:failsafe:A-main gw:A\\$\"]] = 0) do={ add dst-address=0.0.0.0/0 gateway=\"ether1\" distance=250 disabled=yes comment=\"uplinkd:failsafe:A-main gw:A\" } else={ set [find where comment~\"^uplinkd:failsafe:A-main gw:A\\$\"] dst-address=0.0.0.0/0 distance=250 comment=\"uplinkd:failsafe:A-main gw:A\" }",
            "set keeps disabled and the lease's gateway"
        );
        assert!(
            lines[3]
                .contains("place-before=[:pick [find where comment~\"^uplinkd:filter:two\\$\"] 0]"),
            "{}",
            lines[3]
        );
        assert!(!lines[4].contains("place-before"), "the last rule appends");
        assert!(
            lines[5].ends_with("&& !(comment~\"^uplinkd:failsafe:A-main gw:A\\$\")]"),
            "{}",
            lines[5]
        );
        assert!(lines[6].contains("^(uplinkd:filter:one|uplinkd:filter:two)\\$"));
    }

    #[test]
    fn a_switched_object_is_added_off_when_its_wan_is_off() {
        let body = "/ip firewall mangle\n\
            add chain=prerouting action=mark-connection comment=\"uplinkd:pcc:ISP1-0\"\n";
        let out = transform(body, CLEANUP, &[]);
        let line = out.lines().nth(1).unwrap();
        assert!(
            line.contains("[/ip route find where comment~\"^uplinkd:route:ISP1-main( |\\$)\" && disabled]] > 0) do={ add chain=prerouting action=mark-connection comment=\"uplinkd:pcc:ISP1-0\" disabled=yes } else={ add chain=prerouting action=mark-connection comment=\"uplinkd:pcc:ISP1-0\" }"),
            "{line}"
        );
        assert_eq!(
            switched_wan("uplinkd:route:ISP-A-table gw:ISP-A"),
            Some(("ISP-A", "main"))
        );
        assert_eq!(
            switched_wan("uplinkd:pcc:ISP-A-3 tcp"),
            Some(("ISP-A", "main"))
        );
        assert_eq!(
            switched_wan("uplinkd:steer:guest-vlan.ISP-A-pick"),
            Some(("ISP-A", "table"))
        );
        assert_eq!(switched_wan("uplinkd:failsafe:ISP1-main gw:ISP1"), None);
    }

    #[test]
    fn tokens_respect_quotes_escapes_and_brackets() {
        assert_eq!(
            tokens("a=1 b=\"x \\\" y\" c=[find where x=1] fib"),
            ["a=1", "b=\"x \\\" y\"", "c=[find where x=1]", "fib"]
        );
    }

    #[test]
    fn tags_are_escaped_in_regexes() {
        assert_eq!(any_of(&["uplinkd:x:a.b c".into()]), "^uplinkd:x:a\\.b c$");
        assert_eq!(unquote("\"a \\\"b\\\" \\$c\""), "a \"b\" $c");
    }
}
