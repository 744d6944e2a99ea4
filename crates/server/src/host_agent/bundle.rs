//! The OCI runtime bundle of a site (`config.json` beside `rootfs`) and its hand-off to an OCI runtime.
//!
//! `config.json` follows the OCI runtime spec 1.0: the process is the image's `Entrypoint` + `Cmd`, with its `Env`,
//! `WorkingDir` and numeric `User`; the usual mounts and namespaces of a container. The runtime (crun, runc or
//! youki) is run as `<runtime> run --bundle <dir> --detach <id>` after deleting a previous container of that id.

use std::path::Path;

use serde_json::{json, Value};

/// The container ID of a site: the bundle directory's name (a UUID), stable for the site's life.
fn container_id(directory: &Path) -> String {
    format!("berth-{}", directory.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

fn strings(value: &Value) -> Vec<Value> {
    value
        .as_array()
        .map(|a| a.iter().filter(|v| v.is_string()).cloned().collect())
        .unwrap_or_default()
}

/// `config.json` for an image config (`{"config": {"Entrypoint", "Cmd", "Env", "WorkingDir", "User"}}`).
pub fn runtime_config(image_config: &Value, site_id: &str) -> Value {
    let config = &image_config["config"];
    let mut args = strings(&config["Entrypoint"]);
    args.extend(strings(&config["Cmd"]));
    if args.is_empty() {
        args.push(json!("/bin/sh"));
    }
    let mut env = strings(&config["Env"]);
    if !env.iter().any(|v| v.as_str().is_some_and(|s| s.starts_with("PATH="))) {
        env.push(json!("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    }
    let cwd = config["WorkingDir"].as_str().filter(|s| s.starts_with('/')).unwrap_or("/");
    // Only numeric users can be resolved without reading the image's /etc/passwd.
    let user = config["User"].as_str().unwrap_or("");
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u.parse::<u32>().unwrap_or(0), g.parse::<u32>().unwrap_or(0)),
        None => (user.parse::<u32>().unwrap_or(0), 0),
    };
    let hostname = site_id.rsplit('/').next().unwrap_or("site").to_ascii_lowercase();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "noNewPrivileges": true,
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"],
                "effective": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"],
                "permitted": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"],
            },
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "annotations": {"com.berth.site": site_id},
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}

/// Hands the bundle in `directory` to `runtime`; returns the site's run state and a log line.
pub async fn run(runtime: &Path, directory: &Path, site_id: &str) -> (&'static str, String) {
    let id = container_id(directory);
    // A previous container of this site (an earlier pull) goes first; its absence is not an error.
    let _ = tokio::process::Command::new(runtime).args(["delete", "--force", &id]).output().await;
    let log = match std::fs::File::create(directory.join("container.log")) {
        Ok(file) => file,
        Err(e) => {
            return (
                "Failed",
                format!("runtime {}: cannot create the container log: {e}", runtime.display()),
            )
        }
    };
    let stderr = match log.try_clone() {
        Ok(file) => file,
        Err(e) => return ("Failed", format!("runtime {}: {e}", runtime.display())),
    };
    let status = tokio::process::Command::new(runtime)
        .arg("run")
        .arg("--bundle")
        .arg(directory)
        .arg("--detach")
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .status()
        .await;
    match status {
        Ok(status) if status.success() => {
            tracing::info!(site = %site_id, container = %id, "container started");
            ("Running", format!("container {id} started by {}", runtime.display()))
        }
        Ok(status) => (
            "Failed",
            format!(
                "runtime {} could not start container {id} ({status}); see {}",
                runtime.display(),
                directory.join("container.log").display()
            ),
        ),
        Err(e) => ("Failed", format!("runtime {} could not be run: {e}", runtime.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_comes_from_the_image_config() {
        let image = json!({"config": {"Entrypoint": ["/app"], "Cmd": ["--port", "80"], "Env": ["A=1"],
            "WorkingDir": "/srv", "User": "1000:1001"}});
        let config = runtime_config(
            &image,
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/App1",
        );
        assert_eq!(config["process"]["args"], json!(["/app", "--port", "80"]));
        assert_eq!(config["process"]["cwd"], "/srv");
        assert_eq!(config["process"]["user"], json!({"uid": 1000, "gid": 1001}));
        assert_eq!(config["hostname"], "app1");
        assert!(config["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH=")));
        assert_eq!(config["root"]["path"], "rootfs");
    }
}
