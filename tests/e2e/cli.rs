//! The `mcp-authz` command line: `dev-token` mints usable tokens, `serve`
//! stops cleanly on SIGTERM.

use std::process::Command;

use crate::harness::authz::AUTHZ_BIN;
use crate::harness::{Authz, AuthzOptions, Stack, repo_path};
use crate::invalid_tokens::assert_invalid_token;

/// Runs `mcp-authz dev-token <args>` from the repository root; returns the token.
fn dev_token(extra: &[&str]) -> String {
    let out = Command::new(AUTHZ_BIN)
        .args(["dev-token", "--user", "alice", "--groups", "ads-eng,eng"])
        .args(["--business-groups", "ads", "--surface", "ai-chat"])
        .args(extra)
        .current_dir(repo_path(""))
        .output()
        .expect("run mcp-authz dev-token");
    assert!(
        out.status.success(),
        "dev-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf-8 token")
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "dev-token printed `{token}`");
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_token_from_cli_is_accepted_through_envoy() {
    let stack = Stack::quickstart().await;
    let reply = stack.call_knowledge(&dev_token(&[])).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-user"), ["alice"]);
    assert_eq!(seen.all("x-forwarded-groups"), ["ads-eng,eng"]);
    assert_eq!(seen.all("x-forwarded-business-groups"), ["ads"]);
    assert_eq!(seen.all("x-forwarded-surface"), ["ai-chat"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_dev_token_from_cli_is_denied() {
    let stack = Stack::quickstart().await;
    assert_invalid_token(&stack, &dev_token(&["--expires-in", "-5m"])).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_exits_zero_on_sigterm() {
    let mut authz = Authz::start(&AuthzOptions::default()).await;
    let status = authz.terminate();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        authz.log_tail()
    );
}
