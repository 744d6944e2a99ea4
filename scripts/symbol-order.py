#!/usr/bin/env python3
"""Regenerates crates/cli/symbol-order.txt: the functions `berth serve` runs, for the linker to place together.

Why: the release binary has ~15 MiB of machine code, and a server touches only ~4 MiB of it, but scattered: the
kernel maps file pages around each one touched (fault-around, 64 KiB), so an idle server had 11 MiB of its text
resident. lld's `--symbol-ordering-file` (passed by crates/cli/build.rs for release builds) puts the listed
functions first, hottest first, so what runs shares pages with what runs.

How: runs `berth serve` under valgrind's callgrind (plain HTTP, then HTTPS) through a workload like the
benchmark's (ARM sign-in and registry creation, token requests, small image pushes, manifest GETs, monolithic and
chunked blob uploads, blob GETs with and without Range, listings, errors, an idle wait), and writes every function
of the berth binary that ran, by instructions executed, hottest first. Names go stale as the code changes: a
generic function's instance is named by a hash of its type arguments (our async functions' futures among them).
The linker ignores stale names, so nothing breaks; regenerate after changes to the server's code paths:

  apt-get install -y valgrind
  cargo build --release -p berth-cli
  scripts/symbol-order.py target/release/berth
  cargo build --release -p berth-cli        # relinks with the new order

(With ThinLTO every edit renamed shared local functions, `.llvm.<module hash>`; the release profile's fat LTO
keeps their names.)

Everything runs on 127.0.0.1, in a temporary data dir.
"""
import importlib.util, os, random, shutil, signal, subprocess, sys, tempfile, time, urllib.error, urllib.request, ssl
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "cli", "symbol-order.txt")
spec = importlib.util.spec_from_file_location("bench_registry", os.path.join(HERE, "bench-registry.py"))
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)


def workload(binary, https, profile, scratch):
    data = tempfile.mkdtemp(dir=scratch)
    port = br.free_port()
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", "--dump-instr=no", "--dump-line=no",
           "--compress-strings=no", "--compress-pos=no", "--demangle=no",
           binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"] + ([] if https else ["--insecure-http"])
    # The arena tunable set here spares berth its re-exec (malloc_tuning.rs), which valgrind would follow badly.
    env = dict(os.environ, RUST_LOG="info", GLIBC_TUNABLES="glibc.malloc.arena_max=2")
    log = open(profile + ".log", "w")
    proc = subprocess.Popen(cmd, cwd=data, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        berth = br.Berth(binary, https)
        berth.url, berth.ca_file = url, None
        ca = os.path.join(data, "tls", "ca.pem")
        for _ in range(600):
            try:
                context = ssl.create_default_context(cafile=ca) if https else None
                urllib.request.urlopen(url + "/v2/", timeout=5, context=context)
            except urllib.error.HTTPError:
                break
            except Exception:
                time.sleep(0.5)
        token = berth.prepare(data)
        cl = br.Client(url, berth.ca_file, token)
        rng = random.Random(7)
        for i in range(20):
            layer, config, manifest = br.make_image(rng, 16 * 1024, f"w{i}")
            br.push_image(cl, "bench/small", f"t{i}", layer, config, manifest)
        for _ in range(30):
            r, _ = cl.req("GET", "/v2/bench/small/manifests/t1", headers={"Accept": br.OCI_MANIFEST})
            assert r.status == 200, r.status
            r, _ = cl.req("HEAD", "/v2/bench/small/manifests/t2", headers={"Accept": br.OCI_MANIFEST})
            assert r.status == 200, r.status
        big = rng.randbytes(8 * br.MiB)
        digest = br.sha(big)
        br.upload_monolithic(cl, "bench/big", big, digest)
        chunked = rng.randbytes(3 * br.MiB)
        br.upload_chunked(cl, "bench/big", chunked, br.sha(chunked), br.MiB)
        buf = bytearray(len(big))
        assert br.download(cl, "bench/big", digest, len(big), buf) == len(big)
        r, _ = cl.req("GET", f"/v2/bench/big/blobs/{digest}", headers={"Range": "bytes=0-99"})
        assert r.status == 206, r.status
        for path in ("/v2/bench/small/tags/list", "/v2/bench/small/tags/list?n=5", "/v2/_catalog",
                     "/v2/bench/small/blobs/sha256:" + "0" * 64, "/v2/bench/small/manifests/nope",
                     f"/v2/bench/small/referrers/{digest}"):
            cl.req("GET", path)
        anonymous = br.Client(url, berth.ca_file, None)
        anonymous.req("GET", "/v2/bench/small/tags/list")
        anonymous.req("GET", "/v2/")
        berth.prepare(data)  # a second round of sign-in and token requests
        time.sleep(3)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(300)
        shutil.rmtree(data, ignore_errors=True)


def self_costs(profile, binary):
    """Instructions executed in each function of `binary` (exclusive), from a callgrind file."""
    costs = defaultdict(int)
    current_object, function, skip_next = None, None, False
    for line in open(profile):
        if skip_next:  # the inclusive cost of a call, which belongs to the callee
            skip_next = False
            continue
        if line.startswith("ob="):
            current_object = line[3:].strip()
        elif line.startswith("fn="):
            name = line[3:].strip()
            # callgrind marks recursion depth with 'N; the symbol is the same.
            name = name.split("'")[0]
            function = name if current_object == binary else None
            if function:
                costs[function] += 0
        elif line.startswith("calls="):
            skip_next = True
        elif function and line[:1].isdigit():
            fields = line.split()
            if len(fields) >= 2:
                costs[function] += int(fields[1])
    return costs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed (apt-get install -y valgrind)")
    scratch = tempfile.mkdtemp(prefix="berth-symbol-order-")
    try:
        totals = defaultdict(int)
        for https in (False, True):
            profile = os.path.join(scratch, f"callgrind-{'https' if https else 'http'}.out")
            workload(binary, https, profile, scratch)
            for name, cost in self_costs(profile, binary).items():
                totals[name] += cost
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    names = sorted(totals, key=lambda name: (-totals[name], name))
    # "(below main)" and the like are valgrind's; "0x..." are code it found no symbol for.
    names = [name for name in names if not name.startswith(("(", "0x"))]
    with open(OUT, "w") as f:
        f.write("".join(name + "\n" for name in names))
    print(f"{len(names)} functions written to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
