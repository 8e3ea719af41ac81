#!/usr/bin/env python3
"""Writes a RouterOS-loadable container image tar (docker-archive, one platform, one layer) without
a container engine, and reads it back to check it.

  scripts/mkimage.py build --target aarch64-unknown-linux-musl [--binary out/<t>/uplinkd] [--out F]
  scripts/mkimage.py check FILE.tar --arch arm64 [--variant v8]

RouterOS's /container loader takes `docker save` archives and rejects multi-platform tarballs, so
each architecture gets its own tar. The layer holds what the Containerfile's final `FROM scratch`
stage holds: /uplinkd, CA certificates (HTTPS to a router with a public cert, SMTP over TLS), the
default config at /etc/uplinkd/uplinkd.toml and the state mount point /var/lib/uplinkd. The tar is
deterministic (mtime 0, uid/gid 0), so the same binary gives the same image digest.
"""
import argparse, hashlib, io, json, struct, sys, tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {  # rust target -> (architecture, variant, ELF e_machine)
    "x86_64-unknown-linux-musl": ("amd64", None, 62),
    "aarch64-unknown-linux-musl": ("arm64", "v8", 183),
    "armv7-unknown-linux-musleabihf": ("arm", "v7", 40),
    "armv5te-unknown-linux-musleabi": ("arm", "v5", 40),
}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ENV = ["PATH=/", "UPLINKD_CONFIG=/etc/uplinkd/uplinkd.toml", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"]
ENTRYPOINT = ["/uplinkd"]
CMD = ["run"]
STATE_DIR = "/var/lib/uplinkd"


def tar_add(tf, name, data=None, mode=0o644, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    info.type, info.mode = kind, mode
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def layer_bytes(binary: bytes, config_toml: bytes, ca: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for d in ("etc", "etc/ssl", "etc/ssl/certs", "etc/uplinkd", "var", "var/lib", STATE_DIR.lstrip("/"), "tmp"):
            tar_add(tf, d, mode=0o1777 if d == "tmp" else 0o755, kind=tarfile.DIRTYPE)
        tar_add(tf, "uplinkd", binary, mode=0o755)
        tar_add(tf, "etc/ssl/certs/ca-certificates.crt", ca)
        tar_add(tf, "etc/uplinkd/uplinkd.toml", config_toml)
    return buf.getvalue()


def build(args):
    arch, variant, _ = PLATFORMS[args.target]
    binary = Path(args.binary or ROOT / "out" / args.target / "uplinkd").read_bytes()
    layer = layer_bytes(binary, (ROOT / "config.example.toml").read_bytes(), CA_BUNDLE.read_bytes())
    layer_id = hashlib.sha256(layer).hexdigest()
    short = {"arm64": "arm64", "amd64": "amd64"}.get(arch, f"{arch}{variant}")
    tag = args.tag or f"uplinkd:{short}"
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": ENTRYPOINT, "Cmd": CMD, "Env": ENV, "WorkingDir": "/",
                   "Volumes": {STATE_DIR: {}}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created_by": "scripts/mkimage.py: static uplinkd, CA bundle, default config"}],
        "created": "1970-01-01T00:00:00Z",
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]}]
    name, _, ver = tag.partition(":")
    out = Path(args.out or ROOT / "out" / f"uplinkd-{short}.tar")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tf:
        tar_add(tf, layer_id, mode=0o755, kind=tarfile.DIRTYPE)
        tar_add(tf, f"{layer_id}/VERSION", b"1.0")
        tar_add(tf, f"{layer_id}/json", json.dumps({"id": layer_id, "os": "linux"}).encode())
        tar_add(tf, f"{layer_id}/layer.tar", layer)
        tar_add(tf, config_name, config_bytes)
        tar_add(tf, "manifest.json", json.dumps(manifest).encode())
        tar_add(tf, "repositories", json.dumps({name: {ver: layer_id}}).encode())
    print(out)


def elf_machine(data: bytes) -> int:
    if data[:4] != b"\x7fELF":
        raise SystemExit("the image's /uplinkd is not an ELF file")
    endian = "<" if data[5] == 1 else ">"
    return struct.unpack(endian + "H", data[18:20])[0]


def check(args):
    problems = []
    with tarfile.open(args.file) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        if len(manifest) != 1:
            problems.append(f"manifest has {len(manifest)} images; RouterOS takes one platform per tar")
        m = manifest[0]
        config = json.load(tf.extractfile(m["Config"]))
        if len(m["Layers"]) != 1:
            problems.append(f"{len(m['Layers'])} layers, expected 1")
        layer = tf.extractfile(m["Layers"][0]).read()
    if config.get("architecture") != args.arch:
        problems.append(f"architecture {config.get('architecture')!r}, expected {args.arch!r}")
    if config.get("variant") != args.variant:
        problems.append(f"variant {config.get('variant')!r}, expected {args.variant!r}")
    c = config.get("config", {})
    if c.get("Entrypoint") != ENTRYPOINT or c.get("Cmd") != CMD:
        problems.append(f"entrypoint {c.get('Entrypoint')} {c.get('Cmd')}, expected {ENTRYPOINT} {CMD}")
    if c.get("Env") != ENV:
        problems.append(f"env {c.get('Env')}, expected {ENV}")
    if f"sha256:{hashlib.sha256(layer).hexdigest()}" != config["rootfs"]["diff_ids"][0]:
        problems.append("layer digest does not match rootfs.diff_ids")
    with tarfile.open(fileobj=io.BytesIO(layer)) as lt:
        names = set(lt.getnames())
        for need in ("uplinkd", "etc/ssl/certs/ca-certificates.crt", "etc/uplinkd/uplinkd.toml", STATE_DIR.lstrip("/")):
            if need not in names:
                problems.append(f"layer lacks /{need}")
        b = lt.getmember("uplinkd")
        if not b.mode & 0o111:
            problems.append("/uplinkd is not executable")
        machine = elf_machine(lt.extractfile(b).read(64))
    want = {"amd64": 62, "arm64": 183, "arm": 40}[args.arch]
    if machine != want:
        problems.append(f"/uplinkd is ELF machine {machine}, expected {want} for {args.arch}")
    for p in problems:
        print("FAIL", args.file, p)
    if problems:
        sys.exit(1)
    print(f"ok {args.file}: {args.arch}{'/' + args.variant if args.variant else ''}, entrypoint {ENTRYPOINT + CMD}, "
          f"env {len(ENV)} vars, 1 layer, {Path(args.file).stat().st_size} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--target", required=True, choices=sorted(PLATFORMS))
    b.add_argument("--binary")
    b.add_argument("--out")
    b.add_argument("--tag")
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--arch", required=True, choices=["amd64", "arm64", "arm"])
    c.add_argument("--variant")
    args = ap.parse_args()
    build(args) if args.cmd == "build" else check(args)


if __name__ == "__main__":
    main()
