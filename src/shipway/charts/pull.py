"""`shipway charts pull`: fill the chart cache from the charts' own repositories, on a machine with network.

HTTP chart repositories publish each version's sha256 in index.yaml; the archive is checked against it
before anything is unpacked. OCI registries address the chart by digest: Helm's OCI client checks the
layer it fetches against the manifest, and the digest of the archive is reported.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shipway.catalog import Chart
from shipway.charts.cache import chart_dir_name, helm_sdk
from shipway.errors import ShipwayError
from shipway.yamlio import from_yaml

# A chart archive is kilobytes to a few megabytes; anything far larger is not a chart.
MAX_ARCHIVE_BYTES = 64 * 2**20
TIMEOUT_SECONDS = 60


class ChartPullError(ShipwayError):
    """A chart could not be fetched, or what was fetched is not what the repository published."""


@dataclass(frozen=True)
class Pulled:
    """One chart in the cache: where, its archive's digest, and whether the repository's digest matched."""

    chart: Chart
    folder: Path
    digest: str
    verified: str  # "index digest", "OCI manifest", or "already in the cache"


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
            data = response.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as error:
        raise ChartPullError(f"cannot fetch {url}: {error}") from None
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ChartPullError(f"{url} is larger than {MAX_ARCHIVE_BYTES // 2**20} MiB; no chart is that large")
    return data


def _http_archive(chart: Chart) -> tuple[bytes, str]:
    """The chart's archive from an HTTP repository, checked against the digest its index publishes."""
    if not chart.repo.startswith(("https://", "http://")):
        raise ChartPullError(f"{chart.name}: {chart.repo} is neither an HTTP(S) chart repository nor oci://")
    base = chart.repo.rstrip("/") + "/"
    try:
        index = from_yaml(_fetch(base + "index.yaml").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ChartPullError(f"{base}index.yaml is not a chart repository index: {error}") from None
    entries = [entry for entry in ((index or {}).get("entries") or {}).get(chart.name) or []
               if str(entry.get("version")) == chart.version]
    if not entries or not entries[0].get("urls"):
        raise ChartPullError(f"{base}index.yaml lists no {chart.name} {chart.version}")
    url = urllib.parse.urljoin(base, entries[0]["urls"][0])
    data = _fetch(url)
    published = str(entries[0].get("digest") or "").removeprefix("sha256:")
    actual = hashlib.sha256(data).hexdigest()
    if published and published != actual:
        raise ChartPullError(f"{url}: sha256 {actual} is not the {published} that {base}index.yaml publishes; "
                             "the archive was changed after it was indexed, or in transit")
    return data, "index digest" if published else "none published"


def pull(chart: Chart, cache_root: str | Path, plain_http: bool = False) -> Pulled:
    """Put one chart at its pin into the cache as `<name>-<version>/`, unless it is there already."""
    helm = helm_sdk()
    root = Path(cache_root)
    folder = root / chart_dir_name(chart.name, chart.version)
    if (folder / "Chart.yaml").is_file():
        return Pulled(chart, folder, "", "already in the cache")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=root) as scratch:
        archive = Path(scratch) / f"{chart.name}-{chart.version}.tgz"
        if chart.is_oci:
            try:
                helm.pull(chart.ref, version=chart.version, destination=scratch, plain_http=plain_http)
            except helm.HelmError as error:
                raise ChartPullError(f"cannot pull {chart.ref} {chart.version}: {error}") from None
            found = sorted(Path(scratch).glob("*.tgz"))
            if not found:
                raise ChartPullError(f"pulling {chart.ref} {chart.version} wrote no archive")
            archive, verified = found[0], "OCI manifest"
        else:
            data, verified = _http_archive(chart)
            archive.write_bytes(data)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        unpacked = Path(scratch) / "unpacked"
        try:
            helm.expand(unpacked, archive)
        except helm.HelmError as error:
            raise ChartPullError(f"{chart.name} {chart.version}: the archive does not unpack as a chart: {error}") \
                from None
        [top] = list(unpacked.iterdir()) or [None]
        if top is None or not (top / "Chart.yaml").is_file():
            raise ChartPullError(f"{chart.name} {chart.version}: the archive holds no chart")
        shutil.move(str(top), folder)
    return Pulled(chart, folder, f"sha256:{digest}", verified)
