//! RouterOS REST semantics over the store: which verb on which path does what, request bodies
//! checked against the command table, replies and errors shaped as RouterOS 7.20 shapes them.
//! No HTTP here (the `http` module does auth, sessions and faults) and no script syntax.

use std::time::Duration;

use serde_json::{Value, json};

use super::schema::{MenuKind, MenuSpec, Schema, child};
use super::store::{self, Place, RosError, Store, json_value_to_string};
use super::{Emulator, script};

/// Command arguments in request order.
type Args = Vec<(String, String)>;

/// A successful reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Json(Value),
    /// `200` with an empty body (DELETE).
    Empty,
}

/// Serves one authenticated request. `path` is what follows `/rest`, `query` the raw query.
pub(crate) fn dispatch(
    emu: &Emulator,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Reply, RosError> {
    let schema = Schema::get();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let mut cur = "/".to_string();
    let mut rest = segs.as_slice();
    while let Some((seg, tail)) = rest.split_first() {
        let next = child(&cur, seg);
        if !schema.is_dir(&next) {
            break;
        }
        cur = next;
        rest = tail;
    }
    let Some(spec) = schema.menu(&cur) else {
        return Err(match rest.first() {
            Some(seg) => RosError::no_such_dir(seg),
            None => RosError::bad("no such command"),
        });
    };
    if rest.len() > 1 {
        return Err(RosError::no_such_dir(&rest[0]));
    }
    let item = rest.first().map(String::as_str);
    match (method, item) {
        ("GET", None) => print_get(emu, spec, query),
        ("GET", Some(id)) => {
            if spec.cmd(id).is_some() {
                return Err(RosError::bad("no such command"));
            }
            let st = emu.lock();
            let objs = st.store.objects_of(spec);
            let i = st
                .store
                .resolve(spec, id)
                .map_err(|_| RosError::not_found())?;
            let proplist = query_proplist(query);
            Ok(Reply::Json(object_json(
                spec,
                &objs[i],
                proplist.as_deref(),
            )))
        }
        ("PUT", None) => {
            let args = body_args(body)?;
            let mut st = emu.lock();
            let (args, place) = split_place(&st.store, spec, args)?;
            let id = st.store.add(spec, args, place)?;
            let objs = st.store.objects_of(spec);
            let obj = objs
                .iter()
                .find(|o| o.id == id)
                .ok_or_else(RosError::no_such_item)?;
            Ok(Reply::Json(object_json(spec, obj, None)))
        }
        ("PATCH", Some(id)) => {
            let mut args = body_args(body)?;
            args.retain(|(k, _)| k != ".id");
            let mut st = emu.lock();
            if spec.kind() != MenuKind::Collection {
                return Err(RosError::bad("missing or invalid resource identifier"));
            }
            let i = st
                .store
                .resolve(spec, id)
                .map_err(|_| RosError::not_found())?;
            st.store.set(spec, &[i], args)?;
            let objs = st.store.objects_of(spec);
            Ok(Reply::Json(object_json(spec, &objs[i], None)))
        }
        ("DELETE", Some(id)) => {
            let mut st = emu.lock();
            if spec.cmd("remove").is_none() {
                return Err(RosError::no_such_cmd("remove"));
            }
            let i = st
                .store
                .resolve(spec, id)
                .map_err(|_| RosError::not_found())?;
            st.store.remove(spec, &[i])?;
            Ok(Reply::Empty)
        }
        ("PATCH" | "DELETE", None) => Err(RosError::bad("missing or invalid resource identifier")),
        ("POST", None) => Err(RosError::bad("no such command")),
        ("POST", Some(cmd)) => command(emu, spec, cmd, body),
        ("PUT", Some(seg)) => Err(RosError::no_such_dir(seg)),
        _ => Err(RosError::bad("no such command")),
    }
}

/// `GET /rest/<menu>`: print with `.proplist` and equality filters from the query string.
fn print_get(emu: &Emulator, spec: &MenuSpec, query: &str) -> Result<Reply, RosError> {
    if spec.cmd("print").is_none() {
        return Err(RosError::bad("no such command"));
    }
    let mut proplist = None;
    let mut filters = Vec::new();
    for (k, v) in parse_query(query) {
        if k == ".proplist" {
            proplist = Some(v.split(',').map(str::to_string).collect::<Vec<_>>());
        } else if !k.starts_with('.') {
            filters.push((k, v));
        }
    }
    let st = emu.lock();
    let objs = st.store.objects_of(spec);
    if spec.kind() == MenuKind::Singleton {
        let obj = objs.first().cloned().unwrap_or(store::Object {
            id: String::new(),
            props: Default::default(),
        });
        return Ok(Reply::Json(object_json(spec, &obj, proplist.as_deref())));
    }
    let rows = objs
        .iter()
        .filter(|o| filters.iter().all(|(k, v)| o.get(k) == Some(v.as_str())))
        .map(|o| object_json(spec, o, proplist.as_deref()))
        .collect();
    Ok(Reply::Json(Value::Array(rows)))
}

/// The JSON of one object as print shows it (no `.id` in singletons, no passwords).
fn object_json(spec: &MenuSpec, o: &store::Object, proplist: Option<&[String]>) -> Value {
    let mut v = o.to_json(spec.kind() == MenuKind::Collection, proplist);
    if spec.path == "/user"
        && let Value::Object(m) = &mut v
    {
        m.remove("password");
    }
    v
}

/// A POST command.
fn command(emu: &Emulator, spec: &MenuSpec, cmd: &str, body: &[u8]) -> Result<Reply, RosError> {
    let Some(cspec) = spec.cmd(cmd) else {
        return Err(RosError::no_such_cmd(cmd));
    };
    let body = body_object(body)?;
    match (spec.path.as_str(), cmd) {
        ("/", "execute") => return execute(emu, &body),
        ("/", "import") => return import(emu, &body),
        ("/", "ping") => return ping(emu, &body),
        ("/log", "info" | "warning" | "error" | "debug") => {
            check_keys(&body, cspec, &[])?;
            let msg = str_arg(&body, "message")?.unwrap_or_default();
            if cmd != "debug" {
                emu.log(&format!("script,{cmd}"), &msg);
            }
            return Ok(Reply::Json(json!([])));
        }
        _ => {}
    }
    match cmd {
        "print" => {
            for k in body.keys() {
                if !k.starts_with('.') {
                    return Err(RosError::unknown_param(k));
                }
            }
            let proplist = match body.get(".proplist") {
                None => None,
                Some(v) => Some(
                    json_value_to_string(".proplist", v)?
                        .split(',')
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                ),
            };
            let st = emu.lock();
            let objs = st.store.objects_of(spec);
            if spec.kind() == MenuKind::Singleton {
                let obj = objs.first().cloned().unwrap_or(store::Object {
                    id: String::new(),
                    props: Default::default(),
                });
                return Ok(Reply::Json(json!([object_json(
                    spec,
                    &obj,
                    proplist.as_deref()
                )])));
            }
            let keep = query_filter(&body, &objs)?;
            let rows = objs
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(o, _)| object_json(spec, o, proplist.as_deref()))
                .collect();
            Ok(Reply::Json(Value::Array(rows)))
        }
        "find" => {
            for k in body.keys() {
                if k != ".query" {
                    return Err(RosError::unknown_param(k));
                }
            }
            let st = emu.lock();
            let objs = st.store.objects_of(spec);
            let keep = query_filter(&body, &objs)?;
            let ids: Vec<&str> = objs
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(o, _)| o.id.as_str())
                .collect();
            Ok(Reply::Json(json!({ "ret": ids.join(";") })))
        }
        "get" => {
            check_keys(&body, cspec, &[])?;
            let value_name = str_arg(&body, "value-name")?.unwrap_or_default();
            let st = emu.lock();
            let objs = st.store.objects_of(spec);
            let obj = if spec.kind() == MenuKind::Singleton {
                objs.first().cloned()
            } else {
                let n = str_arg(&body, "number")?.ok_or_else(RosError::no_such_item)?;
                Some(objs[st.store.resolve(spec, &n)?].clone())
            };
            let obj = obj.ok_or_else(RosError::no_such_item)?;
            match obj.get(&value_name) {
                Some(v) => Ok(Reply::Json(json!({ "ret": v }))),
                None => Err(RosError::bad(format!("no such property ({value_name})"))),
            }
        }
        "add" => {
            let args = body_args_from(&body)?;
            let mut st = emu.lock();
            let (args, place) = split_place(&st.store, spec, args)?;
            let id = st.store.add(spec, args, place)?;
            Ok(Reply::Json(json!({ "ret": id })))
        }
        "set" => {
            let args = body_args_from(&body)?;
            let mut st = emu.lock();
            if spec.kind() == MenuKind::Singleton {
                st.store.set(spec, &[], args)?;
            } else {
                let (idx, args) = take_numbers(&st.store, spec, args, true)?;
                st.store.set(spec, &idx, args)?;
            }
            Ok(Reply::Json(json!([])))
        }
        "remove" | "enable" | "disable" => {
            let args = body_args_from(&body)?;
            let mut st = emu.lock();
            let (idx, args) = take_numbers(&st.store, spec, args, true)?;
            if let Some((k, _)) = args.first() {
                return Err(RosError::unknown_param(k));
            }
            match cmd {
                "remove" => st.store.remove(spec, &idx)?,
                "enable" => st.store.set_disabled(spec, &idx, false)?,
                _ => st.store.set_disabled(spec, &idx, true)?,
            }
            Ok(Reply::Json(json!([])))
        }
        "move" => {
            let args = body_args_from(&body)?;
            let mut st = emu.lock();
            let (idx, mut args) = take_numbers(&st.store, spec, args, true)?;
            let dest = match args.iter().position(|(k, _)| k == "destination") {
                Some(p) => {
                    let (_, d) = args.remove(p);
                    Some(st.store.resolve(spec, &d)?)
                }
                None => None,
            };
            if let Some((k, _)) = args.first() {
                return Err(RosError::unknown_param(k));
            }
            st.store.move_before(spec, &idx, dest)?;
            Ok(Reply::Json(json!([])))
        }
        // Measured on 7.21.4: every form of POST .../unset answers 400 (routeros-facts §C).
        "unset" => Err(RosError::bad(
            "unset is refused over REST; set an empty value with PATCH",
        )),
        "sign" if spec.path == "/certificate" => {
            check_keys(&body, cspec, &[])?;
            let n = str_arg(&body, "number")?
                .ok_or_else(|| RosError::bad("missing value(s) of argument(s) number"))?;
            let mut st = emu.lock();
            let i = st.store.resolve(spec, &n)?;
            st.store.sign_certificate(&[i]);
            Ok(Reply::Json(json!([])))
        }
        "start" | "stop" if spec.path == "/container" => {
            let args = body_args_from(&body)?;
            let mut st = emu.lock();
            let (idx, args) = take_numbers(&st.store, spec, args, true)?;
            if let Some((k, _)) = args.first() {
                return Err(RosError::unknown_param(k));
            }
            let status = if cmd == "start" { "running" } else { "stopped" };
            let t = st.store.table_mut(&spec.path);
            for i in idx {
                if let Some(o) = t.objects.get_mut(i) {
                    o.props.insert("status".into(), status.into());
                }
            }
            Ok(Reply::Json(json!([])))
        }
        other => Err(RosError::bad(format!(
            "emulator: {}/{other} exists in RouterOS but is not emulated",
            spec.path
        ))),
    }
}

/// `/execute`: without `as-string` a background job (`{"ret":"*B501"}` at once); with the key,
/// whatever its value, synchronous (`{"ret":"<output>"}`, a failing script still answers 200).
fn execute(emu: &Emulator, body: &serde_json::Map<String, Value>) -> Result<Reply, RosError> {
    for k in body.keys() {
        if !matches!(k.as_str(), "script" | "as-string") {
            return Err(RosError::unknown_param(k));
        }
    }
    let src = str_arg(body, "script")?.unwrap_or_default();
    let parsed = script::parse(&src).map_err(|e| RosError::bad(e.to_string()))?;
    if body.contains_key("as-string") {
        let out = match script::run_parsed(emu, &parsed) {
            Ok(out) => out,
            Err(e) => e.to_string(),
        };
        return Ok(Reply::Json(json!({ "ret": out })));
    }
    let job = {
        let mut st = emu.lock();
        st.next_job += 1;
        format!("*{:X}", st.next_job)
    };
    emu.inner.jobs.send_modify(|n| *n += 1);
    let emu2 = emu.clone();
    std::thread::spawn(move || {
        if let Err(e) = script::run_parsed(&emu2, &parsed) {
            emu2.log("script,error", &e.to_string());
        }
        emu2.inner.jobs.send_modify(|n| *n = n.saturating_sub(1));
    });
    Ok(Reply::Json(json!({ "ret": job })))
}

/// `/import file-name=...`: runs a file of `/file`; an error answers 400 naming the line.
fn import(emu: &Emulator, body: &serde_json::Map<String, Value>) -> Result<Reply, RosError> {
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "file-name" | "verbose" | "dry-run" | "from-line"
        ) {
            return Err(RosError::unknown_param(k));
        }
    }
    let name = str_arg(body, "file-name")?
        .ok_or_else(|| RosError::bad("missing value(s) of argument(s) file-name"))?;
    let contents = {
        let st = emu.lock();
        st.store
            .table("/file")
            .iter()
            .find(|o| o.get("name") == Some(name.as_str()))
            .map(|o| o.get("contents").unwrap_or("").to_string())
    };
    let contents = contents.ok_or_else(|| RosError::bad("failure: no such file"))?;
    if body.contains_key("dry-run") {
        script::parse(&contents).map_err(|e| RosError::bad(e.to_string()))?;
        return Ok(Reply::Json(json!([])));
    }
    script::run(emu, &contents).map_err(|e| RosError::bad(e.to_string()))?;
    Ok(Reply::Json(json!([])))
}

/// `/ping`: needs `count` (an unbounded ping never answers over REST). Answers come from the
/// script of `ping.rs` (per source address and target); unscripted echoes time out at once.
fn ping(emu: &Emulator, body: &serde_json::Map<String, Value>) -> Result<Reply, RosError> {
    let Some(cspec) = Schema::get().root().cmd("ping") else {
        return Err(RosError::no_such_cmd("ping"));
    };
    check_keys(body, cspec, &[])?;
    let address = str_arg(body, "address")?
        .ok_or_else(|| RosError::bad("missing value(s) of argument(s) address"))?;
    let count: u32 = str_arg(body, "count")?
        .ok_or_else(|| RosError::bad("Session closed"))?
        .parse()
        .map_err(|_| RosError::bad("value of count out of range (1..4294967295)"))?;
    let interval = match str_arg(body, "interval")? {
        Some(v) => super::ping::parse_interval(&v)
            .filter(|d| (Duration::from_millis(10)..=Duration::from_secs(5)).contains(d))
            .ok_or_else(|| RosError::bad("value of interval out of range (10ms..5s)"))?,
        None => Duration::from_secs(1),
    };
    let source = str_arg(body, "src-address")?;
    Ok(Reply::Json(super::ping::rows(
        emu,
        &address,
        source.as_deref(),
        count,
        interval,
    )))
}

/// Splits `place-before` off an add's arguments (ordered menus only).
fn split_place(
    store: &Store,
    spec: &MenuSpec,
    mut args: Vec<(String, String)>,
) -> Result<(Vec<(String, String)>, Place), RosError> {
    let Some(p) = args.iter().position(|(k, _)| k == "place-before") else {
        return Ok((args, Place::End));
    };
    if !spec.ordered() {
        return Err(RosError::unknown_param("place-before"));
    }
    let (_, v) = args.remove(p);
    let i = store.resolve(spec, &v)?;
    Ok((args, Place::Before(i)))
}

/// Takes `.id` / `numbers` (a comma list of ids or names) out of the arguments.
fn take_numbers(
    store: &Store,
    spec: &MenuSpec,
    args: Vec<(String, String)>,
    required: bool,
) -> Result<(Vec<usize>, Args), RosError> {
    let mut idx = Vec::new();
    let mut rest = Vec::new();
    let mut seen = false;
    for (k, v) in args {
        if k == ".id" || k == "numbers" {
            seen = true;
            let toks: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            idx.extend(store.resolve_all(spec, &toks)?);
        } else {
            rest.push((k, v));
        }
    }
    if required && !seen {
        return Err(RosError::bad("missing value(s) of argument(s) numbers"));
    }
    Ok((idx, rest))
}

/// Evaluates `.query` (API query words) against each object.
fn query_filter(
    body: &serde_json::Map<String, Value>,
    objs: &[store::Object],
) -> Result<Vec<bool>, RosError> {
    let words: Vec<String> = match body.get(".query") {
        None => return Ok(vec![true; objs.len()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|w| json_value_to_string(".query", w))
            .collect::<Result<_, _>>()?,
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return Err(RosError::bad("invalid value for argument .query")),
    };
    objs.iter().map(|o| eval_query(&words, o)).collect()
}

/// RouterOS API query words on a stack: `name=v`, `name<v`, `name>v`, `name` (has it),
/// `-name` (lacks it), `#|`, `#&`, `#!` (and `#|` etc. with an index list are refused).
pub(crate) fn eval_query(words: &[String], o: &store::Object) -> Result<bool, RosError> {
    let mut stack: Vec<bool> = Vec::new();
    for w in words {
        let w = w.strip_prefix('?').unwrap_or(w);
        match w {
            "#|" | "#&" => {
                let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                    return Err(RosError::bad(format!(
                        "invalid query: {w} needs two operands"
                    )));
                };
                stack.push(if w == "#|" { a || b } else { a && b });
            }
            "#!" => {
                let a = stack
                    .pop()
                    .ok_or_else(|| RosError::bad("invalid query: #! needs an operand"))?;
                stack.push(!a);
            }
            _ if w.starts_with('#') => {
                return Err(RosError::bad(format!(
                    "emulator: query operation {w} not emulated"
                )));
            }
            _ if w.starts_with('-') => stack.push(o.get(&w[1..]).is_none()),
            _ => {
                let (name, op, val) = match w.find(['=', '<', '>']) {
                    Some(i) => (&w[..i], &w[i..i + 1], &w[i + 1..]),
                    None => (w, "", ""),
                };
                let have = o.get(name);
                stack.push(match op {
                    "=" => have == Some(val),
                    "<" => have.is_some_and(|h| cmp_values(h, val).is_lt()),
                    ">" => have.is_some_and(|h| cmp_values(h, val).is_gt()),
                    _ => have.is_some(),
                });
            }
        }
    }
    Ok(stack.into_iter().all(|b| b))
}

/// Numbers compare as numbers, everything else as text.
pub(crate) fn cmp_values(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, RosError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RosError::bad("JSON object expected")),
        Err(e) => Err(RosError::bad(format!("JSON parse error: {e}"))),
    }
}

fn body_args(body: &[u8]) -> Result<Vec<(String, String)>, RosError> {
    body_args_from(&body_object(body)?)
}

fn body_args_from(
    body: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, String)>, RosError> {
    body.iter()
        .map(|(k, v)| Ok((k.clone(), json_value_to_string(k, v)?)))
        .collect()
}

fn check_keys(
    body: &serde_json::Map<String, Value>,
    cspec: &super::schema::CmdSpec,
    extra: &[&str],
) -> Result<(), RosError> {
    for k in body.keys() {
        if !cspec.has(k) && !extra.contains(&k.as_str()) {
            return Err(RosError::unknown_param(k));
        }
    }
    Ok(())
}

fn str_arg(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, RosError> {
    body.get(key)
        .map(|v| json_value_to_string(key, v))
        .transpose()
}

fn query_proplist(query: &str) -> Option<Vec<String>> {
    parse_query(query)
        .into_iter()
        .find(|(k, _)| k == ".proplist")
        .map(|(_, v)| v.split(',').map(str::to_string).collect())
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+` (query strings); invalid escapes stay as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
