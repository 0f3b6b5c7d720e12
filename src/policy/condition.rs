//! The principal test a policy's first condition starts with, read from the
//! policy's source text (for the index, [`super::index`]).
//!
//! Cedar evaluates a policy as its scope, then its conditions in order, and
//! `&&` short-circuits. So when a policy's first condition is
//! `when { principal in E && ... }` (or `principal == E`), with `E` an entity
//! literal and no `||` at the top of that condition, a request whose
//! principal is neither `E` nor in `E` stops there: the policy is neither
//! satisfied nor erroring. Reading Cedar's own JSON form of every policy
//! would tell the same but re-parses each policy (about 0.5 ms each), so the
//! text is read with a small tokenizer; anything it does not recognise
//! exactly gives `None` (the policy then counts for every principal).

use std::str::FromStr;

use cedar_policy::EntityUid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Str,
    /// `::`, `&&`, `||`, `==` and other two-character operators.
    Op(&'a str),
    Punct(u8),
}

/// Cedar tokens with their byte spans; `None` on text it cannot split
/// (an unterminated string).
fn tokens(src: &str) -> Option<Vec<(Tok<'_>, usize, usize)>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            // Cedar ends a comment at `\n` or `\r`.
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            i += 1;
            out.push((Tok::Str, start, i));
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(src.get(start..i)?), start, i));
        } else if let Some(op) = src
            .get(i..i + 2)
            .filter(|s| ["::", "&&", "||", "==", "!=", "<=", ">="].contains(s))
        {
            i += 2;
            out.push((Tok::Op(op), start, i));
        } else {
            i += 1;
            out.push((Tok::Punct(c), start, i));
        }
    }
    Some(out)
}

/// The policy text as Cedar reads it for searching: comments and
/// whitespace gone, one space kept between adjacent words (`has b`).
/// `None` when the text cannot be split (an unterminated string).
pub fn normalized(text: &str) -> Option<String> {
    let t = tokens(text)?;
    let mut out = String::with_capacity(text.len());
    let mut prev_word = false;
    for (tok, a, b) in &t {
        let word = matches!(tok, Tok::Ident(_) | Tok::Str);
        if word && prev_word {
            out.push(' ');
        }
        let raw = text.get(*a..*b)?;
        match tok {
            // `"argu\u{6d}ents"` is `"arguments"`.
            Tok::Str => match unescape(raw.get(1..raw.len() - 1)?) {
                Some(v) => {
                    out.push('"');
                    out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\""));
                    out.push('"');
                }
                None => out.push_str(raw),
            },
            _ => out.push_str(raw),
        }
        prev_word = word;
    }
    Some(out)
}

/// A Cedar string literal's content with its escapes (`\n \r \t \0 \\ \" \'
/// \u{hex}`) resolved; `None` on an escape Cedar would refuse.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Index just past the bracket that closes the one at `open`.
fn skip_group(t: &[(Tok<'_>, usize, usize)], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, (tok, _, _)) in t.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(b')' | b']' | b'}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The entity `E` of a policy whose first condition is `when { principal in
/// E ... }` or `when { principal == E ... }` as its leftmost `&&` operand.
pub fn first_condition_principal(text: &str) -> Option<EntityUid> {
    let t = tokens(text)?;
    let tok = |k: usize| t.get(k).map(|x| x.0);
    let mut k = 0;
    // Annotations: `@name` or `@name("...")`.
    while tok(k) == Some(Tok::Punct(b'@')) {
        k += 2;
        if tok(k) == Some(Tok::Punct(b'(')) {
            k = skip_group(&t, k)?;
        }
    }
    if !matches!(tok(k), Some(Tok::Ident("permit" | "forbid"))) {
        return None;
    }
    k = skip_group(&t, k + 1)?;
    if tok(k) != Some(Tok::Ident("when")) || tok(k + 1) != Some(Tok::Punct(b'{')) {
        return None;
    }
    let body_end = skip_group(&t, k + 1)?;
    k += 2;
    if tok(k) != Some(Tok::Ident("principal"))
        || !matches!(tok(k + 1), Some(Tok::Ident("in") | Tok::Op("==")))
    {
        return None;
    }
    k += 2;
    // An entity literal: Name (:: Name)* :: "id".
    let lit_start = t.get(k)?.1;
    loop {
        match (tok(k), tok(k + 1), tok(k + 2)) {
            (Some(Tok::Ident(_)), Some(Tok::Op("::")), Some(Tok::Str)) => {
                k += 3;
                break;
            }
            (Some(Tok::Ident(_)), Some(Tok::Op("::")), Some(Tok::Ident(_))) => k += 2,
            _ => return None,
        }
    }
    let lit_end = t.get(k - 1)?.2;
    if !matches!(tok(k), Some(Tok::Op("&&") | Tok::Punct(b'}'))) {
        return None;
    }
    // `principal in E && a || b` is `(principal in E && a) || b`: no `||`
    // may stand at the top of the condition.
    let mut depth = 0usize;
    for (tok, _, _) in t.get(k..body_end - 1)? {
        match tok {
            Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(b')' | b']' | b'}') => depth = depth.checked_sub(1)?,
            Tok::Op("||") if depth == 0 => return None,
            Tok::Ident("if" | "then" | "else") if depth == 0 => return None,
            _ => {}
        }
    }
    EntityUid::from_str(text.get(lit_start..lit_end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Option<String> {
        first_condition_principal(text).map(|u| u.to_string())
    }

    #[test]
    fn reads_the_leading_principal_test() {
        let p = r#"@id("a") @message("m; (x)") forbid (principal, action, resource == McpServer::"s")
            when { principal in Group::"blocked-1" && context.surface.environment == "prod" };"#;
        assert_eq!(first(p).as_deref(), Some(r#"Group::"blocked-1""#));
        let p =
            r#"permit (principal is User, action, resource) when { principal == User::"a\"b" };"#;
        assert_eq!(first(p).as_deref(), Some(r#"User::"a\"b""#));
        let p = "permit(principal,action,resource)when{principal in Ns::Group::\"g\"&&true};";
        assert_eq!(first(p).as_deref(), Some(r#"Ns::Group::"g""#));
    }

    #[test]
    fn anything_else_counts_for_every_principal() {
        for p in [
            // `||` at the top: other principals can satisfy it.
            r#"permit (principal, action, resource) when { principal in Group::"g" && true || true };"#,
            r#"permit (principal, action, resource) when { principal in Group::"g" || true };"#,
            // Not the first thing evaluated.
            r#"permit (principal, action, resource) when { true && principal in Group::"g" };"#,
            r#"permit (principal, action, resource) unless { true } when { principal in Group::"g" };"#,
            r#"permit (principal, action, resource) unless { principal in Group::"g" };"#,
            // Not an entity literal, or more follows it.
            r#"permit (principal, action, resource) when { principal in resource.owner_group };"#,
            r#"permit (principal, action, resource) when { principal in [Group::"g"] };"#,
            r#"permit (principal, action, resource) when { principal in Group::"g".x };"#,
            r#"permit (principal, action, resource) when { principal in Group::"g" == true };"#,
            r#"permit (principal, action, resource) when { principal != User::"u" };"#,
            r#"permit (principal, action, resource) when { !(principal in Group::"g") };"#,
            r#"permit (principal, action, resource);"#,
            // A comment is not code.
            "permit (principal, action, resource) // when { principal in Group::\"g\" }\n;",
        ] {
            assert_eq!(first(p), None, "{p}");
        }
    }

    #[test]
    fn a_carriage_return_ends_a_comment_as_in_cedar() {
        let p = "forbid (principal, action, resource) when { principal in Group::\"g\" // x\r|| true\n};";
        assert_eq!(first(p), None);
        assert_eq!(
            normalized("when { context // c\r. arguments [ \"a\" ] has b\n}").as_deref(),
            Some("when{context.arguments[\"a\"]has b}")
        );
    }

    #[test]
    fn a_bracket_inside_a_string_does_not_confuse_the_scope() {
        let p = r#"@message("a ) { b") permit (principal, action, resource == Tool::"s/t)")
            when { principal in Group::"g)" && context.mcp_method == "||" };"#;
        assert_eq!(first(p).as_deref(), Some(r#"Group::"g)""#));
    }
}
