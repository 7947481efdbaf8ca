"""Damaged and hostile files, the CRC recomputed each time: a clean one-line NicError, or a decode of a file that
re-encodes to the same bytes, in bounded time (experiments/fuzz.py is the harness, and the long run)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from experiments import fuzz  # noqa: E402

BUDGET_S = 10.0  # per decode; every case measured under 3.5 s on a loaded 2-core machine (most under 0.1 s)


@pytest.fixture(scope="module")
def samples():
    return fuzz.build_samples()


def _failures(items):
    bad = []
    for sample, how, data in items:
        outcome = fuzz.run_case(data, sample.geometry, BUDGET_S)
        if outcome.kind not in ("error", "decoded"):
            bad.append((sample.name, how, outcome))
    return bad


def test_every_sample_decodes_and_reencodes(samples):
    for s in samples:
        outcome = fuzz.run_case(s.data, s.geometry, BUDGET_S)
        # the golden version-2 file was coded for another geometry: a clean error
        assert outcome.kind == ("error" if s.name == "golden-v2" else "decoded"), (s.name, outcome)


def test_seeded_damage_is_a_clean_error_or_a_canonical_decode(samples):
    """Bit flips, byte overwrites, truncations, insertions and field tampering over every kind of file."""
    assert _failures(fuzz.cases(samples, 25 * len(samples), seed=2026)) == []


def test_every_header_field_at_extreme_values(samples):
    """Every field of an image header (the sides, which size the decode; a latent image's pixel grid too) and of a
    RAHT header, at every extreme."""
    rng = np.random.default_rng(0)
    items = []
    for s in samples:
        if s.name not in ("image-rgb", "image-latent", "raht-v3"):
            continue
        for name, start, end, kind in s.fields:
            for value in fuzz._extremes(kind, rng):
                items.append((s, f"field {name}={value.hex()}", fuzz.with_crc(s.data[:start] + value + s.data[end:-4])))
    assert len(items) > 100
    assert _failures(items) == []


def test_a_truncated_payload_with_a_fixed_crc_is_refused(samples):
    """Once decoded silently: the payload cut by 1 to 8 bytes at its end, the CRC recomputed."""
    for s in samples:
        for cut in range(1, 9):
            outcome = fuzz.run_case(fuzz.with_crc(s.data[:-4 - cut]), s.geometry, BUDGET_S)
            assert outcome.kind == "error", (s.name, cut, outcome)


def test_a_file_naming_an_init_of_another_architecture_is_refused():
    """A canonical file whose header describes another network than the init artefact it names (width, depth or
    ω0 changed): no encoder writes it (an init defines the architecture); a clean error, not a shape error or a
    silent decode with the wrong reference."""
    import dataclasses

    from nicjax import codec, container, inits

    cloud = fuzz._cloud()
    info = fuzz.pointcloud.to_signal(cloud).info
    init = inits.load(inits.shipped()[next(iter(inits.shipped()))])
    for change in (dict(width=32), dict(depth=4), dict(omega0=60.0)):
        model = dataclasses.replace(init.model, **change)
        header = container.Header(info, 0, model, container.Reference(container.REFERENCE_ARTEFACT, id=init.id_bytes))
        zeros = codec.reference_params(dataclasses.replace(header, reference=container.Reference()))
        data = codec.write(header, zeros, zeros, 16)
        outcome = fuzz.run_case(data, cloud.xyz, BUDGET_S)
        assert outcome.kind == "error" and "init" in outcome.detail, (change, outcome)
