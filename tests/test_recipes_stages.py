"""Stage caching by content hash, --force, and resume of an interrupted stage.

The stages here are small functions that write files, so the tests check the pipeline's own
bookkeeping (fingerprints, manifests, decisions) exactly, in milliseconds.
"""

from __future__ import annotations

import json

import pytest

from hanformer.errors import ConfigError
from hanformer.recipes.caching import MANIFEST, Stage
from hanformer.recipes.recipe import parse_recipe
from hanformer.recipes.run import run_stages


class Toy:
    """Three stages: `upper` reads a text file, `count` reads upper's output, `side` reads the file."""

    def __init__(self, tmp_path):
        self.root = tmp_path
        self.text = tmp_path / "input.txt"
        self.text.write_text("hello world\n")
        self.recipe = parse_recipe({"run": {"name": "toy", "out_dir": str(tmp_path / "runs")}},
                                   tmp_path / "toy.toml")
        self.calls: list[str] = []
        self.settings = {"upper": {"case": "upper", "note": "a"}, "count": {"min": 1}}
        self.interrupt = False

    def stages(self) -> list[Stage]:
        def upper(ctx):
            self.calls.append("upper")
            text = self.text.read_text()
            text = text.upper() if self.settings["upper"]["case"] == "upper" else text.lower()
            (ctx.dir / "out.txt").write_text(text)
            return {"chars": len(text)}

        def count(ctx):
            self.calls.append("count" + ("(resumed)" if ctx.resume else ""))
            if self.interrupt:
                (ctx.dir / "checkpoints" / "checkpoint-1").mkdir(parents=True)
                raise KeyboardInterrupt
            words = (ctx.upstream["upper"] / "out.txt").read_text().split()
            (ctx.dir / "count.json").write_text(json.dumps(len(words)))
            return {"words": len(words)}

        def side(ctx):
            self.calls.append("side")
            (ctx.dir / "bytes.txt").write_text(str(self.text.stat().st_size))
            return {}

        return [
            Stage("upper", "change case", upper, settings=dict(self.settings["upper"]), inputs=[self.text],
                  outputs=["out.txt"]),
            Stage("count", "count words", count, settings=dict(self.settings["count"]),
                  upstream={"upper": ""}, outputs=["count.json"], resumable=True),
            Stage("side", "file size", side, inputs=[self.text], outputs=["bytes.txt"]),
        ]

    def run(self, **kw):
        self.calls = []
        return run_stages(self.recipe, self.stages(), log=lambda s: None, **kw)


@pytest.fixture
def toy(tmp_path):
    return Toy(tmp_path)


def test_rerun_skips_everything_and_keeps_manifests(toy):
    first = toy.run()
    assert toy.calls == ["upper", "count", "side"]
    assert first.ran == ["upper", "count", "side"]
    man = json.loads((toy.recipe.run_dir / "count" / MANIFEST).read_text())
    assert man["status"] == "complete" and man["summary"] == {"words": 2}

    second = toy.run()
    assert toy.calls == []
    assert second.skipped == ["upper", "count", "side"]
    assert all(d.reason == "settings, inputs and upstream outputs unchanged" for d in second.decisions)


def test_changed_setting_reruns_stage_and_dependents(toy):
    toy.run()
    toy.settings["upper"]["case"] = "lower"
    result = toy.run()
    assert toy.calls == ["upper", "count"]  # `side` does not read upper's output
    assert result.decisions[0].reason.startswith("settings changed (case)")
    assert (toy.recipe.run_dir / "upper" / "out.txt").read_text() == "hello world\n"


def test_a_new_setting_at_its_default_is_no_change(toy, monkeypatch):
    """A newer version may add settings: left at their defaults they must not re-run finished
    stages; set to anything else they do."""
    toy.run()
    toy.settings["upper"]["mode"] = "plain"
    defaults = {"case": "upper", "note": "", "mode": "plain", "nested": {"a": 1}}
    toy.settings["upper"]["nested"] = {"a": 1}
    original = toy.stages

    def with_defaults():
        stages = original()
        stages[0].setting_defaults = defaults
        return stages

    monkeypatch.setattr(toy, "stages", with_defaults)
    toy.run()
    assert toy.calls == []
    toy.settings["upper"]["mode"] = "fancy"
    result = toy.run()
    assert toy.calls == ["upper"]
    assert result.decisions[0].reason.startswith("settings changed (mode)")


def test_dependents_follow_content_not_settings(toy):
    toy.run()
    toy.settings["upper"]["note"] = "b"  # a setting change that leaves the output identical
    toy.run()
    assert toy.calls == ["upper"]


def test_changed_input_file_and_removed_output(toy):
    toy.run()
    toy.text.write_text("one two three\n")
    result = toy.run()
    assert toy.calls == ["upper", "count", "side"]
    assert result.decisions[0].reason == "input files changed"
    assert json.loads((toy.recipe.run_dir / "count" / "count.json").read_text()) == 3

    (toy.recipe.run_dir / "side" / "bytes.txt").unlink()
    toy.run()
    assert toy.calls == ["side"]


def test_force_and_dry_run(toy):
    toy.run()
    plan = toy.run(force=["count"], dry_run=True)
    assert toy.calls == []
    assert [(d.stage.key, d.action) for d in plan.decisions] == [("upper", "skip"), ("count", "run"), ("side", "skip")]
    toy.run(force=["upper"])
    assert toy.calls == ["upper"]  # same output, so count stays cached
    toy.run(force=["all"])
    assert toy.calls == ["upper", "count", "side"]
    with pytest.raises(ConfigError, match="--force pretrain: no such stage"):
        toy.run(force=["pretrain"])


def test_interrupted_stage_resumes_from_checkpoint(toy):
    toy.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        toy.run()
    man = json.loads((toy.recipe.run_dir / "count" / MANIFEST).read_text())
    assert man["status"] == "running"
    toy.interrupt = False
    plan = toy.run(dry_run=True)
    assert [d.action for d in plan.decisions] == ["skip", "resume", "run"]
    toy.run()
    assert toy.calls == ["count(resumed)", "side"]
    assert toy.run().skipped == ["upper", "count", "side"]


def test_interrupted_stage_with_changed_settings_starts_over(toy):
    toy.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        toy.run()
    toy.interrupt = False
    toy.settings["count"]["min"] = 2
    toy.run()
    assert toy.calls == ["count", "side"]
    assert not (toy.recipe.run_dir / "count" / "checkpoints").exists()


def test_training_stage_stopped_by_a_signal_stops_the_run(toy):
    """The trainer checkpoints on SIGINT and returns normally; the pipeline must not go on as if
    the stage had finished, and the next run resumes it."""
    from types import SimpleNamespace

    from hanformer.recipes.stages.common import StageInterrupted, stop_if_interrupted

    stop_if_interrupted(SimpleNamespace(stopped="max_steps"), "pretrain")  # finished: nothing happens
    stages = toy.stages()

    def count(ctx):
        (ctx.dir / "checkpoints" / "step-00000003").mkdir(parents=True)
        stop_if_interrupted(SimpleNamespace(stopped="interrupted"), ctx.stage.key)

    stages[1].run = count
    with pytest.raises(StageInterrupted, match="stage count was interrupted .* run the same command again"):
        run_stages(toy.recipe, stages, log=lambda s: None)
    assert not (toy.recipe.run_dir / "side").exists()
    plan = toy.run(dry_run=True)
    assert [d.action for d in plan.decisions] == ["skip", "resume", "run"]
