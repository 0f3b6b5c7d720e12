//! Policies and registry mounted as two Kubernetes ConfigMap volumes and
//! updated the way the kubelet updates them (a new timestamped directory, a
//! `..data_tmp` symlink renamed over `..data`, the old directory removed):
//! each change decides Checks within the reload interval, and a broken
//! update leaves the last good policies deciding while `/readyz` names it.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::grpc_check::{CheckInput, CheckOutcome, check};
use crate::harness::policy_files::{REGISTRY, SCHEMA, shipped};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{Authz, AuthzOptions, MCP_BODY, PolicySources};

/// `reload.interval` of the test: a change must decide within it (plus [`SLACK`]).
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Loading the new snapshot, one Check and the 50 ms poll step.
const SLACK: Duration = Duration::from_millis(500);
/// How long a test waits for anything before it reports what it saw.
const GIVE_UP: Duration = Duration::from_secs(10);

const MAINTENANCE: &str = r#"@id("knowledge-closed-for-maintenance")
@message("{server} is closed for maintenance")
forbid (principal, action, resource == McpServer::"knowledge");
"#;
const BROKEN: &str = "permit (principal, action, resource) when { principal.";
const PRESTO_GATE: &str = "approved_business_groups: [ads, finance, infra]";

/// A ConfigMap volume as the kubelet lays it out: `..<timestamp>/` holds the
/// files, `..data` points at it, and every key is a symlink `key -> ..data/key`.
struct ConfigMapVolume {
    dir: PathBuf,
    files: BTreeMap<String, String>,
    updates: u32,
}

impl ConfigMapVolume {
    fn create(dir: PathBuf, files: BTreeMap<String, String>) -> Self {
        std::fs::create_dir(&dir).expect("mkdir volume");
        let mut volume = ConfigMapVolume {
            dir,
            files: BTreeMap::new(),
            updates: 0,
        };
        volume.update(files);
        volume
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The kubelet's atomic writer: write the new timestamped directory,
    /// point `..data_tmp` at it, rename it over `..data`, link new keys,
    /// unlink removed keys, remove the old directory.
    fn update(&mut self, files: BTreeMap<String, String>) {
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let stamp = format!(
            "..2026_11_30_10_{:02}_00.{:03}",
            self.updates,
            123 + self.updates
        );
        self.updates += 1;
        let version = self.dir.join(&stamp);
        std::fs::create_dir(&version).expect("mkdir timestamped dir");
        for (key, text) in &files {
            std::fs::write(version.join(key), text).expect("write payload");
        }
        let tmp = self.dir.join("..data_tmp");
        symlink(&stamp, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("rename ..data_tmp over ..data");
        for key in files.keys() {
            let link = self.path(key);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(key), &link).expect("symlink key");
            }
        }
        for key in self.files.keys().filter(|k| !files.contains_key(*k)) {
            std::fs::remove_file(self.path(key)).expect("unlink removed key");
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove old timestamped dir");
        }
        self.files = files;
    }
}

fn token(sub: &str, business_group: &str) -> String {
    let mut claims = demo_claims(sub);
    claims["business_groups"] = json!([business_group]);
    demo_token(&claims)
}

/// `allow`, or `deny` and the determining policies (or the reason).
fn decision(o: &CheckOutcome) -> String {
    if o.code == 0 {
        return "allow".into();
    }
    let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
    let mut policies: Vec<&str> = body["error"]["data"]["policies"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    policies.sort_unstable();
    if policies.is_empty() {
        format!("deny {} {}", o.status, body["error"]["data"]["reason"])
    } else {
        format!("deny {}", policies.join(","))
    }
}

/// One `tools/list` Check of `server` with `token`, straight to mcp-authz.
async fn decide(authz: &Authz, token: &str, server: &str) -> String {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let path = format!("/mcp/{server}");
    let outcome = check(
        authz.grpc_port,
        &CheckInput {
            path: &path,
            headers: &headers,
            body: MCP_BODY.as_bytes(),
            context_extensions: &[("mcp_server", server)],
        },
    )
    .await;
    decision(&outcome)
}

/// How long after `since` the Check first got `want`; panics after [`GIVE_UP`].
async fn decided_after(
    authz: &Authz,
    token: &str,
    server: &str,
    want: &str,
    since: Instant,
) -> Duration {
    loop {
        let got = decide(authz, token, server).await;
        if got == want {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < GIVE_UP,
            "{server}: still `{got}`, not `{want}`, {GIVE_UP:?} after the swap\n{}",
            authz.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_within_interval(what: &str, took: Duration) {
    assert!(
        took <= RELOAD_INTERVAL + SLACK,
        "{what} decided {took:?} after the swap; reload.interval is {RELOAD_INTERVAL:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn configmap_swaps_decide_within_the_reload_interval_and_a_broken_one_keeps_the_last_good() {
    let root = tempfile::tempdir().expect("tempdir");
    let all = shipped();
    let (registry_files, policy_files): (BTreeMap<_, _>, BTreeMap<_, _>) =
        all.into_iter().partition(|(k, _)| k == REGISTRY);
    let mut policies = ConfigMapVolume::create(root.path().join("policies"), policy_files);
    let mut registry = ConfigMapVolume::create(root.path().join("registry"), registry_files);
    let sources = PolicySources {
        schema: Some(policies.path(SCHEMA)),
        policy_files: Some(vec![policies.dir.clone()]),
        registry_files: Some(vec![registry.path(REGISTRY)]),
        reload_interval: Some("1s"),
    };
    let authz = Authz::start_with(&AuthzOptions::default(), &sources).await;
    let alice = token("alice", "ads");
    let mallory = token("mallory", "marketing");
    assert_eq!(decide(&authz, &alice, "knowledge").await, "allow");
    assert_eq!(
        decide(&authz, &mallory, "presto").await,
        "deny business-group-gate"
    );
    let generation = |p: &Value| p["generation"].as_u64().unwrap_or(0);
    let start = generation(&authz.readyz().await.1["policies"]);

    // A policy added: a new key, so a new symlink beside the `..data` swap.
    let mut next = policies.files.clone();
    next.insert("maintenance.cedar".into(), MAINTENANCE.into());
    let swapped = Instant::now();
    policies.update(next);
    let took = decided_after(
        &authz,
        &alice,
        "knowledge",
        "deny knowledge-closed-for-maintenance",
        swapped,
    )
    .await;
    assert_within_interval("the added policy", took);

    // The registry volume: Presto opened to marketing.
    let mut next = registry.files.clone();
    let text = next.get_mut(REGISTRY).expect("registry");
    assert!(text.contains(PRESTO_GATE), "the shipped registry changed");
    *text = text.replace(
        PRESTO_GATE,
        "approved_business_groups: [ads, finance, infra, marketing]",
    );
    let swapped = Instant::now();
    registry.update(next);
    let took = decided_after(&authz, &mallory, "presto", "allow", swapped).await;
    assert_within_interval("the registry change", took);
    let good = authz
        .wait_policies("both reloads", |p| generation(p) == start + 2)
        .await;

    // A broken update that would also drop the maintenance policy: nothing of
    // it may apply, the last good policies keep deciding.
    let mut next = policies.files.clone();
    next.remove("maintenance.cedar");
    next.insert("broken.cedar".into(), BROKEN.into());
    policies.update(next);
    let failed = authz
        .wait_policies("the broken update's error", |p| !p["last_error"].is_null())
        .await;
    let error = failed["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("broken.cedar"),
        "/readyz error does not name the file: {failed}"
    );
    assert_eq!(failed["generation"], good["generation"], "{failed}");
    assert!(failed["reloads_failed"].as_u64() >= Some(1), "{failed}");
    for _ in 0..5 {
        assert_eq!(
            decide(&authz, &alice, "knowledge").await,
            "deny knowledge-closed-for-maintenance",
            "{}",
            authz.log_tail()
        );
        assert_eq!(decide(&authz, &mallory, "presto").await, "allow");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = authz.readyz().await;
    assert_eq!(status, 200, "the last good policies serve: {body}");

    // Fixed: the broken key removed, the shipped policies back.
    let fixed: BTreeMap<_, _> = shipped()
        .into_iter()
        .filter(|(k, _)| k != REGISTRY)
        .collect();
    let swapped = Instant::now();
    policies.update(fixed);
    let took = decided_after(&authz, &alice, "knowledge", "allow", swapped).await;
    assert_within_interval("the fix", took);
    let healed = authz
        .wait_policies("the error cleared", |p| p["last_error"].is_null())
        .await;
    assert_eq!(generation(&healed), start + 3, "{healed}");
}
