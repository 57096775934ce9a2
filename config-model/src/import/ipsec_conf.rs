//! The ipsec.conf syntax of strongSwan's starter, as ipsec.conf(5) describes it
//! (<https://man.archlinux.org/man/ipsec.conf.5>): sections start at column 0 with
//! `config setup`, `conn NAME` or `ca NAME`; their parameters are indented `key=value` lines;
//! "white space followed by # followed by anything to the end of the line is a comment";
//! values may be double-quoted; an empty value means the default; sections of one type and
//! name are merged; `also=NAME` inherits another section's parameters, which the section's
//! own parameters override ("even if an also follows after them"); `conn %default` gives
//! defaults to every conn. `include` lines are not followed (reported instead): an importer
//! should not read files a hostile input names.

use std::collections::{BTreeMap, HashMap};

use super::Warnings;

/// A value with the line it was written on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub text: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub name: String,
    pub line: usize,
    /// In file order; repeated keys (several `also=`) kept.
    pub keys: Vec<(String, Value)>,
}

#[derive(Debug, Default)]
pub(crate) struct ConfFile {
    pub setup: Vec<(String, Value)>,
    /// `conn` sections other than `%default`, merged by name, in order of first appearance.
    pub conns: Vec<Section>,
    pub default: Vec<(String, Value)>,
    /// Name -> index in `conns` (a large hostile file must not make lookups quadratic).
    by_name: HashMap<String, usize>,
}

/// `also=` nesting deeper than this is refused (strongSwan has no such limit; a hostile file
/// could otherwise make the resolution deep).
const MAX_ALSO_DEPTH: usize = 16;

enum Current {
    None,
    Setup,
    Default,
    Conn(usize),
    Ignored,
}

pub(crate) fn parse(text: &str, w: &mut Warnings) -> ConfFile {
    let mut f = ConfFile::default();
    let mut cur = Current::None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let scope = match cur {
            Current::Setup => "config setup".to_string(),
            Current::Default => "conn %default".to_string(),
            Current::Conn(idx) => format!("conn {}", f.conns[idx].name),
            Current::None | Current::Ignored => "syntax".to_string(),
        };
        let Some(content) = strip_comment(raw, line, &scope, w) else {
            continue;
        };
        if content.trim().is_empty() {
            continue;
        }
        let indented = content.starts_with([' ', '\t']);
        if !indented {
            let mut words = content.split_whitespace();
            let kind = words.next().unwrap_or("");
            let name = words.next().unwrap_or("");
            let extra = words.next().is_some();
            match (kind, name, extra) {
                ("config", "setup", false) => cur = Current::Setup,
                ("conn", "%default", false) => cur = Current::Default,
                ("conn", n, false) if !n.is_empty() => {
                    let idx = match f.by_name.get(n) {
                        Some(idx) => *idx,
                        None => {
                            f.conns.push(Section {
                                name: n.to_string(),
                                line,
                                keys: Vec::new(),
                            });
                            f.by_name.insert(n.to_string(), f.conns.len() - 1);
                            f.conns.len() - 1
                        }
                    };
                    cur = Current::Conn(idx);
                }
                ("ca", _, _) => {
                    w.push(line, &format!("ca {name}"), "", "ca sections are not carried over (no certificates in this model; use raw public keys)");
                    cur = Current::Ignored;
                }
                ("include", _, _) => {
                    w.push(
                        line,
                        "include",
                        "",
                        "include is not followed: convert the included file on its own",
                    );
                    cur = Current::None;
                }
                ("version", _, _) => cur = Current::None,
                _ => {
                    w.push(line, "syntax", "", format!("`{}` is not a section header (config setup, conn NAME, ca NAME, include FILE): line skipped", truncate(content.trim(), 60)));
                    cur = Current::Ignored;
                }
            }
            continue;
        }
        let Some((key, value)) = parse_param(content, line, w) else {
            continue;
        };
        let v = Value { text: value, line };
        match cur {
            Current::Setup => f.setup.push((key, v)),
            Current::Default => f.default.push((key, v)),
            Current::Conn(idx) => f.conns[idx].keys.push((key, v)),
            Current::Ignored => {}
            Current::None => w.push(
                line,
                "syntax",
                &key,
                "parameter outside any section: skipped",
            ),
        }
    }
    f
}

/// The line without its comment; `None` when the whole line is a comment. A `#` glued to a
/// value (`modp3072#`, seed 004) is part of the value by ipsec.conf(5)'s rule, which strongSwan
/// would then reject as an unknown algorithm; it is almost certainly a typo, so it is dropped
/// as if it were a comment, with a warning.
fn strip_comment<'a>(raw: &'a str, line: usize, scope: &str, w: &mut Warnings) -> Option<&'a str> {
    let mut in_quote = false;
    let mut prev_ws = true;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
        } else if c == '"' {
            in_quote = true;
        } else if c == '#' {
            if !prev_ws {
                let key = raw[..i].split('=').next().unwrap_or("").trim();
                w.push(
                    line,
                    scope,
                    key,
                    format!(
                        "`#` right after `{}` is not a comment in ipsec.conf(5) (only white space then `#` is) and strongSwan would reject the value; dropped it and the rest of the line",
                        truncate(raw[..i].split('=').next_back().unwrap_or("").trim(), 60)
                    ),
                );
            }
            return if raw[..i].trim().is_empty() {
                None
            } else {
                Some(&raw[..i])
            };
        }
        prev_ws = c.is_whitespace();
    }
    Some(raw)
}

/// `key = value` (white space around `=` allowed); quoted values keep their white space and
/// understand `\"`, `\\`, `\n`, `\t`, `\r`; unquoted values have runs of white space reduced
/// to one space.
fn parse_param(content: &str, line: usize, w: &mut Warnings) -> Option<(String, String)> {
    let t = content.trim();
    let Some((k, v)) = t.split_once('=') else {
        w.push(
            line,
            "syntax",
            "",
            format!("`{}` is not key=value: skipped", truncate(t, 60)),
        );
        return None;
    };
    let key = k.trim().to_ascii_lowercase();
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        w.push(
            line,
            "syntax",
            "",
            format!(
                "`{}` is not a parameter name: skipped",
                truncate(k.trim(), 60)
            ),
        );
        return None;
    }
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(o) => out.push(o),
                    None => {}
                },
                c => out.push(c),
            }
        }
        if !closed {
            w.push(line, "syntax", &key, "unterminated quoted value (values spanning lines are not supported): taken up to the end of the line");
        } else if !chars.as_str().trim().is_empty() {
            w.push(line, "syntax", &key, "text after the closing quote ignored");
        }
        return Some((key, out));
    }
    Some((key, v.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// The parameters of conn `idx` after `%default` and `also=` (own parameters last, so they
/// win); empty values removed (ipsec.conf(5): an empty value means the default).
pub(crate) fn resolve(f: &ConfFile, idx: usize, w: &mut Warnings) -> BTreeMap<String, Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in &f.default {
        if k != "also" {
            map.insert(k.clone(), v.clone());
        }
    }
    let mut stack = Vec::new();
    overlay(f, idx, &mut map, &mut stack, w);
    map.retain(|_, v| !v.text.is_empty());
    map
}

fn overlay(
    f: &ConfFile,
    idx: usize,
    map: &mut BTreeMap<String, Value>,
    stack: &mut Vec<usize>,
    w: &mut Warnings,
) {
    let sec = &f.conns[idx];
    let scope = format!(
        "conn {}",
        f.conns[stack.first().copied().unwrap_or(idx)].name
    );
    stack.push(idx);
    for (k, v) in &sec.keys {
        if k != "also" {
            continue;
        }
        match f.by_name.get(&v.text).copied() {
            None => w.push(
                v.line,
                &scope,
                "also",
                format!("no conn named `{}`: ignored", v.text),
            ),
            Some(j) if stack.contains(&j) => w.push(
                v.line,
                &scope,
                "also",
                format!("`{}` is already being inherited (a loop): ignored", v.text),
            ),
            Some(_) if stack.len() >= MAX_ALSO_DEPTH => w.push(
                v.line,
                &scope,
                "also",
                format!(
                    "also= nested deeper than {MAX_ALSO_DEPTH}: `{}` ignored",
                    v.text
                ),
            ),
            Some(j) => overlay(f, j, map, stack, w),
        }
    }
    for (k, v) in &sec.keys {
        if k != "also" {
            map.insert(k.clone(), v.clone());
        }
    }
    stack.pop();
}

/// Conns that other conns inherit from (with `also=`): templates, not tunnels of their own
/// unless they name a peer.
pub(crate) fn also_targets(f: &ConfFile) -> std::collections::HashSet<String> {
    f.conns
        .iter()
        .flat_map(|c| c.keys.iter())
        .chain(f.default.iter())
        .filter(|(k, _)| k == "also")
        .map(|(_, v)| v.text.clone())
        .collect()
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push_str("...");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (ConfFile, Vec<String>) {
        let mut w = Warnings::new("t.conf");
        let f = parse(text, &mut w);
        (f, w.list.iter().map(|x| x.to_string()).collect())
    }

    #[test]
    fn sections_comments_quotes() {
        let (f, w) = parsed(
            "# top\nconfig setup\n    uniqueids = no # trailing\nconn a\n\tright=192.0.2.1\n\tleftupdown=\"/x.sh -ll 1  2\"\n\n  ike=aes256-sha256-modp2048#typo\nconn a\n  auto=start\n",
        );
        assert_eq!(f.setup.len(), 1);
        assert_eq!(f.setup[0].1.text, "no");
        assert_eq!(f.conns.len(), 1, "same-name sections merge");
        let keys: Vec<(&str, &str)> = f.conns[0]
            .keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.text.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("right", "192.0.2.1"),
                ("leftupdown", "/x.sh -ll 1  2"),
                ("ike", "aes256-sha256-modp2048"),
                ("auto", "start"),
            ]
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("t.conf:8: conn a: ike: `#` right after"),
            "{w:?}"
        );
    }

    #[test]
    fn also_and_default_precedence() {
        let (f, _) = parsed(
            "conn %default\n  dpdaction=clear\n  keylife=2h\nconn base\n  dpdaction=restart\n  ike=x\nconn t\n  ike=y\n  also=base\n  keylife=\n",
        );
        let mut w = Warnings::new("t.conf");
        let t = f.conns.iter().position(|c| c.name == "t").unwrap();
        let m = resolve(&f, t, &mut w);
        assert_eq!(m["dpdaction"].text, "restart", "also overrides %default");
        assert_eq!(m["ike"].text, "y", "own beats also even before it");
        assert!(
            !m.contains_key("keylife"),
            "empty value restores the default"
        );
        assert_eq!(
            also_targets(&f).into_iter().collect::<Vec<_>>(),
            vec!["base".to_string()]
        );
    }

    #[test]
    fn also_loops_and_garbage_do_not_hang_or_panic() {
        let (f, _) = parsed("conn a\n  also=b\nconn b\n  also=a\n  also=nope\n");
        let mut w = Warnings::new("t.conf");
        let _ = resolve(&f, 0, &mut w);
        assert!(w.list.iter().any(|x| x.message.contains("loop")));
        assert!(
            w.list
                .iter()
                .any(|x| x.message.contains("no conn named `nope`"))
        );
        let (_, w) = parsed("  stray=1\nbogus header line\n  x\nconn\n  =\n\"\n");
        assert!(!w.is_empty());
    }
}
