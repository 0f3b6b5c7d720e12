//! A private, changeable copy of the shipped policies and registry, laid out
//! either as plain files edited in place or as a Kubernetes ConfigMap volume
//! (`..data` symlink swapped atomically to a new version directory).

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::authz::PolicySources;
use super::repo_path;

/// Name of the registry file in every layout.
pub const REGISTRY: &str = "registry.yaml";
/// Name of the schema file in every layout.
pub const SCHEMA: &str = "schema.cedarschema";

/// The shipped sources as a flat map, file name → content: the schema, every
/// `policies/quickstart/*.cedar` and `examples/quickstart/registry.yaml`.
pub fn shipped() -> BTreeMap<String, String> {
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut files = BTreeMap::new();
    files.insert(
        SCHEMA.into(),
        read(&repo_path("policies/schema.cedarschema")),
    );
    files.insert(
        REGISTRY.into(),
        read(&repo_path("examples/quickstart/registry.yaml")),
    );
    for entry in
        std::fs::read_dir(repo_path("policies/quickstart")).expect("read policies/quickstart")
    {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "cedar") {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            files.insert(name, read(&path));
        }
    }
    files
}

/// Writes `content` to `path` through a sibling temporary file and a rename,
/// as editors and `kubectl cp` do: a reader sees the old or the new file, never half.
pub fn write_atomic(path: &Path, content: &str) {
    let name = path.file_name().expect("file name").to_string_lossy();
    // Not `.cedar` nor `.yaml`: directory expansion must not pick it up.
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, content).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// How the files sit on disk and how a change reaches them.
pub enum Layout {
    /// `policies/{schema.cedarschema, quickstart/*.cedar, tests/}` and
    /// `registry.yaml`, as copied from the repository; each change is one
    /// atomic rename, applied one file after the other.
    InPlace,
    /// One ConfigMap-style directory: `..<version>/` holds the files,
    /// `..data` points at the current version, each file is a symlink through
    /// `..data`. A change is one new version and one atomic `..data` swap.
    ConfigMap,
}

/// The copy mcp-authz reads; removed on drop.
pub struct PolicyFiles {
    layout: Layout,
    dir: TempDir,
    files: BTreeMap<String, String>,
    version: u32,
}

impl PolicyFiles {
    /// Copies the shipped sources into a fresh temporary directory.
    pub fn new(layout: Layout) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut me = PolicyFiles {
            layout,
            dir,
            files: BTreeMap::new(),
            version: 0,
        };
        match me.layout {
            Layout::InPlace => {
                std::fs::create_dir_all(me.root().join("policies/quickstart")).expect("mkdir");
                std::fs::create_dir_all(me.root().join("policies/tests")).expect("mkdir");
                let changes: Vec<(String, Option<String>)> =
                    shipped().into_iter().map(|(k, v)| (k, Some(v))).collect();
                me.apply_owned(changes);
            }
            Layout::ConfigMap => {
                me.files = shipped();
                me.publish();
            }
        }
        me
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where file `name` is read from.
    pub fn path(&self, name: &str) -> PathBuf {
        match self.layout {
            Layout::ConfigMap => self.root().join(name),
            Layout::InPlace if name == REGISTRY => self.root().join(REGISTRY),
            Layout::InPlace if name == SCHEMA => self.root().join("policies").join(SCHEMA),
            Layout::InPlace => self.root().join("policies/quickstart").join(name),
        }
    }

    /// The config settings that make mcp-authz read this copy every `interval`.
    pub fn sources(&self, interval: &'static str) -> PolicySources {
        let policy_dir = match self.layout {
            Layout::InPlace => self.root().join("policies/quickstart"),
            Layout::ConfigMap => self.root().to_path_buf(),
        };
        PolicySources {
            schema: Some(self.path(SCHEMA)),
            policy_files: Some(vec![policy_dir]),
            registry_files: Some(vec![self.path(REGISTRY)]),
            reload_interval: Some(interval),
        }
    }

    /// The current content of `name`.
    pub fn get(&self, name: &str) -> &str {
        self.files
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no file `{name}`"))
    }

    /// Writes (`Some`) or removes (`None`) files, in order.
    pub fn apply(&mut self, changes: &[(&str, Option<&str>)]) {
        let owned = changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)));
        self.apply_owned(owned.collect());
    }

    fn apply_owned(&mut self, changes: Vec<(String, Option<String>)>) {
        for (name, content) in changes {
            match &content {
                Some(c) => self.files.insert(name.clone(), c.clone()),
                None => self.files.remove(&name),
            };
            if let Layout::InPlace = self.layout {
                let path = self.path(&name);
                match content {
                    Some(c) => write_atomic(&path, &c),
                    None => std::fs::remove_file(&path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                }
            }
        }
        if let Layout::ConfigMap = self.layout {
            self.publish();
        }
    }

    /// What the kubelet's atomic writer does: new version directory, swap
    /// `..data`, add symlinks for new keys, remove stale keys and the old version.
    fn publish(&mut self) {
        self.version += 1;
        let old = std::fs::read_link(self.root().join("..data")).ok();
        let version = format!("..v{:04}", self.version);
        let vdir = self.root().join(&version);
        std::fs::create_dir(&vdir).expect("mkdir version");
        for (name, content) in &self.files {
            std::fs::write(vdir.join(name), content).expect("write version file");
        }
        let tmp_link = self.root().join("..data_tmp");
        symlink(&version, &tmp_link).expect("symlink ..data_tmp");
        std::fs::rename(&tmp_link, self.root().join("..data")).expect("swap ..data");
        for name in self.files.keys() {
            let link = self.root().join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), &link).expect("symlink key");
            }
        }
        for entry in std::fs::read_dir(self.root()).expect("read configmap dir") {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !self.files.contains_key(&name) {
                std::fs::remove_file(entry.path()).expect("remove stale key");
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.root().join(old)).expect("remove old version");
        }
    }
}
