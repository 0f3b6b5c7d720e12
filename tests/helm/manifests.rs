//! Rendered chart manifests as JSON values, and a pod's volumes written to a
//! local directory the way the kubelet lays them out, so that the pod's own
//! commands run unchanged against them (paths under a local root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

/// The manifests of one `helm template`.
pub struct Rendered {
    pub docs: Vec<Value>,
}

impl Rendered {
    /// Splits `helm template` output into documents and parses each.
    pub fn parse(text: &str) -> Self {
        let mut docs = Vec::new();
        for doc in split_documents(text) {
            let v: Value = serde_saphyr::from_str(&doc)
                .unwrap_or_else(|e| panic!("rendered manifest is not YAML: {e}\n{doc}"));
            if !v.is_null() {
                docs.push(v);
            }
        }
        Self { docs }
    }

    /// `kind/name` of every document, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .docs
            .iter()
            .map(|d| format!("{}/{}", str_at(d, "/kind"), str_at(d, "/metadata/name")))
            .collect();
        k.sort();
        k
    }

    /// The document of `kind` named `name`, if rendered.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| str_at(d, "/kind") == kind && str_at(d, "/metadata/name") == name)
    }

    /// The only document of `kind`.
    pub fn one(&self, kind: &str) -> &Value {
        let all: Vec<&Value> = self
            .docs
            .iter()
            .filter(|d| str_at(d, "/kind") == kind)
            .collect();
        assert_eq!(all.len(), 1, "one {kind} expected in {:?}", self.kinds());
        all[0]
    }

    /// The Deployment's pod spec.
    pub fn pod_spec(&self) -> &Value {
        &self.one("Deployment")["spec"]["template"]["spec"]
    }

    /// The pod template's annotations.
    pub fn pod_annotations(&self) -> BTreeMap<String, String> {
        let a = &self.one("Deployment")["spec"]["template"]["metadata"]["annotations"];
        a.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every container of the pod, init containers first.
    pub fn containers(&self) -> Vec<&Value> {
        let spec = self.pod_spec();
        let mut all: Vec<&Value> = Vec::new();
        for key in ["initContainers", "containers"] {
            if let Some(list) = spec[key].as_array() {
                all.extend(list.iter());
            }
        }
        all
    }

    /// The container (or init container) named `name`.
    pub fn container(&self, name: &str) -> &Value {
        self.containers()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// `data` of the ConfigMap `name` (file name -> text).
    pub fn config_map(&self, name: &str) -> BTreeMap<String, String> {
        let cm = self
            .get("ConfigMap", name)
            .unwrap_or_else(|| panic!("no ConfigMap {name} in {:?}", self.kinds()));
        string_map(&cm["data"])
    }

    /// Decoded `data` of a rendered Secret `name`, if rendered.
    pub fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let s = self.get("Secret", name)?;
        Some(
            string_map(&s["data"])
                .into_iter()
                .map(|(k, v)| (k, B64.decode(v.trim()).expect("Secret data is base64")))
                .collect(),
        )
    }

    /// Writes the volumes `container` mounts under `root` (a mount at
    /// `/etc/x` lands at `root/etc/x`), ConfigMaps and Secrets in the
    /// kubelet's layout (see [`AtomicDir`]). Secrets the chart does not
    /// render come from `secrets` (Secret name -> key -> bytes).
    pub fn materialize(
        &self,
        root: &Path,
        container: &str,
        secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    ) -> BTreeMap<String, AtomicDir> {
        let spec = self.pod_spec();
        let volumes = spec["volumes"].as_array().expect("volumes");
        let mut dirs = BTreeMap::new();
        let mounts = self.container(container)["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for m in mounts {
            let name = m["name"].as_str().expect("mount name");
            let path = pod_path(root, m["mountPath"].as_str().expect("mountPath"));
            let vol = volumes
                .iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("mount {name} names no volume"));
            let files: BTreeMap<String, Vec<u8>> = if let Some(cm) = vol.get("configMap") {
                let cm_name = cm["name"].as_str().expect("configMap name");
                self.config_map(cm_name)
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect()
            } else if let Some(sec) = vol.get("secret") {
                let sec_name = sec["secretName"].as_str().expect("secretName");
                let data = self
                    .secret(sec_name)
                    .or_else(|| secrets.get(sec_name).cloned())
                    .unwrap_or_else(|| panic!("Secret {sec_name} is neither rendered nor given"));
                match sec["items"].as_array() {
                    Some(items) => items
                        .iter()
                        .map(|i| {
                            let key = i["key"].as_str().expect("item key");
                            let bytes = data
                                .get(key)
                                .unwrap_or_else(|| panic!("Secret {sec_name} has no key {key}"));
                            (
                                i["path"].as_str().expect("item path").to_owned(),
                                bytes.clone(),
                            )
                        })
                        .collect(),
                    None => data,
                }
            } else if vol.get("emptyDir").is_some() {
                std::fs::create_dir_all(&path).expect("emptyDir");
                continue;
            } else {
                panic!("volume {name}: unexpected kind {vol}");
            };
            dirs.insert(name.to_owned(), AtomicDir::create(&path, &files));
        }
        dirs
    }
}

/// `root` + an absolute pod path.
pub fn pod_path(root: &Path, path: &str) -> PathBuf {
    assert!(path.starts_with('/'), "{path} is not absolute");
    root.join(path.trim_start_matches('/'))
}

/// The string at a JSON pointer, or "".
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string data").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `helm template` output: documents start at a `---` line.
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// A ConfigMap or Secret volume as the kubelet's atomic writer lays it out:
/// the files in a timestamped `..<version>` directory, `..data` a symlink to
/// it, and each file a symlink `<name> -> ..data/<name>`. An update writes a
/// new version directory and swaps `..data` with one `rename`.
pub struct AtomicDir {
    dir: PathBuf,
    version: u32,
}

impl AtomicDir {
    /// Lays out `files` in `dir`.
    pub fn create(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Self {
        std::fs::create_dir_all(dir).expect("create volume dir");
        let mut d = Self {
            dir: dir.to_owned(),
            version: 0,
        };
        d.update(files);
        d
    }

    /// Replaces the content with `files`, as the kubelet does when the
    /// ConfigMap changes.
    pub fn update(&mut self, files: &BTreeMap<String, Vec<u8>>) {
        let old = self.version_dir();
        self.version += 1;
        let new = self.version_dir();
        std::fs::create_dir(self.dir.join(&new)).expect("version dir");
        for (name, bytes) in files {
            std::fs::write(self.dir.join(&new).join(name), bytes).expect("write file");
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).expect("symlink ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        for name in files.keys() {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link)
                    .expect("file symlink");
            }
        }
        // Files no longer in the volume, then the old version.
        for entry in std::fs::read_dir(&self.dir).expect("read volume dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !files.contains_key(&name) {
                std::fs::remove_file(entry.path()).expect("remove stale link");
            }
        }
        if self.version > 1 {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove old version");
        }
    }

    fn version_dir(&self) -> String {
        format!("..2026_01_01_00_00_00.{:09}", self.version)
    }
}
