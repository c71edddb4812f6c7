#!/usr/bin/env python3
"""Helpers of bench/gpu-check.sh (issue #16); plain Python 3 (torch only where stated).

  report.py env <out.json>                         machine, GPU, driver, CUDA, torch/torchvision versions
  report.py report <work> <prepared-scale-dir> <outdir>
                                                   gpu-check.json + gpu-check.md from what the run left in
                                                   <work> (called after every phase, so a run cut short
                                                   still leaves a report of what it measured)
  report.py resume <work> <iteration>              resume.json: runs/resume-a and -b (the same job twice) and
                                                   -c (-b's checkpoint at <iteration>, resumed): byte
                                                   comparisons of weights and detections (+ max |diff|)
  report.py weights-diff <a> <b>                   max |a - b| over the tensors of two trainer weights
                                                   files (torch.jit.load of the libtorch archive; torch)

What <work> holds (written by bench/gpu-check.sh):
  phases.jsonl          one {"phase","status","seconds","rc","note"} per phase
  env.json              from `report.py env`
  runs/<name>.out       the native trainer's stdout (JSON lines) of each job; .err its stderr
  tv/<name>.json        bench/gpu/torchvision_ref.py's result line
  unit.json             GoogleTest's --gtest_output=json of the native unit tests
  resume.json           the resume check's hashes and comparison
Every figure in the report is read from those files; nothing is estimated.
"""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

PAPER_E0_OVER_R50 = 21.5 / 38.4  # Table 5, VOC 800x600: E0 21.5 ms, FPN w R50 38.4 ms (V100)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001 - the environment record must never fail the check
        return f"({e})"


def env(out):
    info = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "nvidiaSmi": sh("nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader") if shutil.which("nvidia-smi") else None,
        "nvcc": sh("nvcc --version | tail -n 2 | head -n 1") if shutil.which("nvcc") else None,
        "cmake": sh("cmake --version | head -n 1"),
        "cxx": sh("c++ --version | head -n 1"),
        "gitCommit": sh("git rev-parse --short HEAD 2>/dev/null") or None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torchCuda"] = torch.version.cuda
        info["cudaAvailable"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = p.name
            info["gpuMemoryGiB"] = round(p.total_memory / 2**30, 1)
            info["computeCapability"] = f"{p.major}.{p.minor}"
            info["cudnn"] = torch.backends.cudnn.version()
            info["cudaRuntime"] = torch.version.cuda
        try:
            import torchvision

            info["torchvision"] = torchvision.__version__
        except Exception as e:  # noqa: BLE001
            info["torchvision"] = f"not importable: {e}"
    except Exception as e:  # noqa: BLE001
        info["torch"] = f"not importable: {e}"
    json.dump(info, open(out, "w"), indent=2)


def read_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def last_stderr_line(path):
    if not os.path.exists(path):
        return None
    lines = [l.strip() for l in open(path, errors="replace") if l.strip()]
    return lines[-1][:300] if lines else None


def native_run(work, name, manifest):
    """Figures of one native trainer run from its stdout; None when it did not run."""
    out = os.path.join(work, "runs", f"{name}.out")
    if not os.path.exists(out):
        return None
    msgs = read_lines(out)
    res = next((m for m in msgs if m.get("type") == "result"), None)
    err = next((m for m in msgs if m.get("type") == "error"), None)
    started = next((m for m in msgs if m.get("type") == "started"), None)
    r = {"name": name, "status": "ok" if res and res.get("kind") == "ok" else "failed"}
    if started:
        r["device"] = started.get("device")
        r["torchVersion"] = started.get("torchVersion")
    if err:
        r["error"] = err
    if res and res.get("kind") != "ok":
        r["error"] = res
    if not res and not err:
        r["error"] = {"message": last_stderr_line(os.path.join(work, "runs", f"{name}.err")) or "no result line"}
    if name.startswith(("train", "resume")):
        prog = [m for m in msgs if m.get("type") == "progress"]
        warm, batch = manifest["warmupIterations"], manifest["batch"]
        timed = [p for p in prog if p["iteration"] > warm]
        if timed:
            # each progress line covers the images since the previous one (one batch: the trainer
            # emits every iteration for runs under 300 iterations), timed until its loss.item()
            seconds = sum(batch / p["imagesPerSec"] for p in timed if p["imagesPerSec"] > 0)
            r["timedIterations"] = len(timed)
            r["trainImagesPerSec"] = len(timed) * batch / seconds if seconds > 0 else None
        if prog:
            r["firstLoss"] = prog[0]["loss"]
            r["lastLoss"] = prog[-1]["loss"]
        if res:
            r["wholeRunImagesPerSec"] = res.get("imagesPerSec")
            r["peakMemoryMB"] = res.get("peakMemoryMB")
            r["wallSeconds"] = res.get("wallSeconds")
    if res and res.get("command") == "bench":
        b = res["bench"]
        r.update({k: b.get(k) for k in ("medianMs", "p90Ms", "p10Ms", "meanMs", "stdMs", "iterations", "warmup", "input")})
        r["peakMemoryMB"] = b.get("peakMemoryMB")
    return r


def tv_run(work, name):
    path = os.path.join(work, "tv", f"{name}.json")
    if not os.path.exists(path):
        return None
    lines = read_lines(path)
    if not lines:
        return {"name": name, "status": "failed", "error": {"message": last_stderr_line(os.path.join(work, "tv", f"{name}.err")) or "no result"}}
    r = lines[-1]
    r["name"] = name
    r["status"] = "ok"
    return r


def unit_tests(work):
    path = os.path.join(work, "unit.json")
    if not os.path.exists(path):
        return None
    try:
        u = json.load(open(path))
    except json.JSONDecodeError:
        return {"status": "unreadable"}
    tests = []
    for suite in u.get("testsuites", []):
        for t in suite.get("testsuite", []):
            status = "failed" if t.get("failures") else ("skipped" if t.get("result") == "SKIPPED" else "passed")
            entry = {"name": f"{suite['name']}.{t['name']}", "status": status, "seconds": float(str(t.get("time", "0s")).rstrip("s") or 0)}
            if t.get("failures"):
                entry["failures"] = [f.get("failure", "")[:500] for f in t["failures"]]
            tests.append(entry)
    count = lambda s: sum(1 for t in tests if t["status"] == s)  # noqa: E731
    return {"passed": count("passed"), "failed": count("failed"), "skipped": count("skipped"), "tests": tests}


def fmt(x, digits=1):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.{digits}f}"


def report(work, prep, outdir):
    manifest = json.load(open(os.path.join(prep, "manifest.json")))
    envinfo = json.load(open(os.path.join(work, "env.json"))) if os.path.exists(os.path.join(work, "env.json")) else {}
    meta = json.load(open(os.path.join(work, "meta.json"))) if os.path.exists(os.path.join(work, "meta.json")) else {}
    phases = read_lines(os.path.join(work, "phases.jsonl"))
    names = [r["name"] for r in manifest["runs"]] + ["resume-a", "resume-b", "resume-c"]
    native = {n: native_run(work, n, manifest) for n in names}
    tv = {n: tv_run(work, n) for n in ("tv-r50-fp32", "tv-r50-bf16")}
    unit = unit_tests(work)
    resume = json.load(open(os.path.join(work, "resume.json"))) if os.path.exists(os.path.join(work, "resume.json")) else None
    data = {
        "issue": 16,
        "what": "bench/gpu-check.sh: native trainer on CUDA (build, unit tests, training, inference, resume) vs torchvision",
        "meta": meta,
        "environment": envinfo,
        "scale": {k: manifest[k] for k in ("scale", "width", "height", "train", "val", "classes", "batch", "warmupIterations", "timedIterations", "benchWarmup", "benchIterations")},
        "models": manifest["models"],
        "recipe": manifest["recipe"],
        "phases": phases,
        "unitTests": unit,
        "native": {k: v for k, v in native.items() if v},
        "torchvision": {k: v for k, v in tv.items() if v},
        "resume": resume,
        "paper": {"table5E0OverR50": round(PAPER_E0_OVER_R50, 3), "note": "VOC, 800x600, V100: E0 21.5 ms, FPN w R50 38.4 ms"},
    }
    b_r50, b_e0 = native.get("bench-r50"), native.get("bench-e0")
    tvl = (tv.get("tv-r50-fp32") or {}).get("latency")
    data["comparisons"] = {
        "e0OverR50LatencyNative": (b_e0["medianMs"] / b_r50["medianMs"]) if b_r50 and b_e0 and b_r50.get("medianMs") and b_e0.get("medianMs") else None,
        "nativeOverTorchvisionTrainFp32": _div(native.get("train-r50-fp32"), tv.get("tv-r50-fp32"), "trainImagesPerSec"),
        "nativeOverTorchvisionTrainBf16": _div(native.get("train-r50-bf16"), tv.get("tv-r50-bf16"), "trainImagesPerSec"),
        "torchvisionOverNativeLatencyR50": (tvl["medianMs"] / b_r50["medianMs"]) if tvl and b_r50 and b_r50.get("medianMs") else None,
    }
    os.makedirs(outdir, exist_ok=True)
    json.dump(data, open(os.path.join(outdir, "gpu-check.json"), "w"), indent=2)
    open(os.path.join(outdir, "gpu-check.md"), "w").write(markdown(data, manifest))


def _div(a, b, key):
    if not a or not b or a.get(key) is None or not b.get(key):
        return None
    return a[key] / b[key]


def markdown(d, manifest):
    e, s = d["environment"], d["scale"]
    L = []
    meta = d.get("meta", {})
    L.append(f"# GPU check ({s['scale']} scale, device {meta.get('device', '?')})")
    L.append("")
    if meta.get("preparedInputsStale"):
        L.append("**Warning**: .gpu-check was prepared from other sources than this tree's (rerun `bash bench/gpu-check.sh --prepare`).")
        L.append("")
    if meta.get("device") == "cpu":
        L.append("**CPU dry run**: proves the script, the build against PyTorch 2.x and the job files; its figures say nothing about a GPU.")
        L.append("")
    L.append(f"- device: {meta.get('device', '?')}; GPU: {e.get('gpu') or e.get('nvidiaSmi') or 'none'}; nvidia-smi: {e.get('nvidiaSmi') or '—'}")
    L.append(f"- torch {e.get('torch')} (CUDA {e.get('torchCuda')}, cuDNN {e.get('cudnn', '—')}), torchvision {e.get('torchvision')}; nvcc: {e.get('nvcc') or '—'}; {e.get('cmake')}; {e.get('cxx')}")
    L.append(f"- CPU: {e.get('cpu')} x {e.get('cores')}; commit {e.get('gitCommit')}; {e.get('date')}")
    L.append(f"- data: generated shapes, {s['train']} train / {s['val']} val images at {s['width']}x{s['height']} (JPEG), {s['classes']} classes; batch {s['batch']}; "
             f"{s['warmupIterations']} warm-up + {s['timedIterations']} timed iterations; recipe {d['recipe']}")
    for k, m in d["models"].items():
        L.append(f"- {k}: `{m['arch']}` ({m['label']})")
    L.append("")
    L.append("## Phases")
    L.append("")
    L.append("| phase | status | seconds | note |")
    L.append("|---|---|---|---|")
    for p in d["phases"]:
        L.append(f"| {p['phase']} | {p['status']} | {fmt(p.get('seconds'))} | {p.get('note') or ''} |")
    L.append("")
    u = d.get("unitTests")
    if u:
        L.append(f"## Native unit tests: {u.get('passed')} passed, {u.get('failed')} failed, {u.get('skipped')} skipped")
        L.append("")
        for t in u.get("tests", []):
            if t["name"].startswith("Cuda.") or t["status"] != "passed":
                L.append(f"- {t['name']}: {t['status']}" + (f" — {t['failures'][0][:200]}" if t.get("failures") else ""))
        L.append("")
    L.append("## Training (images/s over the timed iterations; peak memory: CUDA allocator peak, CPU: peak RSS)")
    L.append("")
    L.append("| run | side | model | precision | images/s | peak MB | loss first → last | status |")
    L.append("|---|---|---|---|---|---|---|---|")
    runs = {r["name"]: r for r in manifest["runs"]}
    for name, r in d["native"].items():
        if not name.startswith("train"):
            continue
        spec = runs[name]
        prec = spec["precision"] if spec["precision"] != "off" else "fp32"
        if spec["norm"] != "bn":
            prec += f" ({spec['norm']})"
        L.append(f"| {name} | native | {spec['model']} | {prec} | {fmt(r.get('trainImagesPerSec'), 2)} | {fmt(r.get('peakMemoryMB'), 0)} | "
                 f"{fmt(r.get('firstLoss'), 3)} → {fmt(r.get('lastLoss'), 3)} | {r['status']}{_err(r)} |")
    for name, r in d["torchvision"].items():
        L.append(f"| {name} | torchvision | r50 | {r.get('precision', '?')} | {fmt(r.get('trainImagesPerSec'), 2)} | {fmt(r.get('peakMemoryMB'), 0)} | "
                 f"{fmt(r.get('firstLoss'), 3)} → {fmt(r.get('lastLoss'), 3)} | {r['status']}{_err(r)} |")
    c = d["comparisons"]
    L.append("")
    L.append(f"- native / torchvision training images/s, R50-FPN: fp32 {fmt(c['nativeOverTorchvisionTrainFp32'], 2)}x, bf16 {fmt(c['nativeOverTorchvisionTrainBf16'], 2)}x")
    L.append("")
    L.append("## Batch-1 inference (fp32, first validation image, trained-shape weights from the fp32 runs)")
    L.append("")
    L.append("| model | side | median ms | p90 ms | mean ms | peak MB | status |")
    L.append("|---|---|---|---|---|---|---|")
    for name in ("bench-r50", "bench-e0"):
        r = d["native"].get(name)
        if r:
            L.append(f"| {name[6:]} | native | {fmt(r.get('medianMs'), 2)} | {fmt(r.get('p90Ms'), 2)} | {fmt(r.get('meanMs'), 2)} | {fmt(r.get('peakMemoryMB'), 0)} | {r['status']}{_err(r)} |")
    tvr = d["torchvision"].get("tv-r50-fp32")
    if tvr and tvr.get("latency"):
        t = tvr["latency"]
        L.append(f"| r50 | torchvision | {fmt(t['medianMs'], 2)} | {fmt(t['p90Ms'], 2)} | {fmt(t['meanMs'], 2)} | {fmt(t.get('peakMemoryMB'), 0)} | ok |")
    L.append("")
    L.append(f"- E0 / R50-FPN latency (native, median): {fmt(c['e0OverR50LatencyNative'], 3)}; paper Table 5: {d['paper']['table5E0OverR50']} ({d['paper']['note']})")
    L.append(f"- torchvision / native R50-FPN latency (median): {fmt(c['torchvisionOverNativeLatencyR50'], 2)}x")
    L.append("")
    r = d.get("resume")
    L.append("## Resume (train.test.ts's durability check, on this device)")
    L.append("")
    if r:
        L.append(f"- {r.get('description')}")
        for k in ("runToRunIdenticalWeights", "resumedIdenticalWeights", "runToRunIdenticalDetections", "resumedIdenticalDetections", "resumedFromIteration",
                  "runToRunMaxAbsDiff", "resumedMaxAbsDiff", "note"):
            if k in r:
                L.append(f"- {k}: {r[k]}")
    else:
        L.append("- not run")
    L.append("")
    tvd = next((t for t in d["torchvision"].values() if t.get("differences")), None)
    if tvd:
        L.append("## Remaining differences between the two sides")
        L.append("")
        for x in tvd["differences"]:
            L.append(f"- {x}")
        L.append("")
    return "\n".join(L)


def _err(r):
    e = r.get("error")
    if not e:
        return ""
    msg = e.get("message") or e.get("kind") or json.dumps(e)[:200]
    return f": {str(msg)[:160]}".replace("|", "/")


def weights_diff(a, b):
    import torch

    ma, mb = torch.jit.load(a, map_location="cpu"), torch.jit.load(b, map_location="cpu")
    sa = dict(ma.named_parameters())
    sa.update(dict(ma.named_buffers()))
    sb = dict(mb.named_parameters())
    sb.update(dict(mb.named_buffers()))
    if set(sa) != set(sb):
        print(json.dumps({"error": "different tensor names"}))
        return
    worst, where = 0.0, None
    for k in sa:
        if sa[k].is_floating_point():
            dlt = (sa[k].double() - sb[k].double()).abs().max().item() if sa[k].numel() else 0.0
            if dlt > worst:
                worst, where = dlt, k
    print(json.dumps({"maxAbsDiff": worst, "tensor": where, "tensors": len(sa)}))


def resume(work, iteration):
    run = lambda n, f: os.path.join(work, "runs", n, f)  # noqa: E731
    same = lambda a, b: os.path.exists(a) and os.path.exists(b) and sha256(a) == sha256(b)  # noqa: E731
    started = next((m for m in read_lines(os.path.join(work, "runs", "resume-c.out")) if m.get("type") == "started"), {})
    r = {
        "description": f"E0 fp32 trained twice with the same job (a, b); c starts from b's checkpoint at iteration {iteration} with resume: true "
                       "(the state a SIGKILL after that checkpoint leaves); weights and detections_val.json compared byte for byte",
        "resumedFromIteration": (started.get("resumedFrom") or {}).get("iteration"),
        "runToRunIdenticalWeights": same(run("resume-a", "weights"), run("resume-b", "weights")),
        "resumedIdenticalWeights": same(run("resume-b", "weights"), run("resume-c", "weights")),
        "runToRunIdenticalDetections": same(run("resume-a", "detections_val.json"), run("resume-b", "detections_val.json")),
        "resumedIdenticalDetections": same(run("resume-b", "detections_val.json"), run("resume-c", "detections_val.json")),
        "sha256": {n: (sha256(run(n, "weights")) if os.path.exists(run(n, "weights")) else None) for n in ("resume-a", "resume-b", "resume-c")},
    }
    for key, (a, b) in {"runToRunMaxAbsDiff": ("resume-a", "resume-b"), "resumedMaxAbsDiff": ("resume-b", "resume-c")}.items():
        if os.path.exists(run(a, "weights")) and os.path.exists(run(b, "weights")):
            try:
                out = subprocess.run([sys.executable, __file__, "weights-diff", run(a, "weights"), run(b, "weights")], capture_output=True, text=True, timeout=120)
                r[key] = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else out.stderr.strip()[-300:]
            except Exception as e:  # noqa: BLE001
                r[key] = f"({e})"
    if not r["runToRunIdenticalWeights"] and r["resumedMaxAbsDiff"] and isinstance(r["resumedMaxAbsDiff"], dict):
        r["note"] = ("the same job twice already differs on this device (non-deterministic kernels, e.g. atomics in index_add / "
                     "grid_sample backward and cuDNN's backward algorithms), so byte identity after resume cannot be expected here; "
                     "compare resumedMaxAbsDiff with runToRunMaxAbsDiff")
    json.dump(r, open(os.path.join(work, "resume.json"), "w"), indent=2)
    print(json.dumps({k: r[k] for k in ("runToRunIdenticalWeights", "resumedIdenticalWeights", "resumedFromIteration")}))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    cmd = sys.argv[1]
    if cmd == "env":
        env(sys.argv[2])
    elif cmd == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "resume":
        resume(sys.argv[2], int(sys.argv[3]))
    elif cmd == "weights-diff":
        weights_diff(sys.argv[2], sys.argv[3])
    elif cmd == "sha256":
        for p in sys.argv[2:]:
            print(sha256(p) if os.path.exists(p) else "missing")
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
