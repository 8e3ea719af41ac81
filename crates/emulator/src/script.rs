//! The RouterOS script interpreter shared by `/execute`, `/import` and
//! [`Emulator::import_script`](super::Emulator::import_script): the subset rendered config files
//! and the daemon use (menu lines, `add`/`set`/`remove`/`enable`/`disable`/`print`/`find`/`get`/
//! `move`, `[find where ...]`, `place-before=`, `:global`/`:local`/`:set`, `:log`, `:put`, `:if`,
//! `:do on-error`, `:foreach`, `:delay`, `:error`, `:len`). Menu commands go through the same
//! store operations as REST, so an argument REST refuses is refused here too, with the line.
//! Anything outside the subset is an error, never silently skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::schema::{MenuKind, MenuSpec, Schema, child};
use super::store::{self, Place, RosError, Store};
use super::{Emulator, log_into};

/// A script error with the (1-based) line it happened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line})")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError {
        line,
        message: message.into(),
    })
}

/// A parsed script, ready to run.
#[derive(Debug, Clone)]
pub struct Script {
    block: Block,
}

type Block = Vec<Stmt>;

#[derive(Debug, Clone)]
struct Stmt {
    line: usize,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct Item {
    kind: ItemKind,
    /// Whitespace before it: `name=` followed directly by a value takes that value.
    spaced: bool,
    line: usize,
}

#[derive(Debug, Clone)]
enum ItemKind {
    Word(String),
    Str(Vec<StrPart>),
    Var(String),
    Cmd(Block),
    Paren(Expr),
    Code(Block),
    /// `where <condition>` up to the end of the statement.
    Where(Expr),
}

#[derive(Debug, Clone)]
enum StrPart {
    Lit(String),
    Var(String),
}

#[derive(Debug, Clone)]
enum Expr {
    Word(String),
    Str(Vec<StrPart>),
    Var(String),
    Cmd(Block),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Match,
    And,
    Or,
}

// ------------------------------------------------------------------------------------ parsing

/// Source characters after line continuations are removed, each with its original line.
struct Src {
    c: Vec<char>,
    line: Vec<usize>,
}

/// Drops `\` + newline (and the next line's indentation), as RouterOS does; a backslash does
/// not continue a comment line.
fn join_lines(text: &str) -> Src {
    let chars: Vec<char> = text.chars().collect();
    let mut c = Vec::with_capacity(chars.len());
    let mut line = Vec::with_capacity(chars.len());
    let (mut i, mut ln, mut in_str, mut bol) = (0, 1, false, true);
    while i < chars.len() {
        let ch = chars[i];
        if bol && !in_str {
            let mut j = i;
            while j < chars.len() && (chars[j] == ' ' || chars[j] == '\t') {
                j += 1;
            }
            if j < chars.len() && chars[j] == '#' {
                while i < chars.len() && chars[i] != '\n' {
                    c.push(chars[i]);
                    line.push(ln);
                    i += 1;
                }
                bol = false;
                continue;
            }
        }
        bol = false;
        if ch == '\\' && (chars.get(i + 1) == Some(&'\n') || chars.get(i + 1) == Some(&'\r')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            i += 1;
            ln += 1;
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            continue;
        }
        if ch == '\\' && in_str && i + 1 < chars.len() {
            c.push(ch);
            line.push(ln);
            c.push(chars[i + 1]);
            line.push(ln);
            if chars[i + 1] == '\n' {
                ln += 1;
            }
            i += 2;
            continue;
        }
        if ch == '"' {
            in_str = !in_str;
        }
        c.push(ch);
        line.push(ln);
        if ch == '\n' {
            ln += 1;
            bol = true;
        }
        i += 1;
    }
    Src { c, line }
}

struct Parser {
    s: Src,
    i: usize,
    depth: usize,
}

const WORD_STOP: &str = " \t\r\n;\"[](){}$";
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.c.get(self.i).copied()
    }

    fn line(&self) -> usize {
        self.s
            .line
            .get(self.i)
            .or(self.s.line.last())
            .copied()
            .unwrap_or(1)
    }

    fn skip_blank(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.i += 1;
        }
        self.i != start
    }

    /// Statements until `close` (`]`, `}`) or the end.
    fn block(&mut self, close: Option<char>) -> Result<Block, ScriptError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.line(), "syntax error: nesting too deep");
        }
        let mut out = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                None => {
                    if let Some(c) = close {
                        return err(self.line(), format!("syntax error: missing '{c}'"));
                    }
                    break;
                }
                Some('\n' | ';') => self.i += 1,
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.i += 1;
                    }
                }
                Some(c) if Some(c) == close => {
                    self.i += 1;
                    break;
                }
                Some(c @ (']' | '}' | ')')) => {
                    return err(self.line(), format!("syntax error: unexpected '{c}'"));
                }
                Some(_) => out.push(self.statement()?),
            }
        }
        self.depth -= 1;
        Ok(out)
    }

    fn statement(&mut self) -> Result<Stmt, ScriptError> {
        let line = self.line();
        let mut items = Vec::new();
        let mut spaced = true;
        loop {
            if self.skip_blank() {
                spaced = true;
            }
            let iline = self.line();
            let kind = match self.peek() {
                None | Some('\n' | ';' | ']' | '}') => break,
                Some(')') => return err(iline, "syntax error: unexpected ')'"),
                Some('"') => ItemKind::Str(self.string()?),
                Some('$') => ItemKind::Var(self.var()?),
                Some('[') => {
                    self.i += 1;
                    ItemKind::Cmd(self.block(Some(']'))?)
                }
                Some('{') => {
                    self.i += 1;
                    ItemKind::Code(self.block(Some('}'))?)
                }
                Some('(') => {
                    self.i += 1;
                    let e = self.expr(false)?;
                    self.skip_ws_all();
                    if self.peek() != Some(')') {
                        return err(self.line(), "syntax error: missing ')'");
                    }
                    self.i += 1;
                    ItemKind::Paren(e)
                }
                Some(_) => {
                    let w = self.word();
                    if w == "where" && spaced {
                        let e = self.expr(true)?;
                        items.push(Item {
                            kind: ItemKind::Where(e),
                            spaced,
                            line: iline,
                        });
                        spaced = false;
                        continue;
                    }
                    ItemKind::Word(w)
                }
            };
            items.push(Item {
                kind,
                spaced,
                line: iline,
            });
            spaced = false;
        }
        Ok(Stmt { line, items })
    }

    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if WORD_STOP.contains(c) {
                break;
            }
            w.push(c);
            self.i += 1;
        }
        if w.is_empty() {
            // A lone stop character that no rule took; consume it so parsing advances.
            if let Some(c) = self.peek() {
                w.push(c);
                self.i += 1;
            }
        }
        w
    }

    fn var(&mut self) -> Result<String, ScriptError> {
        self.i += 1;
        if self.peek() == Some('"') {
            let parts = self.string()?;
            return Ok(parts
                .iter()
                .map(|p| match p {
                    StrPart::Lit(s) | StrPart::Var(s) => s.as_str(),
                })
                .collect());
        }
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                name.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        if name.is_empty() {
            return err(self.line(), "syntax error: '$' without a variable name");
        }
        Ok(name)
    }

    /// A quoted string with RouterOS escapes and `$var` interpolation.
    fn string(&mut self) -> Result<Vec<StrPart>, ScriptError> {
        let start = self.line();
        self.i += 1;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                return err(start, "syntax error: unterminated string");
            };
            self.i += 1;
            match c {
                '"' => break,
                '\\' => {
                    let Some(n) = self.peek() else {
                        return err(start, "syntax error: unterminated string");
                    };
                    self.i += 1;
                    let e = match n {
                        '"' => '"',
                        '\\' => '\\',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        '$' => '$',
                        '?' => '?',
                        '_' => ' ',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        h if h.is_ascii_hexdigit() => {
                            let Some(l) = self.peek().filter(char::is_ascii_hexdigit) else {
                                return err(self.line(), "syntax error: invalid escape in string");
                            };
                            self.i += 1;
                            let v = h.to_digit(16).unwrap_or(0) * 16 + l.to_digit(16).unwrap_or(0);
                            char::from_u32(v).unwrap_or('?')
                        }
                        _ => {
                            return err(
                                self.line(),
                                format!("syntax error: invalid escape '\\{n}'"),
                            );
                        }
                    };
                    lit.push(e);
                }
                '$' if self.peek().is_some_and(|n| n.is_alphanumeric() || n == '_') => {
                    if !lit.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                    }
                    self.i -= 1;
                    parts.push(StrPart::Var(self.var()?));
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(StrPart::Lit(lit));
        }
        Ok(parts)
    }

    fn skip_ws_all(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            self.i += 1;
        }
    }

    /// An expression; `stmt_end` true for `where` conditions, which end with the statement.
    fn expr(&mut self, stmt_end: bool) -> Result<Expr, ScriptError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(self.line(), "syntax error: nesting too deep");
        }
        let e = self.or_expr(stmt_end)?;
        self.depth -= 1;
        Ok(e)
    }

    fn ws(&mut self, stmt_end: bool) {
        if stmt_end {
            self.skip_blank();
        } else {
            self.skip_ws_all();
        }
    }

    fn keyword(&mut self, stmt_end: bool, words: &[&str]) -> Option<String> {
        self.ws(stmt_end);
        for w in words {
            let n = w.chars().count();
            let here: String = self.s.c.iter().skip(self.i).take(n).collect();
            if here == *w {
                let after = self.s.c.get(self.i + n).copied();
                let alpha = w.chars().all(char::is_alphabetic);
                if alpha && after.is_some_and(|c| c.is_alphanumeric() || c == '-') {
                    continue;
                }
                self.i += n;
                return Some((*w).to_string());
            }
        }
        None
    }

    fn or_expr(&mut self, se: bool) -> Result<Expr, ScriptError> {
        let mut l = self.and_expr(se)?;
        while self.keyword(se, &["||", "or"]).is_some() {
            let r = self.and_expr(se)?;
            l = Expr::Bin(Op::Or, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and_expr(&mut self, se: bool) -> Result<Expr, ScriptError> {
        let mut l = self.not_expr(se)?;
        while self.keyword(se, &["&&", "and"]).is_some() {
            let r = self.not_expr(se)?;
            l = Expr::Bin(Op::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not_expr(&mut self, se: bool) -> Result<Expr, ScriptError> {
        self.ws(se);
        if self.peek() == Some('!') && self.s.c.get(self.i + 1) != Some(&'=') {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not_expr(se)?)));
        }
        if self.keyword(se, &["not"]).is_some() {
            return Ok(Expr::Not(Box::new(self.not_expr(se)?)));
        }
        self.cmp_expr(se)
    }

    fn cmp_expr(&mut self, se: bool) -> Result<Expr, ScriptError> {
        let l = self.primary(se)?;
        let op = match self
            .keyword(se, &["!=", "<=", ">=", "=", "<", ">", "~"])
            .as_deref()
        {
            Some("!=") => Op::Ne,
            Some("<=") => Op::Le,
            Some(">=") => Op::Ge,
            Some("=") => Op::Eq,
            Some("<") => Op::Lt,
            Some(">") => Op::Gt,
            Some("~") => Op::Match,
            _ => return Ok(l),
        };
        let r = self.primary(se)?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }

    fn primary(&mut self, se: bool) -> Result<Expr, ScriptError> {
        self.ws(se);
        let line = self.line();
        match self.peek() {
            Some('(') => {
                self.i += 1;
                let e = self.expr(false)?;
                self.skip_ws_all();
                if self.peek() != Some(')') {
                    return err(self.line(), "syntax error: missing ')'");
                }
                self.i += 1;
                Ok(e)
            }
            Some('"') => Ok(Expr::Str(self.string()?)),
            Some('$') => Ok(Expr::Var(self.var()?)),
            Some('[') => {
                self.i += 1;
                Ok(Expr::Cmd(self.block(Some(']'))?))
            }
            _ => {
                let mut w = String::new();
                while let Some(c) = self.peek() {
                    if " \t\r\n;\"[](){}$=!<>~&|".contains(c) {
                        break;
                    }
                    w.push(c);
                    self.i += 1;
                }
                if w.is_empty() {
                    return err(line, "syntax error: expected a value");
                }
                Ok(Expr::Word(w))
            }
        }
    }
}

/// Parses a script; syntax errors name their line.
pub fn parse(text: &str) -> Result<Script, ScriptError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        s: join_lines(text),
        i: 0,
        depth: 0,
    };
    let block = p.block(None)?;
    Ok(Script { block })
}

// ------------------------------------------------------------------------------------ values

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Nil,
    Str(String),
    Num(i64),
    Bool(bool),
    /// Object ids (`find`), or any array.
    Arr(Vec<Val>),
    Id(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Nil => String::new(),
            Val::Str(s) | Val::Id(s) => s.clone(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => if *b { "true" } else { "false" }.to_string(),
            Val::Arr(a) => a.iter().map(Val::text).collect::<Vec<_>>().join(";"),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            Val::Nil => false,
            Val::Str(s) => matches!(s.as_str(), "true" | "yes"),
            Val::Num(n) => *n != 0,
            Val::Arr(a) => !a.is_empty(),
            Val::Id(_) => true,
        }
    }

    /// The item tokens a `numbers` value stands for.
    fn tokens(&self) -> Vec<String> {
        match self {
            Val::Arr(a) => a.iter().flat_map(Val::tokens).collect(),
            Val::Nil => Vec::new(),
            other => other
                .text()
                .split([',', ';'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// Whether a RouterOS word is a boolean, and which.
fn as_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

fn compare(op: Op, a: &Val, b: &Val) -> Result<bool, String> {
    let (ta, tb) = (a.text(), b.text());
    Ok(match op {
        Op::Eq | Op::Ne => {
            let eq = match (as_bool(&ta), as_bool(&tb)) {
                (Some(x), Some(y)) => x == y,
                _ => ta == tb,
            };
            eq == (op == Op::Eq)
        }
        Op::Match => regex_match(&tb, &ta)?,
        Op::Lt => super::rest::cmp_values(&ta, &tb).is_lt(),
        Op::Gt => super::rest::cmp_values(&ta, &tb).is_gt(),
        Op::Le => super::rest::cmp_values(&ta, &tb).is_le(),
        Op::Ge => super::rest::cmp_values(&ta, &tb).is_ge(),
        Op::And | Op::Or => unreachable_bool(op),
    })
}

/// `~`: compiled once per pattern and thread (a `find where` evaluates it for every object).
fn regex_match(pattern: &str, text: &str) -> Result<bool, String> {
    thread_local! {
        static CACHE: std::cell::RefCell<HashMap<String, regex::Regex>> =
            std::cell::RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains_key(pattern) {
            let re = regex::Regex::new(pattern)
                .map_err(|_| format!("invalid regular expression {pattern:?}"))?;
            if c.len() > 256 {
                c.clear();
            }
            c.insert(pattern.to_string(), re);
        }
        Ok(c.get(pattern).is_some_and(|re| re.is_match(text)))
    })
}

/// And/Or are evaluated by the caller (short-circuit); reaching here is a bug, answered as false.
fn unreachable_bool(_: Op) -> bool {
    false
}

// ------------------------------------------------------------------------------------ running

/// How a script runs: `/import` forgets `:local` variables after every top-level line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Import,
    Execute,
}

struct Ctx<'a> {
    emu: &'a Emulator,
    menu: String,
    scopes: Vec<HashMap<String, Val>>,
    declared: HashSet<String>,
    out: String,
    steps: usize,
}

const MAX_STEPS: usize = 200_000;

/// Runs a script as `/import` does; returns what `:put` and `print` wrote.
pub fn run(emu: &Emulator, text: &str) -> Result<String, ScriptError> {
    let s = parse(text)?;
    exec(emu, &s, Mode::Import, &mut || {})
}

/// Runs a script as `/import` does, calling `observe` after every top-level line: what a
/// router's state looks like at each moment of an import.
pub fn run_observed(
    emu: &Emulator,
    text: &str,
    observe: &mut dyn FnMut(),
) -> Result<String, ScriptError> {
    let s = parse(text)?;
    exec(emu, &s, Mode::Import, observe)
}

/// Runs a parsed script as `/execute` does.
pub fn run_parsed(emu: &Emulator, s: &Script) -> Result<String, ScriptError> {
    exec(emu, s, Mode::Execute, &mut || {})
}

fn exec(
    emu: &Emulator,
    s: &Script,
    mode: Mode,
    observe: &mut dyn FnMut(),
) -> Result<String, ScriptError> {
    let mut cx = Ctx {
        emu,
        menu: "/".into(),
        scopes: vec![HashMap::new()],
        declared: HashSet::new(),
        out: String::new(),
        steps: 0,
    };
    for st in &s.block {
        cx.stmt(st)?;
        observe();
        if mode == Mode::Import {
            // Each top-level line of an imported file runs on its own: locals do not survive.
            cx.scopes = vec![HashMap::new()];
        }
    }
    Ok(cx.out)
}

/// A parsed argument of a menu command.
enum Arg {
    Named(String, Val, usize),
    Pos(Val, usize),
    Where(Expr, usize),
}

impl<'a> Ctx<'a> {
    fn stmt(&mut self, st: &Stmt) -> Result<Val, ScriptError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err(st.line, "emulator: script step limit reached");
        }
        let Some(first) = st.items.first() else {
            return Ok(Val::Nil);
        };
        match &first.kind {
            ItemKind::Code(b) => {
                if st.items.len() > 1 {
                    return err(st.line, "syntax error: expected end of command");
                }
                self.block(b)
            }
            ItemKind::Word(w) if w.starts_with(':') => self.builtin(st, &w[1..]),
            ItemKind::Word(_) => self.menu_stmt(st),
            _ => err(st.line, "syntax error: expected a command"),
        }
    }

    fn block(&mut self, b: &Block) -> Result<Val, ScriptError> {
        self.scopes.push(HashMap::new());
        let menu = self.menu.clone();
        let mut last = Val::Nil;
        let mut result = Ok(());
        for st in b {
            match self.stmt(st) {
                Ok(v) => last = v,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.scopes.pop();
        self.menu = menu;
        result.map(|()| last)
    }

    fn lookup_var(&self, name: &str, line: usize) -> Result<Val, ScriptError> {
        for s in self.scopes.iter().rev() {
            if let Some(v) = s.get(name) {
                return Ok(v.clone());
            }
        }
        if self.declared.contains(name) {
            let st = self.emu.lock();
            return Ok(st
                .store
                .table("/system/script/environment")
                .iter()
                .find(|o| o.get("name") == Some(name))
                .map(|o| Val::Str(o.get("value").unwrap_or("").to_string()))
                .unwrap_or(Val::Nil));
        }
        err(line, format!("syntax error: unknown variable {name}"))
    }

    fn set_global(&mut self, name: &str, v: &Val) {
        let mut st = self.emu.lock();
        let t = st.store.table_mut("/system/script/environment");
        if let Some(o) = t.objects.iter_mut().find(|o| o.get("name") == Some(name)) {
            o.props.insert("value".into(), v.text());
            return;
        }
        let mut props = BTreeMap::new();
        props.insert("name".into(), name.to_string());
        props.insert("value".into(), v.text());
        st.store.insert_raw("/system/script/environment", props);
    }

    fn item_val(&mut self, it: &Item) -> Result<Val, ScriptError> {
        match &it.kind {
            ItemKind::Word(w) => Ok(word_val(w)),
            ItemKind::Str(p) => Ok(Val::Str(self.interp(p, it.line)?)),
            ItemKind::Var(v) => self.lookup_var(v, it.line),
            ItemKind::Cmd(b) => self.block(b),
            ItemKind::Paren(e) => self.eval(e, None, it.line),
            ItemKind::Code(_) | ItemKind::Where(_) => {
                err(it.line, "syntax error: unexpected code block")
            }
        }
    }

    fn interp(&mut self, parts: &[StrPart], line: usize) -> Result<String, ScriptError> {
        let mut s = String::new();
        for p in parts {
            match p {
                StrPart::Lit(l) => s.push_str(l),
                StrPart::Var(v) => s.push_str(&self.lookup_var(v, line)?.text()),
            }
        }
        Ok(s)
    }

    /// Evaluates an expression; in a `where`, a bare word on the left names a property of `obj`.
    fn eval(
        &mut self,
        e: &Expr,
        obj: Option<&store::Object>,
        line: usize,
    ) -> Result<Val, ScriptError> {
        Ok(match e {
            Expr::Word(w) => match obj {
                Some(o) => prop_val(o, w),
                None => word_val(w),
            },
            Expr::Str(p) => Val::Str(self.interp(p, line)?),
            Expr::Var(v) => self.lookup_var(v, line)?,
            Expr::Cmd(b) => self.block(b)?,
            Expr::Not(x) => Val::Bool(!self.eval(x, obj, line)?.truthy()),
            Expr::Bin(Op::And, a, b) => {
                Val::Bool(self.eval(a, obj, line)?.truthy() && self.eval(b, obj, line)?.truthy())
            }
            Expr::Bin(Op::Or, a, b) => {
                Val::Bool(self.eval(a, obj, line)?.truthy() || self.eval(b, obj, line)?.truthy())
            }
            Expr::Bin(op, a, b) => {
                let l = self.eval(a, obj, line)?;
                // The right side of a comparison is a value even inside `where`.
                let r = match &**b {
                    Expr::Word(w) => word_val(w),
                    other => self.eval(other, None, line)?,
                };
                Val::Bool(compare(*op, &l, &r).or_else(|m| err(line, m))?)
            }
        })
    }

    // -------------------------------------------------------------------------------- builtins

    fn builtin(&mut self, st: &Stmt, name: &str) -> Result<Val, ScriptError> {
        let line = st.line;
        let args = &st.items[1..];
        match name {
            "global" | "local" => {
                let Some(Item {
                    kind: ItemKind::Word(var),
                    ..
                }) = args.first()
                else {
                    return err(line, format!("syntax error: :{name} needs a variable name"));
                };
                if !var
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    return err(line, format!("syntax error: bad variable name {var}"));
                }
                if args.len() > 2 {
                    return err(line, "syntax error: expected end of command");
                }
                let value = match args.get(1) {
                    Some(it) => Some(self.item_val(it)?),
                    None => None,
                };
                if name == "global" {
                    self.declared.insert(var.clone());
                    if let Some(v) = value {
                        self.set_global(var, &v);
                    }
                } else if let Some(scope) = self.scopes.last_mut() {
                    scope.insert(var.clone(), value.unwrap_or(Val::Nil));
                }
                Ok(Val::Nil)
            }
            "set" => {
                let (
                    Some(Item {
                        kind: ItemKind::Word(var),
                        ..
                    }),
                    Some(it),
                ) = (args.first(), args.get(1))
                else {
                    return err(line, "syntax error: :set needs a variable and a value");
                };
                let v = self.item_val(it)?;
                for s in self.scopes.iter_mut().rev() {
                    if let Some(slot) = s.get_mut(var) {
                        *slot = v;
                        return Ok(Val::Nil);
                    }
                }
                if self.declared.contains(var) {
                    self.set_global(var, &v);
                    return Ok(Val::Nil);
                }
                err(line, format!("syntax error: unknown variable {var}"))
            }
            "log" => {
                let level = match args.first().map(|i| &i.kind) {
                    Some(ItemKind::Word(l))
                        if matches!(l.as_str(), "info" | "warning" | "error" | "debug") =>
                    {
                        l.clone()
                    }
                    _ => {
                        return err(
                            line,
                            "syntax error: :log needs info, warning, error or debug",
                        );
                    }
                };
                let msg = match args.get(1) {
                    Some(it) => self.item_val(it)?.text(),
                    None => String::new(),
                };
                if args.len() > 2 {
                    return err(line, "syntax error: expected end of command");
                }
                if level != "debug" {
                    log_into(&mut self.emu.lock().store, &format!("script,{level}"), &msg);
                }
                Ok(Val::Nil)
            }
            "put" => {
                let v = match args.first() {
                    Some(it) => self.item_val(it)?,
                    None => Val::Nil,
                };
                self.out.push_str(&v.text());
                self.out.push('\n');
                Ok(Val::Nil)
            }
            "error" => {
                let v = match args.first() {
                    Some(it) => self.item_val(it)?.text(),
                    None => String::new(),
                };
                err(line, v)
            }
            "len" => match args.first() {
                Some(it) => Ok(Val::Num(match self.item_val(it)? {
                    Val::Arr(a) => a.len() as i64,
                    Val::Nil => 0,
                    v => v.text().chars().count() as i64,
                })),
                None => Ok(Val::Num(0)),
            },
            "tostr" => Ok(Val::Str(match args.first() {
                Some(it) => self.item_val(it)?.text(),
                None => String::new(),
            })),
            "delay" => {
                let d = match args.first() {
                    Some(it) => self.item_val(it)?.text(),
                    None => "1s".into(),
                };
                let d = parse_duration(&d).ok_or_else(|| ScriptError {
                    line,
                    message: format!("invalid time value {d}"),
                })?;
                std::thread::sleep(d.min(Duration::from_secs(60)));
                Ok(Val::Nil)
            }
            "if" => {
                let cond = match args.first() {
                    Some(
                        it @ Item {
                            kind: ItemKind::Paren(_),
                            ..
                        },
                    ) => self.item_val(it)?,
                    _ => return err(line, "syntax error: :if needs a (condition)"),
                };
                let named = code_args(&args[1..], &["do", "else"], line)?;
                let Some(body) = named.get("do") else {
                    return err(line, "syntax error: :if needs do={...}");
                };
                if cond.truthy() {
                    self.block(body)
                } else if let Some(e) = named.get("else") {
                    self.block(e)
                } else {
                    Ok(Val::Nil)
                }
            }
            "do" => {
                let Some(Item {
                    kind: ItemKind::Code(body),
                    ..
                }) = args.first()
                else {
                    return err(line, "syntax error: :do needs {...}");
                };
                let named = code_args(&args[1..], &["on-error"], line)?;
                match self.block(body) {
                    Ok(v) => Ok(v),
                    Err(e) => match named.get("on-error") {
                        Some(h) => {
                            let _ = e;
                            self.block(h)
                        }
                        None => Err(e),
                    },
                }
            }
            "foreach" => {
                let Some(Item {
                    kind: ItemKind::Word(var),
                    ..
                }) = args.first()
                else {
                    return err(line, "syntax error: :foreach needs a variable");
                };
                let mut list = None;
                let mut body = None;
                let mut i = 1;
                while i < args.len() {
                    match &args[i].kind {
                        ItemKind::Word(w) if w == "in=" => {
                            let it = args.get(i + 1).ok_or(ScriptError {
                                line,
                                message: "syntax error: in= needs a value".into(),
                            })?;
                            list = Some(self.item_val(it)?);
                            i += 2;
                        }
                        ItemKind::Word(w) if w == "do=" => {
                            match args.get(i + 1).map(|x| &x.kind) {
                                Some(ItemKind::Code(b)) => body = Some(b.clone()),
                                _ => return err(line, "syntax error: do= needs {...}"),
                            }
                            i += 2;
                        }
                        _ => return err(line, "syntax error: expected in= or do="),
                    }
                }
                let (Some(list), Some(body)) = (list, body) else {
                    return err(line, "syntax error: :foreach needs in= and do=");
                };
                let items = match list {
                    Val::Arr(a) => a,
                    Val::Nil => Vec::new(),
                    v => vec![v],
                };
                for v in items {
                    self.scopes.push(HashMap::from([(var.clone(), v)]));
                    let r = self.block(&body);
                    self.scopes.pop();
                    r?;
                }
                Ok(Val::Nil)
            }
            "pick" => {
                // `:pick <array|string> <start> [<end>]`: one element (or character) at start,
                // or the part from start up to end; out of range is nothing.
                let (Some(list), Some(start)) = (args.first(), args.get(1)) else {
                    return err(line, "syntax error: :pick needs a value and a start");
                };
                let list = self.item_val(list)?;
                let index = |v: Val| -> Result<usize, ScriptError> {
                    v.text().parse().map_err(|_| ScriptError {
                        line,
                        message: format!("invalid index {}", v.text()),
                    })
                };
                let start = index(self.item_val(start)?)?;
                let end = match args.get(2) {
                    Some(it) => Some(index(self.item_val(it)?)?),
                    None => None,
                };
                Ok(match (list, end) {
                    (Val::Arr(a), None) => a.get(start).cloned().unwrap_or(Val::Nil),
                    (Val::Arr(a), Some(e)) => {
                        Val::Arr(a.get(start..e.min(a.len())).unwrap_or(&[]).to_vec())
                    }
                    (Val::Nil, _) => Val::Nil,
                    (id @ Val::Id(_), _) => {
                        if start == 0 {
                            id
                        } else {
                            Val::Nil
                        }
                    }
                    (v, e) => {
                        let chars: Vec<char> = v.text().chars().collect();
                        let e = e.unwrap_or(start + 1).min(chars.len());
                        Val::Str(chars.get(start..e).unwrap_or(&[]).iter().collect())
                    }
                })
            }
            "rndstr" => {
                // RouterOS 7: `:rndstr length=<n> from=<characters>`; 16 characters from
                // [0-9A-Za-z] when not given.
                let mut length = 16usize;
                let mut from: Vec<char> = ('0'..='9').chain('A'..='Z').chain('a'..='z').collect();
                let mut i = 0;
                while i < args.len() {
                    let ItemKind::Word(w) = &args[i].kind else {
                        return err(line, "syntax error: expected length= or from=");
                    };
                    let Some((name, inline)) = w.split_once('=') else {
                        return err(line, format!("syntax error: unexpected {w}"));
                    };
                    let value = if inline.is_empty() {
                        i += 1;
                        match args.get(i) {
                            Some(it) => self.item_val(it)?.text(),
                            None => String::new(),
                        }
                    } else {
                        inline.to_string()
                    };
                    match name {
                        "length" => {
                            length = value.parse().map_err(|_| ScriptError {
                                line,
                                message: format!("invalid value for length: {value}"),
                            })?;
                        }
                        "from" => from = value.chars().collect(),
                        _ => return err(line, format!("syntax error: unknown argument {name}")),
                    }
                    i += 1;
                }
                if from.is_empty() {
                    return err(line, "from= needs at least one character");
                }
                let s: String = (0..length)
                    .map(|_| from[fastrand::usize(..from.len())])
                    .collect();
                Ok(Val::Str(s))
            }
            other => err(line, format!("emulator: :{other} is not emulated")),
        }
    }

    // -------------------------------------------------------------------------------- menus

    fn menu_stmt(&mut self, st: &Stmt) -> Result<Val, ScriptError> {
        let schema = Schema::get();
        let mut cur = self.menu.clone();
        let mut idx = 0;
        while idx < st.items.len() {
            let it = &st.items[idx];
            let ItemKind::Word(w) = &it.kind else { break };
            if w.contains('=') {
                break;
            }
            let mut parts: Vec<&str> = w.split('/').collect();
            if w.starts_with('/') {
                cur = "/".into();
                parts.remove(0);
            }
            for (pi, part) in parts.iter().enumerate() {
                if part.is_empty() {
                    continue;
                }
                if *part == ".." {
                    cur = parent(&cur);
                    continue;
                }
                match resolve_child(schema, &cur, part) {
                    Some(Child::Dir(d)) => cur = d,
                    Some(Child::Cmd(c)) => {
                        if pi != parts.len() - 1 {
                            return err(it.line, format!("bad command name {part}"));
                        }
                        let spec = schema.menu(&cur).ok_or(ScriptError {
                            line: it.line,
                            message: format!("bad command name {c}"),
                        })?;
                        return self.command(spec, &c, &st.items[idx + 1..], it.line);
                    }
                    None => return err(it.line, format!("bad command name {part}")),
                }
            }
            idx += 1;
        }
        if idx < st.items.len() {
            let line = st.items[idx].line;
            return err(
                line,
                format!("syntax error: expected a command after {cur}"),
            );
        }
        // A bare menu path: later lines run there.
        self.menu = cur;
        Ok(Val::Nil)
    }

    fn args(
        &mut self,
        items: &[Item],
        spec: &MenuSpec,
        cmd: &str,
    ) -> Result<Vec<Arg>, ScriptError> {
        let cspec = spec.cmd(cmd);
        let mut out = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let it = &items[i];
            match &it.kind {
                ItemKind::Where(e) => out.push(Arg::Where(e.clone(), it.line)),
                ItemKind::Word(w) if w.find('=').is_some_and(|p| p > 0) => {
                    let (name, val) = w.split_once('=').unwrap_or((w, ""));
                    // find takes properties as conditions: `[find name=ether1]`.
                    let name = if cmd == "find" && spec.props.contains(name) {
                        name.to_string()
                    } else {
                        arg_name(cspec, name, cmd).or_else(|m| err(it.line, m))?
                    };
                    let v = if val.is_empty() {
                        match items.get(i + 1) {
                            Some(next) if !next.spaced => {
                                i += 1;
                                match &next.kind {
                                    ItemKind::Code(_) => {
                                        return err(
                                            next.line,
                                            "emulator: code values are not emulated",
                                        );
                                    }
                                    _ => self.item_val(next)?,
                                }
                            }
                            _ => Val::Str(String::new()),
                        }
                    } else {
                        word_val(val)
                    };
                    out.push(Arg::Named(name, v, it.line));
                }
                ItemKind::Word(w)
                    if cspec.is_some_and(|c| c.has(w))
                        && !w.starts_with('*')
                        && !w.chars().all(|c| c.is_ascii_digit()) =>
                {
                    out.push(Arg::Named(w.clone(), Val::Str(String::new()), it.line));
                }
                _ => out.push(Arg::Pos(self.item_val(it)?, it.line)),
            }
            i += 1;
        }
        Ok(out)
    }

    fn command(
        &mut self,
        spec: &'static MenuSpec,
        cmd: &str,
        items: &[Item],
        line: usize,
    ) -> Result<Val, ScriptError> {
        // `[find ...]` in the arguments runs in the command's menu.
        let saved = std::mem::replace(&mut self.menu, spec.path.clone());
        let args = self.args(items, spec, cmd);
        self.menu = saved;
        let args = args?;
        let re = |e: RosError| {
            let reason = e.message();
            ScriptError {
                line,
                message: e.detail.unwrap_or_else(|| reason.to_string()),
            }
        };
        match (spec.path.as_str(), cmd) {
            ("/log", "info" | "warning" | "error" | "debug") => {
                let mut msg = String::new();
                for a in &args {
                    match a {
                        Arg::Pos(v, _) if msg.is_empty() => msg = v.text(),
                        Arg::Named(n, v, _) if n == "message" => msg = v.text(),
                        _ => return err(line, "syntax error: expected end of command"),
                    }
                }
                if cmd != "debug" {
                    log_into(&mut self.emu.lock().store, &format!("script,{cmd}"), &msg);
                }
                return Ok(Val::Nil);
            }
            ("/", "import") => {
                let mut file = None;
                for a in &args {
                    match a {
                        Arg::Named(n, v, _) if n == "file-name" => file = Some(v.text()),
                        Arg::Pos(v, _) if file.is_none() => file = Some(v.text()),
                        Arg::Named(n, _, _) if n == "verbose" => {}
                        _ => return err(line, "syntax error: expected end of command"),
                    }
                }
                let name = file.ok_or(ScriptError {
                    line,
                    message: "missing value(s) of argument(s) file-name".into(),
                })?;
                let contents = {
                    let st = self.emu.lock();
                    st.store
                        .table("/file")
                        .iter()
                        .find(|o| o.get("name") == Some(name.as_str()))
                        .map(|o| o.get("contents").unwrap_or("").to_string())
                };
                let contents = contents.ok_or(ScriptError {
                    line,
                    message: "failure: no such file".into(),
                })?;
                let out = run(self.emu, &contents).or_else(|e| err(line, e.to_string()))?;
                self.out.push_str(&out);
                return Ok(Val::Nil);
            }
            _ => {}
        }
        match cmd {
            "add" => {
                let mut kv = Vec::new();
                let mut place = Place::End;
                for a in args {
                    match a {
                        Arg::Named(n, v, l) if n == "place-before" => {
                            if !spec.ordered() {
                                return err(l, "unknown parameter place-before");
                            }
                            let st = self.emu.lock();
                            let i = resolve_one(&st.store, spec, &v).map_err(re)?;
                            place = Place::Before(i);
                        }
                        Arg::Named(n, v, _) => kv.push((n, v.text())),
                        Arg::Pos(_, l) | Arg::Where(_, l) => {
                            return err(l, "syntax error: expected end of command");
                        }
                    }
                }
                let id = self.emu.lock().store.add(spec, kv, place).map_err(re)?;
                Ok(Val::Id(id))
            }
            "set" | "remove" | "enable" | "disable" | "move" | "comment" => {
                let mut numbers: Option<Val> = None;
                let mut kv = Vec::new();
                let mut dest = None;
                for a in args {
                    match a {
                        Arg::Named(n, v, _) if n == "numbers" => numbers = Some(v),
                        Arg::Named(n, v, _) if n == "destination" && cmd == "move" => {
                            dest = Some(v)
                        }
                        Arg::Named(n, v, _) => kv.push((n, v.text())),
                        Arg::Pos(v, _) if numbers.is_none() => numbers = Some(v),
                        Arg::Pos(v, l) if cmd == "move" && dest.is_none() => {
                            let _ = l;
                            dest = Some(v)
                        }
                        Arg::Pos(_, l) | Arg::Where(_, l) => {
                            return err(l, "syntax error: expected end of command");
                        }
                    }
                }
                let mut st = self.emu.lock();
                if spec.kind() == MenuKind::Singleton {
                    if numbers.is_some() || cmd != "set" {
                        return err(line, "syntax error: expected end of command");
                    }
                    st.store.set(spec, &[], kv).map_err(re)?;
                    return Ok(Val::Nil);
                }
                let Some(numbers) = numbers else {
                    return err(line, "missing value(s) of argument(s) numbers");
                };
                let idx = resolve_many(&st.store, spec, &numbers).map_err(re)?;
                match cmd {
                    "set" => st.store.set(spec, &idx, kv).map_err(re)?,
                    "comment" => {
                        let kv: Vec<_> = kv
                            .into_iter()
                            .map(|(_, v)| ("comment".to_string(), v))
                            .collect();
                        st.store.set(spec, &idx, kv).map_err(re)?
                    }
                    _ if !kv.is_empty() => {
                        return err(line, format!("unknown parameter {}", kv[0].0));
                    }
                    "remove" => st.store.remove(spec, &idx).map_err(re)?,
                    "enable" => st.store.set_disabled(spec, &idx, false).map_err(re)?,
                    "disable" => st.store.set_disabled(spec, &idx, true).map_err(re)?,
                    _ => {
                        let d = match dest {
                            Some(d) => Some(resolve_one(&st.store, spec, &d).map_err(re)?),
                            None => None,
                        };
                        st.store.move_before(spec, &idx, d).map_err(re)?
                    }
                }
                Ok(Val::Nil)
            }
            "find" | "print" => {
                let objs = self.emu.lock().store.objects_of(spec);
                let mut keep = Vec::new();
                for o in &objs {
                    let mut ok = true;
                    for a in &args {
                        ok = ok
                            && match a {
                                Arg::Where(e, l) => self.eval(e, Some(o), *l)?.truthy(),
                                Arg::Named(n, v, _) if cmd == "find" => {
                                    compare(Op::Eq, &prop_val(o, n), v).unwrap_or(false)
                                }
                                // print flags (detail, terse, ...) change only the layout.
                                Arg::Named(..) => true,
                                Arg::Pos(_, l) => {
                                    return err(*l, "syntax error: expected end of command");
                                }
                            };
                    }
                    if ok {
                        keep.push(o.clone());
                    }
                }
                if cmd == "find" {
                    return Ok(Val::Arr(keep.into_iter().map(|o| Val::Id(o.id)).collect()));
                }
                for (n, o) in keep.iter().enumerate() {
                    let props: Vec<String> =
                        o.props.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    self.out.push_str(&format!("{n:2} {}\n", props.join(" ")));
                }
                Ok(Val::Nil)
            }
            "get" => {
                let st = self.emu.lock();
                let objs = st.store.objects_of(spec);
                let (obj, prop) = match (spec.kind(), args.as_slice()) {
                    (MenuKind::Singleton, [Arg::Pos(p, _)]) => (objs.first().cloned(), p.text()),
                    (MenuKind::Singleton, [Arg::Named(p, _, _)]) => {
                        (objs.first().cloned(), p.clone())
                    }
                    (_, [Arg::Pos(n, _), Arg::Pos(p, _)]) => {
                        let i = resolve_one(&st.store, spec, n).map_err(re)?;
                        (objs.get(i).cloned(), p.text())
                    }
                    _ => return err(line, "syntax error: get needs an item and a property"),
                };
                let obj = obj.ok_or(ScriptError {
                    line,
                    message: "no such item".into(),
                })?;
                match obj.get(&prop) {
                    Some(v) => Ok(Val::Str(v.to_string())),
                    None => err(line, format!("no such property ({prop})")),
                }
            }
            "start" | "stop" if spec.path == "/container" => {
                let mut st = self.emu.lock();
                let mut idx = Vec::new();
                for a in &args {
                    match a {
                        Arg::Pos(v, _) | Arg::Named(_, v, _) => {
                            idx.extend(resolve_many(&st.store, spec, v).map_err(re)?)
                        }
                        Arg::Where(_, l) => {
                            return err(*l, "syntax error: expected end of command");
                        }
                    }
                }
                let status = if cmd == "start" { "running" } else { "stopped" };
                let t = st.store.table_mut(&spec.path);
                for i in idx {
                    if let Some(o) = t.objects.get_mut(i) {
                        o.props.insert("status".into(), status.into());
                    }
                }
                Ok(Val::Nil)
            }
            "sign" if spec.path == "/certificate" => {
                let mut st = self.emu.lock();
                let mut idx = Vec::new();
                for a in &args {
                    match a {
                        Arg::Pos(v, _) => idx.extend(resolve_many(&st.store, spec, v).map_err(re)?),
                        Arg::Named(n, v, _) if n == "number" => {
                            idx.extend(resolve_many(&st.store, spec, v).map_err(re)?)
                        }
                        Arg::Named(..) => {}
                        Arg::Where(_, l) => {
                            return err(*l, "syntax error: expected end of command");
                        }
                    }
                }
                if idx.is_empty() {
                    return err(line, "missing value(s) of argument(s) number");
                }
                st.store.sign_certificate(&idx);
                Ok(Val::Nil)
            }
            "unset" => err(line, "emulator: unset is not emulated; set an empty value"),
            other => err(
                line,
                format!("emulator: {}/{other} is not emulated", spec.path),
            ),
        }
    }
}

/// `name=` arguments of `:if`/`:do` that take code blocks.
fn code_args(
    items: &[Item],
    allowed: &[&str],
    line: usize,
) -> Result<HashMap<String, Block>, ScriptError> {
    let mut out = HashMap::new();
    let mut i = 0;
    while i < items.len() {
        let ItemKind::Word(w) = &items[i].kind else {
            return err(items[i].line, "syntax error: expected end of command");
        };
        let name = w.strip_suffix('=').unwrap_or("");
        if !allowed.contains(&name) {
            return err(items[i].line, format!("syntax error: unexpected {w}"));
        }
        match items.get(i + 1).map(|x| &x.kind) {
            Some(ItemKind::Code(b)) => {
                out.insert(name.to_string(), b.clone());
            }
            _ => return err(line, format!("syntax error: {name}= needs {{...}}")),
        }
        i += 2;
    }
    Ok(out)
}

/// A bare word's value: numbers and booleans typed, everything else text.
fn word_val(w: &str) -> Val {
    if let Ok(n) = w.parse::<i64>() {
        return Val::Num(n);
    }
    match w {
        "true" => Val::Bool(true),
        "false" => Val::Bool(false),
        _ if w.starts_with('*') && w.len() > 1 && w[1..].chars().all(|c| c.is_ascii_hexdigit()) => {
            Val::Id(w.to_string())
        }
        _ => Val::Str(w.to_string()),
    }
}

/// A property of an object in a `where`; an absent property is nothing (not equal to "").
fn prop_val(o: &store::Object, name: &str) -> Val {
    match o.get(name) {
        Some(v) => Val::Str(v.to_string()),
        None => Val::Nil,
    }
}

enum Child {
    Dir(String),
    Cmd(String),
}

/// A menu or command of `cur` by exact name or unambiguous prefix (RouterOS accepts both).
fn resolve_child(schema: &Schema, cur: &str, part: &str) -> Option<Child> {
    let dir = child(cur, part);
    if schema.is_dir(&dir) {
        return Some(Child::Dir(dir));
    }
    if let Some(spec) = schema.menu(cur)
        && spec.cmd(part).is_some()
    {
        return Some(Child::Cmd(part.to_string()));
    }
    // Unambiguous prefixes among the children we know.
    let mut cands: Vec<Child> = Vec::new();
    let prefix = child(cur, "");
    let mut dirs: Vec<String> = schema
        .menus()
        .filter_map(|m| m.path.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter(|name| name.starts_with(part))
        .map(str::to_string)
        .collect();
    dirs.sort();
    dirs.dedup();
    cands.extend(dirs.into_iter().map(|d| Child::Dir(child(cur, &d))));
    if let Some(spec) = schema.menu(cur) {
        cands.extend(
            spec.cmds
                .keys()
                .filter(|c| c.starts_with(part))
                .map(|c| Child::Cmd(c.clone())),
        );
    }
    if cands.len() == 1 { cands.pop() } else { None }
}

fn parent(cur: &str) -> String {
    match cur.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => cur[..i].to_string(),
    }
}

/// An argument name by exact name or unambiguous prefix.
fn arg_name(
    cspec: Option<&super::schema::CmdSpec>,
    name: &str,
    _cmd: &str,
) -> Result<String, String> {
    let Some(c) = cspec else {
        return Err(format!("unknown parameter {name}"));
    };
    if c.has(name) {
        return Ok(name.to_string());
    }
    let cands: Vec<&String> = c.args.keys().filter(|a| a.starts_with(name)).collect();
    match cands.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("unknown parameter {name}")),
        _ => Err(format!("ambiguous parameter {name}")),
    }
}

/// One item from an id, a name, a print index or the first of a `find`.
fn resolve_one(store: &Store, spec: &MenuSpec, v: &Val) -> Result<usize, RosError> {
    let toks = v.tokens();
    let Some(tok) = toks.first() else {
        return Err(RosError::no_such_item());
    };
    resolve_token(store, spec, tok)
}

fn resolve_many(store: &Store, spec: &MenuSpec, v: &Val) -> Result<Vec<usize>, RosError> {
    let toks = v.tokens();
    if toks.iter().all(|t| t.starts_with('*')) {
        return store.resolve_all(spec, &toks);
    }
    toks.iter().map(|t| resolve_token(store, spec, t)).collect()
}

fn resolve_token(store: &Store, spec: &MenuSpec, tok: &str) -> Result<usize, RosError> {
    if let Ok(n) = tok.parse::<usize>() {
        return if n < store.count(spec) {
            Ok(n)
        } else {
            Err(RosError::no_such_item())
        };
    }
    store.resolve(spec, tok)
}

/// RouterOS time values: `1s`, `500ms`, `2m`, `1h`, `1d`, `1h30m`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86400.0,
                'w' => 604800.0,
                _ => return None,
            }
        };
        let n: f64 = num.parse().ok()?;
        total += Duration::from_secs_f64(n * unit);
        num.clear();
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn continuation_and_comments_parse() {
        let s = parse("# c\n/ip route add \\\n    gateway=198.18.0.1 comment=\"a \\\"b\\\"\"\n")
            .expect("parse");
        assert_eq!(s.block.len(), 1);
        assert_eq!(s.block[0].line, 2);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("/ip route\nadd comment=\"open\n").expect_err("unterminated");
        assert_eq!(e.line, 2);
        let e = parse(":if (true) do={\n:put 1\n").expect_err("unclosed");
        assert!(e.message.contains("missing '}'"), "{e}");
    }
}
