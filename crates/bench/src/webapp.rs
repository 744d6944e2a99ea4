//! The web-app scenario (`berth-bench --webapp`): time from `POST .../sites/{name}/restart` to the site's
//! 100 MiB image pulled, verified and unpacked by the host agent, next to the time to download the same layer.
//!
//! Each repetition starts `berth serve` on a fresh data directory (HTTPS, as it runs by default), signs in as the
//! bootstrap owner, creates the group `bench`, the registry `benchacr` and a plan, pushes an image whose one
//! gzip layer holds `--webapp-mib` MiB of incompressible files (so the compressed size is the image size), creates
//! the site `benchapp` with a system-assigned identity that pulls `benchacr/big:v1` with that identity, and grants
//! the identity AcrPull on the registry through the role-assignment API, exactly as the first source document
//! does. After the first pull succeeds, it restarts the site `--webapp-restarts` times, each time timing the
//! restart request to the moment the site's `imagePull` reports `Succeeded` with a new `lastAttempt` (polled every
//! 5 ms on one keep-alive connection). The ceiling is a plain `GET` of the layer blob through `/v2` with a bearer
//! token, on the same listener, in the same repetition: the bytes the agent must move at the least. The agent
//! also verifies digests and unpacks every file, and the poll adds up to 5 ms.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use http::Method;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::berth::Arm;
use crate::berth::{self, Bootstrap};
use crate::client::{self, RequestTemplate, Target};
use crate::stats::{median, millis};

/// AcrPull, by Azure's GUID.
const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// How long one pull may take before the benchmark gives up.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);
/// Files in the layer: the image is many files, as real ones are, not one large blob.
const FILE_MIB: usize = 1;

/// One repetition: every restart's time to pulled, and the ceiling's download times.
#[derive(Debug, Clone, Serialize)]
pub struct WebappRep {
    pub rep: usize,
    pub layer_bytes: usize,
    pub first_pull_ms: f64,
    pub restart_to_pulled_ms: Vec<f64>,
    pub blob_get_ms: Vec<f64>,
}

/// Run the scenario `reps` times; print a table and return every number.
pub async fn run(
    binary: &Path,
    run_dir: &Path,
    reps: usize,
    mib: usize,
    restarts: usize,
) -> Result<Vec<WebappRep>> {
    eprintln!("building a {mib} MiB image layer");
    let image = Image::build(mib)?;
    let mut results = Vec::new();
    for rep in 1..=reps {
        let rep_dir = run_dir.join(format!("webapp-rep{rep}"));
        let result = berth_rep(binary, &rep_dir, rep, &image, restarts)
            .await
            .with_context(|| format!("web-app repetition {rep}"))?;
        results.push(result);
    }
    print!("{}", render(&results, mib));
    Ok(results)
}

/// The image: a config and one gzip layer of `mib` one-MiB files of pseudo-random bytes.
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Image {
    fn build(mib: usize) -> Result<Image> {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut archive = tar::Builder::new(Vec::with_capacity(mib << 20));
        let mut file = vec![0u8; FILE_MIB << 20];
        for index in 0..mib / FILE_MIB {
            for chunk in file.chunks_mut(8) {
                // xorshift64: incompressible, deterministic, fast.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(file.len() as u64);
            archive
                .append_data(&mut header, format!("srv/data/{index:04}.bin"), file.as_slice())
                .context("building the layer")?;
        }
        let tar = archive.into_inner().context("building the layer")?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar).context("compressing the layer")?;
        let layer = gzip.finish().context("compressing the layer")?;
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": ["/bin/app"], "WorkingDir": "/srv"},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
        }))?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": LAYER_GZIP, "digest": sha256(&layer), "size": layer.len()}],
        }))?;
        Ok(Image { config, layer, manifest })
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn berth_rep(
    binary: &Path,
    rep_dir: &Path,
    rep: usize,
    image: &Image,
    restarts: usize,
) -> Result<WebappRep> {
    eprintln!("rep {rep}: berth, setting up a registry, an image and a site");
    let berth::SignedIn { mut process, listen, target, bootstrap, owner_token: token } =
        berth::start_signed_in(binary, rep_dir).await?;
    let arm = Arm { target: &target, token: &token };
    let group = format!("/subscriptions/{}/resourceGroups/bench", bootstrap.subscription_id);
    let registry = format!("{group}/providers/Microsoft.ContainerRegistry/registries/benchacr");
    arm.call(
        Method::PUT,
        &format!("{registry}?api-version=2023-07-01"),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
    )
    .await?;

    // Push the image as the bootstrap owner (Owner on the subscription may push).
    let repository = "benchacr/big";
    let push_token = registry_token(&target, &bootstrap, listen, repository, "pull,push").await?;
    push_blob(&target, &push_token, repository, &image.config).await?;
    push_blob(&target, &push_token, repository, &image.layer).await?;
    let manifest_path = format!("/v2/{repository}/manifests/v1");
    let push = RequestTemplate::new(Method::PUT, listen, &manifest_path, Some(&push_token))?
        .with_body(OCI_MANIFEST, image.manifest.clone());
    let response = client::fetch(&target, &push).await.context("pushing the manifest")?;
    if response.status != http::StatusCode::CREATED {
        bail!("PUT {manifest_path} answered {}: {}", response.status, response.body_excerpt());
    }

    // az appservice plan create; az webapp create ... --assign-identity [system] --acr-use-identity.
    let plan = format!("{group}/providers/Microsoft.Web/serverfarms/benchplan");
    arm.call(
        Method::PUT,
        &format!("{plan}?api-version=2023-12-01"),
        Some(json!({"location": "westeurope", "kind": "linux", "sku": {"name": "B1"},
                    "properties": {"reserved": true}})),
    )
    .await?;
    let site = format!("{group}/providers/Microsoft.Web/sites/benchapp");
    let created = arm
        .call(
            Method::PUT,
            &format!("{site}?api-version=2023-12-01"),
            Some(json!({"location": "westeurope", "identity": {"type": "SystemAssigned"},
                "properties": {"serverFarmId": plan, "siteConfig": {
                    "linuxFxVersion": format!("DOCKER|{listen}/benchacr/big:v1"),
                    "acrUseManagedIdentityCreds": true}}})),
        )
        .await?;
    let principal = created["identity"]["principalId"]
        .as_str()
        .context("the site has no system-assigned principal")?
        .to_owned();
    // az role assignment create --assignee <principalId> --scope <registry id> --role AcrPull
    let assignment = format!(
        "{registry}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    arm.call(
        Method::PUT,
        &assignment,
        Some(json!({"properties": {
            "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}", bootstrap.subscription_id),
            "principalId": principal, "principalType": "ServicePrincipal"}})),
    )
    .await?;

    // The first pull (it may have failed before the assignment existed; a restart pulls at once).
    let site_get = format!("{site}?api-version=2023-12-01");
    let restart = format!("{site}/restart?api-version=2023-12-01");
    let mut poller = target.connect().await?;
    let started = Instant::now();
    let previous = last_attempt(&mut poller, &arm, &site_get).await?;
    arm.call(Method::POST, &restart, None).await?;
    wait_pulled(&mut poller, &arm, &site_get, previous.as_deref()).await?;
    let first_pull_ms = millis(started.elapsed());

    let mut restart_to_pulled_ms = Vec::new();
    for index in 1..=restarts {
        process.ensure_running()?;
        let previous = last_attempt(&mut poller, &arm, &site_get).await?;
        let started = Instant::now();
        arm.call(Method::POST, &restart, None).await?;
        wait_pulled(&mut poller, &arm, &site_get, previous.as_deref()).await?;
        let elapsed = millis(started.elapsed());
        eprintln!("rep {rep}: restart {index}: pulled in {elapsed:.0} ms");
        restart_to_pulled_ms.push(elapsed);
    }

    // The ceiling: the layer's bytes through /v2 on the same listener.
    let pull_token = registry_token(&target, &bootstrap, listen, repository, "pull").await?;
    let blob_path = format!("/v2/{repository}/blobs/{}", sha256(&image.layer));
    let get = RequestTemplate::new(Method::GET, listen, &blob_path, Some(&pull_token))?;
    let mut blob_get_ms = Vec::new();
    for _ in 0..restarts {
        let started = Instant::now();
        let response = client::fetch(&target, &get).await.context("GET the layer")?;
        if response.status != http::StatusCode::OK || response.body.len() != image.layer.len() {
            bail!(
                "GET {blob_path} answered {} with {} bytes",
                response.status,
                response.body.len()
            );
        }
        blob_get_ms.push(millis(started.elapsed()));
    }
    process.ensure_running()?;
    process.stop().context("stopping berth")?;
    Ok(WebappRep {
        rep,
        layer_bytes: image.layer.len(),
        first_pull_ms,
        restart_to_pulled_ms,
        blob_get_ms,
    })
}

async fn last_attempt(
    connection: &mut client::Connection,
    arm: &Arm<'_>,
    site: &str,
) -> Result<Option<String>> {
    let body = arm.get_on(connection, site).await?;
    Ok(body["properties"]["imagePull"]["lastAttempt"].as_str().map(str::to_owned))
}

/// Polls the site every 5 ms until its pull succeeded at an attempt other than `previous`.
async fn wait_pulled(
    connection: &mut client::Connection,
    arm: &Arm<'_>,
    site: &str,
    previous: Option<&str>,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let body = arm.get_on(connection, site).await?;
        let pull = &body["properties"]["imagePull"];
        if pull["status"] == "Succeeded" && pull["lastAttempt"].as_str() != previous {
            return Ok(());
        }
        if started.elapsed() > PULL_TIMEOUT {
            bail!("the site did not pull within {PULL_TIMEOUT:?}: {pull}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A registry access token for `repository` through `/oauth2/token` with the owner's client credentials.
async fn registry_token(
    target: &Target,
    bootstrap: &Bootstrap,
    listen: std::net::SocketAddr,
    repository: &str,
    actions: &str,
) -> Result<String> {
    let path =
        format!("/oauth2/token?service={listen}/benchacr&scope=repository:{repository}:{actions}");
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", bootstrap.client_id, bootstrap.client_secret));
    let template = RequestTemplate::new(Method::GET, listen, &path, None)?
        .with_header_value("authorization", &format!("Basic {basic}"))?;
    let response = client::fetch(target, &template).await.context("registry token")?;
    if response.status != http::StatusCode::OK {
        bail!("GET {path} answered {}: {}", response.status, response.body_excerpt());
    }
    let body: Value =
        serde_json::from_slice(&response.body).context("parsing the registry token")?;
    body["access_token"].as_str().map(str::to_owned).context("no access_token")
}

async fn push_blob(target: &Target, token: &str, repository: &str, bytes: &[u8]) -> Result<()> {
    let path = format!("/v2/{repository}/blobs/uploads/?digest={}", sha256(bytes));
    let template = RequestTemplate::new(Method::POST, target.addr, &path, Some(token))?
        .with_body("application/octet-stream", bytes.to_vec());
    let response = client::fetch(target, &template).await.context("pushing a blob")?;
    if response.status != http::StatusCode::CREATED {
        bail!("POST {path} answered {}: {}", response.status, response.body_excerpt());
    }
    Ok(())
}

/// The table: per repetition the median restart-to-pulled time and the ceiling, then the medians over all.
pub fn render(results: &[WebappRep], mib: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nweb app: restart to a pulled {mib} MiB image (ms; the ceiling is one GET of its layer)"
    );
    let _ = writeln!(
        out,
        "{:>4} {:>12} {:>16} {:>12} {:>14}",
        "rep", "first pull", "restart→pulled", "ceiling GET", "MiB/s pulled"
    );
    let mut all_pulls = Vec::new();
    let mut all_gets = Vec::new();
    for r in results {
        let pulled = median(&r.restart_to_pulled_ms);
        let get = median(&r.blob_get_ms);
        let rate = r.layer_bytes as f64 / (1 << 20) as f64 / (pulled / 1000.0);
        let _ = writeln!(
            out,
            "{:>4} {:>12.0} {:>16.0} {:>12.0} {:>14.0}",
            r.rep, r.first_pull_ms, pulled, get, rate
        );
        all_pulls.extend_from_slice(&r.restart_to_pulled_ms);
        all_gets.extend_from_slice(&r.blob_get_ms);
    }
    let _ = writeln!(
        out,
        "median over {} restarts: {:.0} ms to pulled, ceiling GET {:.0} ms",
        all_pulls.len(),
        median(&all_pulls),
        median(&all_gets)
    );
    let _ = writeln!(out, "{}", crate::report::SHARED_CPU_NOTE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_layer_is_a_gzip_tar_of_the_asked_size_and_the_manifest_names_it() {
        let image = Image::build(2).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(image.layer.as_slice()));
        let sizes: Vec<u64> =
            archive.entries().unwrap().map(|e| e.unwrap().header().size().unwrap()).collect();
        assert_eq!(sizes, vec![1 << 20, 1 << 20]);
        assert!(image.layer.len() > 2 << 20, "incompressible: {}", image.layer.len());
        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], sha256(&image.layer));
        assert_eq!(manifest["config"]["digest"], sha256(&image.config));
    }
}
