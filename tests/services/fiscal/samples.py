"""The NF-e 4.00 samples shipped in nfelib (nfelib/nfe/samples/v4_0)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLES = Path(str(files("nfelib"))) / "nfe" / "samples" / "v4_0" / "leiauteNFe"
NFE = "{http://www.portalfiscal.inf.br/nfe}"


def sample_paths() -> list[Path]:
    found = sorted(SAMPLES.glob("*.xml"))
    assert len(found) >= 15, SAMPLES  # the package changed shape: look again
    return found
