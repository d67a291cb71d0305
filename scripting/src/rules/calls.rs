//! Every function and method a config script calls must exist before its rules load: a rule
//! that calls `a.restrat("x")` is refused by `up` at its line and column, instead of failing
//! each time it runs (and being disabled) once the daemon has taken it.

use std::collections::HashSet;

use rhai::{AST, ASTNode, Engine, Expr, Stmt};

use crate::Diagnostic;

/// Functions the engine knows without registering them.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "eval",
];

/// The name in one of `Engine::gen_fn_signatures`' lines (`restart(a: AppRef, ...) -> ...`).
fn name_of(signature: &str) -> Option<&str> {
    let text = signature.strip_prefix("fn ").unwrap_or(signature);
    text.split_once('(').map(|(name, _)| name.trim())
}

/// Each call in `ast` (the script merged with the standard rules, as `declare` compiled
/// it) to a function the engine, with its registered functions and the AST's own, does not
/// have.
pub(crate) fn check(engine: &Engine, ast: &AST) -> Result<(), Vec<Diagnostic>> {
    let signatures = engine.gen_fn_signatures(true);
    let mut known: HashSet<&str> = signatures.iter().filter_map(|s| name_of(s)).collect();
    known.extend(KEYWORDS);
    let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    known.extend(own.iter().map(String::as_str));
    let mut problems = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) if call.op_token.is_none() => {
                Some((call, pos, "function"))
            }
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) if call.op_token.is_none() => {
                Some((call, pos, "function"))
            }
            Some(ASTNode::Expr(Expr::MethodCall(call, pos))) => Some((call, pos, "method")),
            _ => None,
        };
        if let Some((call, pos, kind)) = call
            && !known.contains(call.name.as_str())
        {
            let (line, column) = super::at(*pos);
            let near = crate::suggest(call.name.as_str(), known.iter().copied());
            problems.push(Diagnostic {
                line,
                column,
                message: format!(
                    "no {kind} `{}`{}",
                    call.name,
                    near.map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default()
                ),
            });
        }
        true
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_lines_give_their_names() {
        assert_eq!(
            name_of("restart(a: &mut AppRef, why: &str)"),
            Some("restart")
        );
        assert_eq!(name_of("fn len(s: String) -> i64"), Some("len"));
    }
}
