//! Reads back, from a rendered script, which tagged objects it always creates and in which menu:
//! the list the bootstrap checks over REST. Only unconditional `add` lines count (an object added
//! under `:if` may rightly be absent). Pure.

/// An object a rendered script always creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    /// REST path of the menu: `/ip/firewall/mangle`.
    pub menu: String,
    /// First word of the object's comment: `uplinkd:pcc:ISP1-0`.
    pub tag: String,
}

/// Every unconditional tagged `add` of `script`, in script order.
pub fn expected_objects(script: &str) -> Vec<Expected> {
    let mut menu = String::new();
    let mut out = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.starts_with('/') && is_menu_line(line) {
            menu = format!("/{}", line.trim_start_matches('/').replace([' ', '/'], "/"));
            menu = menu.replace("//", "/");
            continue;
        }
        // A plain `add`, or the upsert the renderer makes of one (`upsert.rs`): the add runs
        // when no object carries the tag, so the object is expected either way.
        let rest = match line.strip_prefix("add ") {
            Some(rest) => rest,
            None if line.starts_with(":if ([:len [find where comment~\"^uplinkd:") => {
                match line.split_once("]] = 0) do={ ") {
                    Some((_, rest)) => rest.rsplit_once(" add ").map_or(rest, |(_, r)| r),
                    None => continue,
                }
            }
            None => continue,
        };
        if let Some(tag) = comment_tag(rest) {
            out.push(Expected {
                menu: menu.clone(),
                tag,
            });
        }
    }
    out
}

/// A menu context line: a path and nothing else (`/ip firewall mangle`, `/ip/route`).
fn is_menu_line(line: &str) -> bool {
    !line.contains('=') && !line.contains('[') && !line.contains('"') && {
        let last = line.split([' ', '/']).next_back().unwrap_or("");
        !matches!(
            last,
            "set" | "add" | "remove" | "print" | "enable" | "disable" | "sign"
        )
    }
}

/// The first word of a `comment=` value (quoted or bare).
fn comment_tag(args: &str) -> Option<String> {
    let at = args
        .find(" comment=")
        .map(|i| i + 9)
        .or_else(|| args.strip_prefix("comment=").map(|_| 8))?;
    let value = &args[at..];
    let word: String = if let Some(q) = value.strip_prefix('"') {
        q.chars().take_while(|c| *c != '"' && *c != ' ').collect()
    } else {
        value.chars().take_while(|c| *c != ' ').collect()
    };
    crate::naming::parse_tag(&word).is_some().then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_menus_and_tags() {
        let s = "/ip firewall mangle\n\
                 remove [find where comment~\"^uplinkd:\"]\n\
                 add chain=prerouting action=return comment=\"uplinkd:mangle:bypass note\"\n\
                 :if (1) do={ add chain=x comment=\"uplinkd:mangle:cond\" }\n\
                 /ip route set [find] gateway=1.1.1.1\n\
                 add dst-address=0.0.0.0/0 comment=uplinkd:pcc:ISP1-0\n\
                 /ip/route\n\
                 add gateway=1 comment=\"defconf\"\n\
                 add gateway=1 comment=\"uplinkd:route:ISP1-main gw:ISP1\"\n";
        assert_eq!(
            expected_objects(s),
            vec![
                Expected {
                    menu: "/ip/firewall/mangle".into(),
                    tag: "uplinkd:mangle:bypass".into()
                },
                Expected {
                    menu: "/ip/firewall/mangle".into(),
                    tag: "uplinkd:pcc:ISP1-0".into()
                },
                Expected {
                    menu: "/ip/route".into(),
                    tag: "uplinkd:route:ISP1-main".into()
                },
            ]
        );
    }
}
