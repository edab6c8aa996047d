"""The main job: recipes (`hanformer run`), stage caching and resume, and the HTML report.

    from hanformer.recipes import run_recipe
    run_recipe("recipes/demo-ko.toml")

`recipe.py` reads and checks a recipe, `adapters.py` turns its tables into stages that call the
components, `stages.py` decides what runs and records what completed, `report.py` and
`plots.py` write `report.html` and `metrics.json`, and `run.py` ties them together.
"""

from __future__ import annotations

from hanformer.recipes.recipe import Recipe, load_recipe
from hanformer.recipes.run import RunResult, run_recipe

__all__ = ["Recipe", "RunResult", "load_recipe", "run_recipe"]
