"""The main job: recipes (`hanformer run`), stage caching and resume, and the HTML report.

    from hanformer.recipes import run_recipe
    run_recipe("recipes/demo-ko.toml")

`recipe.py` reads and checks a recipe, `stages/` turns its tables into stages (one module per
stage) that call the components, `config_merge.py` builds their configs from the tables,
`caching.py` decides what runs and records what completed, `layout.py` owns every path of a run,
`report/` collects `metrics.json` and renders `report.html` (with `plots.py`), and `run.py` ties
them together.
"""

from __future__ import annotations

from hanformer.recipes.recipe import Recipe, load_recipe
from hanformer.recipes.run import RunResult, run_recipe

__all__ = ["Recipe", "RunResult", "load_recipe", "run_recipe"]
