//! Hand-written bodies for the differential test: every way of spelling a key
//! twice that the issue names, plus JSON edge cases decoders disagree on.

/// What the JSON-RPC spec and issue 8 say mcp-authz must do with a body,
/// independently of what any decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A valid MCP message every decoder reads the same way.
    Accept,
    /// A body that can be read two ways, or is not JSON.
    Refuse,
    /// No fixed answer: only the differential rule applies.
    Either,
}

/// One corpus entry.
pub struct Case {
    pub name: String,
    pub body: Vec<u8>,
    pub expect: Expect,
}

const CALL_PARAMS: &str = r#"{"name":"drop_table","arguments":{"table":"revenue"}}"#;

fn call(params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
}

fn args(arguments: &str) -> String {
    call(&format!(
        r#"{{"name":"run_query","arguments":{arguments}}}"#
    ))
}

/// The hand-written corpus.
pub fn hand_written() -> Vec<Case> {
    use Expect::*;
    let mut out = Vec::new();
    let mut add = |name: &str, body: String, expect: Expect| {
        out.push(Case {
            name: name.to_owned(),
            body: body.into_bytes(),
            expect,
        })
    };
    let p = CALL_PARAMS;

    // Valid messages: must stay accepted.
    add(
        "plain tools/call",
        args(r#"{"sql":"select 1","limit":10}"#),
        Accept,
    );
    add("initialize", r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#.into(), Accept);
    add(
        "notification",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
        Accept,
    );
    add(
        "client response",
        r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#.into(),
        Accept,
    );
    add(
        "tools/list",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#.into(),
        Accept,
    );
    add(
        "integer written 5.0 and 1e2",
        args(r#"{"limit":5.0,"rows":1e2}"#),
        Accept,
    );
    add(
        "escaped slash in method",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"t","arguments":{}}}"#
            .into(),
        Accept,
    );
    add("whitespace everywhere", " \n{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 ,\t\"method\" : \"tools/call\" , \"params\" : { \"name\" : \"t\" } }\r\n".into(), Accept);
    add(
        "same key in different objects",
        args(r#"{"a":{"x":1},"b":{"x":1},"name":"n"}"#),
        Accept,
    );
    add(
        "valid batch",
        format!(
            r#"[{},{{"jsonrpc":"2.0","method":"notifications/initialized"}}]"#,
            args(r#"{"sql":"s"}"#)
        ),
        Accept,
    );
    add(
        "nesting 20 deep in arguments",
        args(&format!("{}1{}", r#"{"a":"#.repeat(20), "}".repeat(20))),
        Accept,
    );

    // Issue 8, item 1: keys a Go server reads as another field.
    add(
        "issue example: response with Method",
        format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{}},"Method":"tools/call","params":{p}}}"#),
        Refuse,
    );
    add(
        "initialize then Method",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","Method":"tools/call","params":{p}}}"#
        ),
        Refuse,
    );
    add(
        "METHOD before method",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","method":"initialize","params":{p}}}"#
        ),
        Refuse,
    );
    add(
        "escaped capital M",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","\u004dethod":"tools/call","params":{p}}}"#
        ),
        Refuse,
    );
    add(
        "escaped exact duplicate",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","\u006dethod":"tools/call","params":{p}}}"#
        ),
        Refuse,
    );
    add(
        "exact duplicate method",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{p},"method":"initialize"}}"#
        ),
        Refuse,
    );
    add(
        "long s in params",
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","param{}":{p}}}"#,
            '\u{17f}'
        ),
        Refuse,
    );
    add(
        "long s in jsonrpc",
        format!(
            r#"{{"j{}onrpc":"1.0","jsonrpc":"2.0","id":1,"method":"tools/list"}}"#,
            '\u{17f}'
        ),
        Refuse,
    );
    add(
        "Params only",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"t"}}"#.into(),
        Refuse,
    );
    add(
        "params twice",
        call(&format!(
            r#"{{"name":"run_query","arguments":{{}}}},"params":{p}"#
        )),
        Refuse,
    );
    add(
        "ID twin",
        r#"{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/list"}"#.into(),
        Refuse,
    );
    add(
        "Result twin",
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Result":{"x":1}}"#.into(),
        Refuse,
    );
    add(
        "Error twin",
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"ERROR":{}}"#.into(),
        Refuse,
    );
    add(
        "Name twin",
        call(r#"{"name":"run_query","Name":"drop_table","arguments":{}}"#),
        Refuse,
    );
    add(
        "NAME only",
        call(r#"{"NAME":"drop_table","arguments":{}}"#),
        Refuse,
    );
    add(
        "name twice",
        call(r#"{"name":"run_query","arguments":{},"name":"drop_table"}"#),
        Refuse,
    );
    add(
        "Arguments twin",
        call(r#"{"name":"run_query","arguments":{"limit":1},"Arguments":{"limit":1000}}"#),
        Refuse,
    );
    add(
        "argument long s twin",
        call(&format!(
            r#"{{"name":"run_query","arguments":{{"limit":1}},"argument{}":{{"limit":1000}}}}"#,
            '\u{17f}'
        )),
        Refuse,
    );
    add(
        "_meta twin",
        call(r#"{"name":"t","_meta":{"progressToken":1},"_META":{"progressToken":2}}"#),
        Refuse,
    );

    // Inside the arguments policies read.
    add(
        "duplicate argument",
        args(r#"{"sql":"select 1","sql":"drop table x"}"#),
        Refuse,
    );
    add(
        "argument case twin",
        args(r#"{"limit":1,"Limit":1000}"#),
        Refuse,
    );
    add(
        "argument Kelvin twin",
        args(&format!(r#"{{"kind":"safe","{}ind":"admin"}}"#, '\u{212a}')),
        Refuse,
    );
    add(
        "argument long s twin",
        args(&format!(r#"{{"desk":"ads","de{}k":"finance"}}"#, '\u{17f}')),
        Refuse,
    );
    add(
        "nested duplicate in arguments",
        args(r#"{"options":{"mode":"read","mode":"write"}}"#),
        Refuse,
    );
    add(
        "duplicate in array in arguments",
        args(r#"{"rows":[{"id":1,"id":2}]}"#),
        Refuse,
    );

    // Not JSON, or JSON that decoders extend differently.
    add("NaN argument", args(r#"{"limit":NaN}"#), Refuse);
    add("Infinity argument", args(r#"{"limit":Infinity}"#), Refuse);
    add("-Infinity argument", args(r#"{"limit":-Infinity}"#), Refuse);
    add("trailing garbage", format!("{} x", args("{}")), Refuse);
    add(
        "two messages glued",
        format!("{}{}", args("{}"), args("{}")),
        Refuse,
    );
    add(
        "single quotes",
        r#"{'jsonrpc':'2.0','id':1,'method':'tools/list'}"#.into(),
        Refuse,
    );
    add(
        "trailing comma",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list",}"#.into(),
        Refuse,
    );
    add(
        "nesting 100 deep in arguments",
        args(&format!("{}1{}", "[".repeat(100), "]".repeat(100))),
        Refuse,
    );
    add(
        "batch with a smuggled Method",
        format!(
            r#"[{},{{"jsonrpc":"2.0","id":2,"method":"ping","Method":"tools/call","params":{p}}}]"#,
            args("{}")
        ),
        Refuse,
    );
    add(
        "batch with duplicate argument",
        format!(
            r#"[{{"jsonrpc":"2.0","id":1,"method":"ping"}},{}]"#,
            args(r#"{"sql":"a","sql":"b"}"#)
        ),
        Refuse,
    );

    add("UTF-8 BOM", format!("\u{feff}{}", args("{}")), Either);
    add(
        "lone surrogate in argument value",
        args(r#"{"sql":"\ud800"}"#),
        Either,
    );
    add(
        "lone surrogate in argument key",
        args(r#"{"\udc00":1}"#),
        Either,
    );
    add(
        "lone surrogate in tool name",
        call(r#"{"name":"run\ud800","arguments":{}}"#),
        Either,
    );
    add("number beyond f64", args(r#"{"limit":1e400}"#), Either);
    add(
        "integer beyond u64",
        args(r#"{"limit":123456789012345678901234567890}"#),
        Either,
    );
    add(
        "integer beyond i64 precision",
        args(r#"{"limit":922337203685477581}"#),
        Either,
    );
    add("negative zero", args(r#"{"limit":-0}"#), Either);
    add(
        "null arguments",
        call(r#"{"name":"t","arguments":null}"#),
        Either,
    );
    add(
        "null method",
        r#"{"jsonrpc":"2.0","id":1,"method":null}"#.into(),
        Either,
    );
    add(
        "params array on ping",
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}"#.into(),
        Either,
    );
    add(
        "escaped method key alone",
        r#"{"jsonrpc":"2.0","id":1,"\u006dethod":"tools/list"}"#.into(),
        Either,
    );
    add(
        "NUL in tool name",
        call(r#"{"name":"run\u0000query","arguments":{}}"#),
        Either,
    );
    add(
        "case-different tool name",
        call(r#"{"name":"RUN_QUERY","arguments":{}}"#),
        Either,
    );
    out.push(Case {
        name: "invalid UTF-8 in argument".into(),
        body: [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":""#.as_slice(),
            b"\xff\xfe\"}}}",
        ]
        .concat(),
        expect: Either,
    });
    out
}
