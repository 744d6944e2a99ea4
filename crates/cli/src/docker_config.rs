//! The credentials file container tools share: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//! docker, skopeo, podman and oras read `auths.<registry>.auth` = base64(`user:password`) from it, so
//! `berth acr login` stores the null-GUID user and a registry refresh token there, as `docker login` would after
//! `az acr login`. Other entries and settings in the file are kept; the file is written 0600 through a
//! temporary file and a rename.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn config_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(std::env::home_dir)
        .context("cannot find the home directory; set DOCKER_CONFIG")?;
    Ok(home.join(".docker").join("config.json"))
}

/// Sets `auths.<server>` in the file at `path` to `{"auth": base64(username:password)}`, keeping everything
/// else. A file that is not a JSON object is left alone and reported.
pub fn store_credential(path: &Path, server: &str, username: &str, password: &str) -> Result<()> {
    let mut config = match fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => bail!("`{}` is not a JSON object; not changing it", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
    };
    let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        bail!("`auths` in `{}` is not a JSON object; not changing it", path.display())
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths.insert(server.to_owned(), json!({ "auth": auth }));
    let mut text = serde_json::to_vec_pretty(&Value::Object(config))?;
    text.push(b'\n');
    write_private(path, &text)
}

/// Writes `contents` to `path` with mode 0600 through a temporary file in the same directory (created 0700
/// when missing), so readers never see half a file and the secret is never readable by others.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        set_mode(dir, 0o700)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file =
        options.open(&temporary).with_context(|| format!("writing `{}`", temporary.display()))?;
    file.write_all(contents).with_context(|| format!("writing `{}`", temporary.display()))?;
    file.sync_all().ok();
    set_mode(&temporary, 0o600)?;
    fs::rename(&temporary, path).with_context(|| format!("writing `{}`", path.display()))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting permissions of `{}`", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn credentials_are_added_and_replaced_keeping_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("config.json");
        store_credential(&path, "host:8443/acr", "u", "p").unwrap();
        assert_eq!(read(&path), json!({"auths": {"host:8443/acr": {"auth": "dTpw"}}}));
        fs::write(
            &path,
            r#"{"auths":{"other.example":{"auth":"eDp5"},"host:8443/acr":{"auth":"old","identitytoken":"t"}},"psFormat":"x"}"#,
        )
        .unwrap();
        store_credential(&path, "host:8443/acr", "u", "p2").unwrap();
        assert_eq!(
            read(&path),
            json!({"auths": {"other.example": {"auth": "eDp5"}, "host:8443/acr": {"auth": "dTpwMg=="}},
                   "psFormat": "x"})
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            let parent = fs::metadata(path.parent().unwrap()).unwrap();
            assert_eq!(parent.permissions().mode() & 0o777, 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn files_that_are_not_objects_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "[1]").unwrap();
        assert!(store_credential(&path, "s", "u", "p").is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "[1]");
        fs::write(&path, r#"{"auths":[]}"#).unwrap();
        assert!(store_credential(&path, "s", "u", "p").is_err());
        fs::write(&path, "  \n").unwrap();
        store_credential(&path, "s", "u", "p").unwrap();
        assert_eq!(read(&path), json!({"auths": {"s": {"auth": "dTpw"}}}));
    }
}
