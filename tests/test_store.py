"""--lm-cache: observations on disk keyed by the environment fingerprint."""

from __future__ import annotations

from pathlib import Path

from pytest_lmbehave import LM, Sampling
from pytest_lmbehave.runtime.runtime import Runtime
from pytest_lmbehave.runtime.store import ObservationStore


def ask(runtime: Runtime) -> list[object]:
    lm = LM(runtime, seed=3)
    return [
        lm.next_token("hello hello").argmax_id,
        lm.generate(["hello", "Shakespeare was a"], max_new_tokens=5)[1].ids,
        lm.with_sampling(temperature=1.3).generate("hello", max_new_tokens=5).ids,
        lm.choose("Review: good game. Decision:", [" good", " bad"]).scores,
    ]


def test_an_unchanged_rerun_reads_every_observation_from_disk(tiny_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fingerprint = tiny_runtime.fingerprint
    first = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, fingerprint))
    computed = ask(first)
    assert first.stats["from_disk"] == 0 and first.stats["computed"] > 0
    second = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, fingerprint))
    assert ask(second) == computed
    assert second.stats["computed"] == 0 and second.stats["from_disk"] > 0
    revived = LM(second).generate("hello", max_new_tokens=5)
    assert revived.alternatives and revived.alternatives[0][0][1] == revived.argmax_ids[0]  # it can still explain


def test_any_change_of_environment_misses_the_cache(tiny_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fingerprint = tiny_runtime.fingerprint
    ask(Runtime(tiny_runtime.backend, ObservationStore(tmp_path, fingerprint)))
    for key, value in (("dtype", "bfloat16"), ("threads", "2"), ("transformers", "9.9.9"), ("model_sha256", "0" * 16)):
        upgraded = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, dict(fingerprint, **{key: value})))
        ask(upgraded)
        assert upgraded.stats["from_disk"] == 0, key


def test_a_damaged_entry_is_recomputed_and_replaced(tiny_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ObservationStore(tmp_path, tiny_runtime.fingerprint)
    expected = ask(Runtime(tiny_runtime.backend, store))
    for entry in store.folder.glob("*.pkl"):
        entry.write_bytes(entry.read_bytes()[:10])
    again = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, tiny_runtime.fingerprint))
    assert ask(again) == expected and again.stats["from_disk"] == 0
    assert not list(store.folder.glob("*.tmp"))


def test_sampling_settings_and_seeds_are_part_of_the_key(tiny_runtime, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime = Runtime(tiny_runtime.backend, ObservationStore(tmp_path, tiny_runtime.fingerprint))
    one = LM(runtime, Sampling(temperature=1.0), seed=1).generate("hello", 6)
    other = LM(runtime, Sampling(temperature=1.0), seed=2).generate("hello", 6)
    assert one != other
