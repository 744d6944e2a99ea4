#!/usr/bin/env python3
"""Registry data-plane benchmark: berth beside a peer registry, in the same run, with the same client.

It measures what ../shared/tools/bench.py measures (and the same way: stdlib `http.client` with
sendall/readinto, `wrk` for requests per second, a fresh server and an empty data dir per repetition), adding
the token protocol, so berth runs with authentication on while an auth-less peer runs as it is:

  idle  RSS 2 s after the first answer to GET /v2/
  (a)   512 MiB monolithic upload: POST + one PUT ?digest= (digest verified by the server)
  (b)   512 MiB as 8 MiB PATCHes with Content-Range, then PUT ?digest=
  (c)   GET of blob (a) into a preallocated buffer, sha256 checked after the clock stops
  (d)   wrk -t2 -c64 -d10s on GET /v2/<repo>/manifests/latest, with the bearer token when the registry wants one
  (e)   200 small images (tar layer + config + manifest, 5 requests each), one keep-alive connection
  RSS   peak VmRSS sampled every 20 ms during (a), (b) and (c); RSS after (d) and at the end

Usage (from the workspace root, after `cargo build --release -p berth-cli`):
  scripts/bench-registry.py --reps 3 --berth target/release/berth \
      --peer distribution=/work/perf-scratch/bin/registry-v3 --out /work/perf-scratch/results-berth.json

Add --drop-caches (root) to drop the page cache before each upload: on a KVM guest whose host reclaims freed
memory, uploads otherwise vary 3x with the guest's memory history (see settle_page_cache). With it, add
--warmup 1: the first upload after boot writes into guest memory the host has never backed, and took 1.06 s of
kernel time for 512 MiB instead of 0.25-0.30 s in every later one (a rep-0 PUT of ~515 MiB/s in both of the
first two runs of 2026-12-04, then 1130-1470); the warmup rep runs every registry and counts for none.

berth runs as `berth serve --insecure-http` (plain HTTP, as the peers are measured) unless --https is given; the
harness creates a registry `bench` through the ARM API with the bootstrap owner's credentials, so the repositories
`bench/big`, `bench/manifest` and `bench/small` are in path mode. Its client secret sends only Basic auth to
berth's own /oauth2/token on loopback. A distribution peer is started with ../shared/tools/distribution-config.yml
(REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY = the rep's data dir). Everything stays on 127.0.0.1.
"""
import argparse, base64, hashlib, http.client, io, json, os, random, re, shutil, signal, socket
import ssl, statistics, subprocess, sys, tarfile, threading, time, urllib.parse

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
HERE = os.path.dirname(os.path.abspath(__file__))
DIST_CONFIG = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "tools", "distribution-config.yml"))


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


class RssSampler:
    """Peak RSS of a process, sampled every 20 ms on a thread while the `with` block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        def loop():
            while not self.stop.is_set():
                self.peak = max(self.peak, rss_kib(self.pid))
                time.sleep(0.02)
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def mib(self):
        return self.peak / 1024


class Client:
    """One keep-alive connection; adds the bearer token (if any) to every request."""

    def __init__(self, base, ca_file=None, token=None):
        u = urllib.parse.urlsplit(base)
        self.base, self.https = base.rstrip("/"), u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.ca_file, self.token, self.conn = ca_file, token, None

    def _c(self):
        if self.conn is None:
            if self.https:
                context = ssl.create_default_context(cafile=self.ca_file)
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=600, context=context)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def req(self, method, path, body=None, headers=None):
        c = self._c()
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        if body is None and method in ("PUT", "POST", "PATCH"):
            h.setdefault("Content-Length", "0")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r, data

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def rel(self, location):
        u = urllib.parse.urlsplit(urllib.parse.urljoin(self.base + "/", location))
        return u.path + ("?" + u.query if u.query else "")


def expect(r, codes, what, data=b""):
    if r.status not in codes:
        raise RuntimeError(f"{what}: HTTP {r.status} {data[:300]!r}")


def start_upload(cl, repo):
    r, d = cl.req("POST", f"/v2/{repo}/blobs/uploads/")
    expect(r, (202,), "POST upload", d)
    return cl.rel(r.getheader("Location"))


def add_digest(loc, dg):
    return loc + ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(dg)


def upload_monolithic(cl, repo, blob, dg):
    loc = start_upload(cl, repo)
    r, d = cl.req("PUT", add_digest(loc, dg), body=blob,
                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))})
    expect(r, (201,), "PUT monolithic", d)


def upload_chunked(cl, repo, blob, dg, chunk):
    loc = start_upload(cl, repo)
    mv, off = memoryview(blob), 0
    while off < len(blob):
        part = mv[off:off + chunk]
        r, d = cl.req("PATCH", loc, body=part, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(len(part)),
            "Content-Range": f"{off}-{off + len(part) - 1}"})
        expect(r, (202,), f"PATCH @{off}", d)
        loc = cl.rel(r.getheader("Location"))
        off += len(part)
    r, d = cl.req("PUT", add_digest(loc, dg))
    expect(r, (201,), "PUT close chunked", d)


def download(cl, repo, dg, size, buf):
    c = cl._c()
    headers = {"Authorization": f"Bearer {cl.token}"} if cl.token else {}
    c.request("GET", f"/v2/{repo}/blobs/{dg}", headers=headers)
    r = c.getresponse()
    expect(r, (200,), "GET blob")
    mv, got = memoryview(buf), 0
    while True:
        n = r.readinto(mv[got:got + 16 * MiB] if got < size else bytearray(1))
        if not n:
            break
        got += n
    r.close()
    return got


def make_image(rng, layer_bytes, note):
    payload = rng.randbytes(layer_bytes)
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("data.bin")
        ti.size, ti.mtime = len(payload), 0
        tf.addfile(ti, io.BytesIO(payload))
    layer = bio.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"bench": note}},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": sha(layer), "size": len(layer)}],
    }, separators=(",", ":")).encode()
    return layer, config, manifest


def push_image(cl, repo, tag, layer, config, manifest):
    for b in (layer, config):
        loc = start_upload(cl, repo)
        r, d = cl.req("PUT", add_digest(loc, sha(b)), body=b,
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(b))})
        expect(r, (201,), "PUT small blob", d)
    r, d = cl.req("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                  headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
    expect(r, (201,), "PUT manifest", d)


def run_wrk(url, seconds, conns, headers):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99ms = None
    if p99:
        v, unit = float(p99.group(1)), p99.group(2)
        p99ms = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return {"rps": rps, "non2xx": int(non2xx.group(1)) if non2xx else 0, "p99_ms": p99ms}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(base, method, path, body=None, headers=None, ca_file=None, form=False):
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        c = http.client.HTTPSConnection(u.hostname, u.port, timeout=60,
                                        context=ssl.create_default_context(cafile=ca_file))
    else:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body) if form else json.dumps(body)
        h["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {r.status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


class Berth:
    """`berth serve` on a fresh data dir, with a registry `bench` and a token for the bench repositories."""
    name = "berth"

    def __init__(self, binary, https):
        self.binary, self.https = os.path.abspath(binary), https

    def start(self, data_dir, log):
        port = free_port()
        scheme = "https" if self.https else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        cmd = [self.binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
        if not self.https:
            cmd.append("--insecure-http")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.ca_file = os.path.join(data_dir, "tls", "ca.pem") if self.https else None
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir, env=env,
                                start_new_session=True)

    def prepare(self, data_dir):
        boot = json.load(open(os.path.join(data_dir, "bootstrap.json")))
        if self.https:
            self.ca_file = boot["caCertificateFile"]
        arm = http_json(self.url, "POST", f"/{boot['tenantId']}/oauth2/v2.0/token", form=True, ca_file=self.ca_file,
                        body={"grant_type": "client_credentials", "client_id": boot["clientId"],
                              "client_secret": boot["clientSecret"],
                              "scope": "https://management.azure.com/.default"})["access_token"]
        auth = {"Authorization": f"Bearer {arm}"}
        group = f"/subscriptions/{boot['subscriptionId']}/resourceGroups/bench"
        http_json(self.url, "PUT", f"{group}?api-version=2022-09-01", {"location": "westeurope"}, auth, self.ca_file)
        http_json(self.url, "PUT",
                  f"{group}/providers/Microsoft.ContainerRegistry/registries/bench?api-version=2023-07-01",
                  {"location": "westeurope", "sku": {"name": "Standard"}}, auth, self.ca_file)
        host = urllib.parse.urlsplit(self.url).netloc
        scopes = "&".join("scope=" + urllib.parse.quote(f"repository:bench/{r}:pull,push")
                          for r in ("big", "manifest", "small"))
        basic = base64.b64encode(f"{boot['clientId']}:{boot['clientSecret']}".encode()).decode()
        token = http_json(self.url, "GET", f"/oauth2/token?service={urllib.parse.quote(host)}&{scopes}",
                          headers={"Authorization": f"Basic {basic}"}, ca_file=self.ca_file)
        return token["access_token"]


class Distribution:
    """CNCF distribution with ../shared/tools/distribution-config.yml (no auth)."""

    def __init__(self, name, binary):
        self.name, self.binary, self.ca_file = name, os.path.abspath(binary), None

    def start(self, data_dir, log):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=data_dir,
                   REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}")
        return subprocess.Popen([self.binary, "serve", DIST_CONFIG], stdout=log, stderr=subprocess.STDOUT,
                                cwd=data_dir, env=env, start_new_session=True)

    def prepare(self, data_dir):
        return None


def wait_ready(registry, proc, timeout=60):
    u = urllib.parse.urlsplit(registry.url)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{registry.name} exited rc={proc.returncode}")
        try:
            if u.scheme == "https":
                if not registry.ca_file or not os.path.exists(registry.ca_file):
                    raise OSError("no CA yet")
                c = http.client.HTTPSConnection(u.hostname, u.port, timeout=2,
                                                context=ssl.create_default_context(cafile=registry.ca_file))
            else:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", "/v2/")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{registry.name} not ready")


def one_rep(args, registry, blobs, rep):
    # A new directory per repetition, all removed only after the last one: on ext4 without a journal, creating a
    # file scans past every inode of its group deleted in the last 60 s (5 min while the inode table is dirty), so
    # deleting the previous repetition's thousands of files first made every create ~2x slower for every registry.
    data_dir = os.path.join(args.scratch, f"{registry.name}-data-{rep}")
    os.makedirs(data_dir)
    subprocess.run(["sync"])
    log = open(os.path.join(args.scratch, f"{registry.name}-rep{rep}.log"), "w")
    proc = registry.start(data_dir, log)
    res = {"registry": registry.name, "rep": rep}
    try:
        wait_ready(registry, proc)
        time.sleep(2)
        res["idle_rss_mib"] = rss_kib(proc.pid) / 1024
        token = registry.prepare(data_dir)
        (b1, d1), (b2, d2) = blobs
        size = len(b1)
        cl = Client(registry.url, registry.ca_file, token)

        settle_page_cache(args)
        with RssSampler(proc.pid) as rss:
            t0 = time.perf_counter()
            upload_monolithic(cl, "bench/big", b1, d1)
            res["a_mono_upload_MiBps"] = size / MiB / (time.perf_counter() - t0)
        res["a_peak_rss_mib"] = rss.mib
        subprocess.run(["sync"])

        settle_page_cache(args)
        with RssSampler(proc.pid) as rss:
            t0 = time.perf_counter()
            upload_chunked(cl, "bench/big", b2, d2, args.chunk_mib * MiB)
            res["b_chunked_upload_MiBps"] = size / MiB / (time.perf_counter() - t0)
        res["b_peak_rss_mib"] = rss.mib
        subprocess.run(["sync"])

        buf = bytearray(size)
        if args.drop_caches:
            # Dropping the cache before (b) evicted blob (a); read it back once, untimed, so that (c) measures
            # what it measures without --drop-caches: a GET of a blob in the page cache.
            download(cl, "bench/big", d1, size, buf)
        with RssSampler(proc.pid) as rss:
            t0 = time.perf_counter()
            got = download(cl, "bench/big", d1, size, buf)
            dt = time.perf_counter() - t0
        if got != size or sha(buf) != d1:
            raise RuntimeError(f"download mismatch: got {got} bytes")
        res["c_download_MiBps"] = size / MiB / dt
        res["c_peak_rss_mib"] = rss.mib
        del buf

        rng = random.Random(1000 + rep)
        layer, config, manifest = make_image(rng, 32 * 1024, "manifest-target")
        push_image(cl, "bench/manifest", "latest", layer, config, manifest)
        headers = [f"Accept: {OCI_MANIFEST}"] + ([f"Authorization: Bearer {token}"] if token else [])
        w = run_wrk(f"{registry.url}/v2/bench/manifest/manifests/latest", args.wrk_seconds, args.wrk_conns, headers)
        if w["non2xx"]:
            raise RuntimeError(f"wrk saw {w['non2xx']} non-2xx answers")
        res["d_manifest_rps"], res["d_manifest_p99_ms"] = w["rps"], w["p99_ms"]
        res["rss_after_wrk_mib"] = rss_kib(proc.pid) / 1024

        images = [make_image(rng, args.small_layer_kib * 1024, f"img{i}") for i in range(args.small_images)]
        cl.close()
        cl = Client(registry.url, registry.ca_file, token)
        t0 = time.perf_counter()
        for i, (l, c, m) in enumerate(images):
            push_image(cl, "bench/small", f"t{i}", l, c, m)
        res["e_push_small_s"] = time.perf_counter() - t0
        res["final_rss_mib"] = rss_kib(proc.pid) / 1024
        cl.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    return res


METRICS = [
    ("idle_rss_mib", "idle RSS MiB", "{:.1f}"), ("a_mono_upload_MiBps", "(a) mono PUT MiB/s", "{:.0f}"),
    ("a_peak_rss_mib", "RSS in (a)", "{:.1f}"), ("b_chunked_upload_MiBps", "(b) 8 MiB PATCH MiB/s", "{:.0f}"),
    ("b_peak_rss_mib", "RSS in (b)", "{:.1f}"), ("c_download_MiBps", "(c) GET MiB/s", "{:.0f}"),
    ("c_peak_rss_mib", "RSS in (c)", "{:.1f}"), ("d_manifest_rps", "(d) manifest GET req/s", "{:.0f}"),
    ("d_manifest_p99_ms", "(d) p99 ms", "{:.2f}"), ("e_push_small_s", "(e) 200 images s", "{:.3f}"),
    ("final_rss_mib", "RSS at end", "{:.1f}"),
]


def summarize(results):
    names = list(dict.fromkeys(r["registry"] for r in results))
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label, fmt in METRICS:
        cells = []
        for name in names:
            values = [r[key] for r in results if r["registry"] == name and r.get(key) is not None]
            if not values:
                cells.append("-")
                continue
            cells.append(f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settle_page_cache(args):
    """With --drop-caches: write back and drop the page cache before an upload, as root.

    On these KVM guests the host takes back memory the guest freed, and a page the guest touches for the first
    time since costs a fault in the host: writing 512 MiB into fresh page cache then took 0.9-1.5 s of kernel
    time instead of 0.3 s, and uploads ran at a third of their speed or less, depending on the guest's memory
    history, for every registry alike. Dropping the cache just before hands the upload pages the guest just
    freed, which the host has not yet taken back. Off by default: the default run is the machine as it is. Blob (a)
is read once, untimed, before (c), which the drop before (b) would otherwise turn into a disk read.
    """
    if not args.drop_caches:
        return
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


DELETION_SETTLE_S = 90
CLEANED_MARKER = ".data-removed-at"


def remove_data_dirs(scratch):
    """Removes every repetition's data dir and notes when, for `settle_after_deletions`."""
    removed = [d for d in os.listdir(scratch) if "-data" in d]
    for d in removed:
        shutil.rmtree(os.path.join(scratch, d))
    if removed:
        with open(os.path.join(scratch, CLEANED_MARKER), "w") as f:
            f.write(str(time.time()))


def settle_after_deletions(scratch):
    """Waits until the last mass deletion in `scratch` is DELETION_SETTLE_S old (see one_rep)."""
    try:
        with open(os.path.join(scratch, CLEANED_MARKER)) as f:
            age = time.time() - float(f.read())
    except (OSError, ValueError):
        return
    if age < DELETION_SETTLE_S:
        print(f"waiting {DELETION_SETTLE_S - age:.0f} s for the inodes of the last run's data to age out",
              file=sys.stderr)
        time.sleep(DELETION_SETTLE_S - age)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", required=True, help="the berth binary (a release build)")
    ap.add_argument("--https", action="store_true", help="run berth over HTTPS with its own CA")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=BINARY",
                    help="a CNCF distribution binary to run in the same way (repeatable)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=0, help="uncounted leading repetitions")
    ap.add_argument("--blob-mib", type=int, default=512)
    ap.add_argument("--chunk-mib", type=int, default=8)
    ap.add_argument("--small-images", type=int, default=200)
    ap.add_argument("--small-layer-kib", type=int, default=16)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--wrk-conns", type=int, default=64)
    ap.add_argument("--scratch", default=os.path.join(os.environ.get("PERF", "/work/perf-scratch"), "bench-registry"))
    ap.add_argument("--drop-caches", action="store_true",
                    help="drop the page cache before each upload (root; see settle_page_cache)")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    os.makedirs(args.scratch, exist_ok=True)
    registries = [Berth(args.berth, args.https)]
    for peer in args.peer:
        name, _, binary = peer.partition("=")
        registries.append(Distribution(name, binary))

    remove_data_dirs(args.scratch)
    settle_after_deletions(args.scratch)
    rng = random.Random(42)
    size = args.blob_mib * MiB
    # randbytes takes at most 2^31 bits at a time.
    blobs = [(b, sha(b)) for b in (b"".join(rng.randbytes(16 * MiB) for _ in range(size // (16 * MiB))) +
                                   rng.randbytes(size % (16 * MiB)) for _ in range(2))]
    results = []
    # Registries alternate within each repetition, so drift on the machine hits all of them alike.
    for rep in range(args.warmup + args.reps):
        for registry in registries:
            res = one_rep(args, registry, blobs, rep)
            res["warmup"] = rep < args.warmup
            print(json.dumps(res), flush=True)
            results.append(res)
    remove_data_dirs(args.scratch)
    counted = [r for r in results if not r["warmup"]]
    print(summarize(counted))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
