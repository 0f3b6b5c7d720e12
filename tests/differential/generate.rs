//! Generated bodies for the differential test: valid MCP messages whose keys
//! are respelled, folded, escaped or duplicated at one level (message, params,
//! arguments, nested argument object), sometimes inside a batch.
//!
//! A tiny xorshift generator with fixed seeds keeps the corpus the same from
//! run to run, so a failure names a body that reproduces.

/// A JSON value whose object keys are kept as written (raw key text, escapes
/// included), so the same key can appear twice.
#[derive(Clone)]
pub enum Node {
    Obj(Vec<(String, Node)>),
    Arr(Vec<Node>),
    Raw(String),
}

impl Node {
    fn render(&self, out: &mut String) {
        match self {
            Node::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(k);
                    out.push_str("\":");
                    v.render(out);
                }
                out.push('}');
            }
            Node::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            Node::Raw(s) => out.push_str(s),
        }
    }
}

fn raw(s: &str) -> Node {
    Node::Raw(s.to_owned())
}

fn obj(fields: &[(&str, Node)]) -> Node {
    Node::Obj(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// Seeded xorshift64*.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A valid message to mutate: a `tools/call` with nested arguments, or one of
/// the other shapes mcp-authz reads.
fn base(rng: &mut Rng) -> Node {
    let arguments = obj(&[
        ("sql", raw(r#""select 1""#)),
        ("limit", raw("10")),
        ("kind", raw(r#""read""#)),
        (
            "options",
            obj(&[("desk", raw(r#""ads""#)), ("mode", raw(r#""fast""#))]),
        ),
    ]);
    let call = obj(&[
        ("jsonrpc", raw(r#""2.0""#)),
        ("id", raw("1")),
        ("method", raw(r#""tools/call""#)),
        (
            "params",
            obj(&[("name", raw(r#""run_query""#)), ("arguments", arguments)]),
        ),
    ]);
    match rng.below(8) {
        6 => obj(&[
            ("jsonrpc", raw(r#""2.0""#)),
            ("id", raw("3")),
            ("method", raw(r#""prompts/get""#)),
            (
                "params",
                obj(&[
                    ("name", raw(r#""summary""#)),
                    ("arguments", obj(&[("desk", raw(r#""ads""#))])),
                ]),
            ),
        ]),
        7 => obj(&[
            ("jsonrpc", raw(r#""2.0""#)),
            ("id", raw("4")),
            ("method", raw(r#""resources/read""#)),
            ("params", obj(&[("uri", raw(r#""file:///reports/q3""#))])),
        ]),
        0 => obj(&[
            ("jsonrpc", raw(r#""2.0""#)),
            ("id", raw(r#""a""#)),
            ("method", raw(r#""initialize""#)),
            ("params", obj(&[("capabilities", obj(&[]))])),
        ]),
        1 => obj(&[
            ("jsonrpc", raw(r#""2.0""#)),
            ("id", raw("7")),
            ("result", obj(&[])),
        ]),
        _ => call,
    }
}

/// Values that mean something else for the key they are given to.
fn conflicting(key: &str, rng: &mut Rng) -> Node {
    let folded = key
        .to_lowercase()
        .replace('\u{17f}', "s")
        .replace('\u{212a}', "k");
    match folded.as_str() {
        "method" => raw(rng.pick(&[
            r#""tools/call""#,
            r#""initialize""#,
            r#""tools/list""#,
            r#""ping""#,
        ])),
        "name" => raw(rng.pick(&[r#""drop_table""#, r#""run_query""#, r#""""#])),
        "jsonrpc" => raw(rng.pick(&[r#""2.0""#, r#""1.0""#])),
        "id" => raw(rng.pick(&["2", r#""b""#, "null"])),
        "params" => obj(&[
            ("name", raw(r#""drop_table""#)),
            ("arguments", obj(&[("sql", raw(r#""drop table x""#))])),
        ]),
        "uri" => raw(rng.pick(&[r#""file:///etc/shadow""#, r#""file:///reports/q3""#])),
        "arguments" => obj(&[("sql", raw(r#""drop table x""#)), ("limit", raw("100000"))]),
        _ => raw(rng.pick(&[r#""admin""#, "1000", "null", r#"{"x":1}"#, "true"])),
    }
}

/// Another spelling of `key` that some decoder may match to it.
fn respell(key: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = key.chars().collect();
    match rng.below(7) {
        0 => key.to_uppercase(),
        1 => {
            let mut s: String = chars[..1].iter().flat_map(|c| c.to_uppercase()).collect();
            s.extend(&chars[1..]);
            s
        }
        2 => chars
            .iter()
            .map(|c| {
                if rng.below(2) == 0 {
                    c.to_ascii_uppercase()
                } else {
                    *c
                }
            })
            .collect(),
        3 if key.contains('s') => key.replacen('s', "\u{17f}", 1),
        4 if key.contains('k') => key.replacen('k', "\u{212a}", 1),
        5 => {
            // One character as a \u escape, upper or lower case.
            let i = rng.below(chars.len());
            let c = if rng.below(2) == 0 {
                chars[i]
            } else {
                chars[i].to_ascii_uppercase()
            };
            let mut s: String = chars[..i].iter().collect();
            s.push_str(&format!("\\u{:04x}", c as u32));
            s.extend(&chars[i + 1..]);
            s
        }
        _ => key.to_owned(),
    }
}

/// Applies one key mutation to `fields`.
fn mutate_fields(fields: &mut Vec<(String, Node)>, rng: &mut Rng) {
    if fields.is_empty() {
        fields.push(("limit".into(), raw("1")));
    }
    let i = rng.below(fields.len());
    let key = fields[i].0.clone();
    let twin = (respell(&key, rng), conflicting(&key, rng));
    match rng.below(4) {
        // Respell the key itself (the exact spelling disappears).
        0 => fields[i].0 = twin.0,
        // A twin after the original, or before it.
        1 => fields.insert(i + 1, twin),
        2 => fields.insert(i, twin),
        // An exact duplicate with another value, at the end.
        _ => fields.push((key.clone(), conflicting(&key, rng))),
    }
}

/// The objects of `node` at any depth, in document order.
fn count_objects(node: &Node) -> usize {
    match node {
        Node::Obj(f) => 1 + f.iter().map(|(_, v)| count_objects(v)).sum::<usize>(),
        Node::Arr(items) => items.iter().map(count_objects).sum(),
        Node::Raw(_) => 0,
    }
}

fn mutate_nth(node: &mut Node, n: &mut usize, rng: &mut Rng) -> bool {
    match node {
        Node::Obj(fields) => {
            if *n == 0 {
                mutate_fields(fields, rng);
                return true;
            }
            *n -= 1;
            fields.iter_mut().any(|(_, v)| mutate_nth(v, n, rng))
        }
        Node::Arr(items) => items.iter_mut().any(|v| mutate_nth(v, n, rng)),
        Node::Raw(_) => false,
    }
}

/// `count` generated bodies from `seed`.
pub fn bodies(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut msg = base(&mut rng);
            for _ in 0..1 + rng.below(2) {
                let mut n = rng.below(count_objects(&msg));
                mutate_nth(&mut msg, &mut n, &mut rng);
            }
            let node = match rng.below(4) {
                0 => Node::Arr(vec![base(&mut rng), msg]),
                1 => Node::Arr(vec![msg, base(&mut rng)]),
                _ => msg,
            };
            let mut out = String::new();
            node.render(&mut out);
            out.into_bytes()
        })
        .collect()
}
