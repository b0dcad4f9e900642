#!/bin/sh
# Rebuilds this folder from the real CT in ../shared: study synth-00003 of
# `ctground synth --background real --cases 8 --seed 11`, its paths made relative to this folder.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node "$root/bin/ctground.js" synth --background real --cases 8 --seed 11 --out "$tmp/ds" > /dev/null 2> "$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
study=$tmp/ds/studies/synth-00003
cp "$study/ct.nii.gz" "$study/labels.nii.gz" "$study/report.txt" "$here/"
rm -rf "$here/masks" && mkdir "$here/masks"
node -e '
const fs = require("fs"), path = require("path");
const [ds, here] = process.argv.slice(1);
const s = fs.readFileSync(path.join(ds, "manifest.jsonl"), "utf8").trim().split("\n").map(JSON.parse).find((r) => r.id === "synth-00003");
for (const a of s.anomalies) if (a.mask) { const to = `masks/${a.id}.nii.gz`; fs.copyFileSync(path.join(ds, a.mask), path.join(here, to)); a.mask = to; }
const out = { ...s, id: "demo", ct: "ct.nii.gz", labels: "labels.nii.gz", report: "report.txt", split: "test",
  source: "ctground synth --background real --cases 8 --seed 11, study synth-00003 (examples/demo/make.sh)" };
fs.writeFileSync(path.join(here, "manifest.jsonl"), JSON.stringify(out) + "\n");
' "$tmp/ds" "$here"
echo "examples/demo rebuilt from study synth-00003"
